"""Per-level diagnostics of LAPGAN / CC-LAPGAN on Fashion-MNIST (docs/methods-lapgan-selfcond.md,
"Why the first version collapsed, and the fix").

    python benchmarks/lapgan_levels.py --run RUN [--judge-eval]
    python benchmarks/lapgan_levels.py --config cclapgan-fashion-mnist --levels 2 --steps 1000 \
        [--set optim.g_lr=1e-3 ...] [--seed S]

--run diagnoses a trained run (`condgan train`). --levels trains only the phases (D_k, G_k) of the
listed pyramid levels, with the method's own losses and the loop's Adam settings, on random batches
of the training set, then diagnoses the model: each level is its own GAN trained on the real
pyramid (condgan.methods.lapgan), so a level trained alone meets the same objective as in a full
run, and the coarse level (a few % of a step's FLOPs) can be swept cheaply.

One JSON line with:
  coarse     the coarsest level's samples Ĩ_K alone (classes cycled 0..9): accuracy of the "coarse
             judge" (an MLP trained on the real training set's I_K, cached in --cache) on them and
             on the real test I_K, its class histogram of the samples, and the mean within-class
             L2 distance of Ĩ_K next to the real I_K's;
  msssim     within-class MS-SSIM (--pairs per class, 100 unless told) of each level's images Ĩ_k
             and of the real I_k, both bilinearly upsampled to full size, their means and the gap
             generated − real of each class (CC-LAPGAN only: classes are needed); `final_I_K`:
             the same gaps for the final samples' own I_K (the coarse content they keep after the
             finer levels) and its RMS distance from the Ĩ_K they were refined from;
  noise      per level, the standard deviation over 8 draws of that level's noise at a fixed input
             (real l_k = u(I_{k+1}) and class for k < K, the class for K), averaged over pixels and
             200 inputs, next to the RMS of the real band h_k (and, for K, the real within-class
             standard deviation of I_K): near 0 means G_k ignores z_k; for k < K also the RMS
             of d(h̃_k) and of d(h_k), the part of the residual below its band (real residuals
             keep some, as u is not d's inverse), where a G_k that redraws its l_k shows;
  chain      with --judge-eval: the suite's accuracy, FID and diversity (--n samples, --chain-pairs
             MS-SSIM pairs per class, 50 unless told, judge features; the per-class gaps generated
             − real) of the final samples and of the finer levels run on the real test images' I_K (the condition the
             finer levels were trained on);
  cost       FLOPs of one training step (all phases, forward and backward, condgan.bench.flops) and
             the ratio to acgan-fashion-mnist-paper's; with --levels, the CPU seconds of the training.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from condgan.bench.flops import training_step_flops
from condgan.config import Config, preset_or_path, resolve_config
from condgan.data import load_dataset
from condgan.data.base import images_to_unit_range, to_uint8_nhwc
from condgan.evaluation.suite import EvalOptions, evaluate
from condgan.methods import StepInputs, build_method
from condgan.metrics.classifier import default_judge_path, load_judge
from condgan.metrics.correlation import per_class_values
from condgan.metrics.diversity import class_msssim_pairs, distinct_pairs
from condgan.metrics.features import judge_extractor
from condgan.nets import DataSpec
from condgan.nets.pyramid import downsample, gaussian_pyramid, upsample
from condgan.sampling import load_run

NUM_CLASSES = 10


def step_flops(cfg: Config, shape: tuple[int, ...]) -> int:
    """FLOPs of one training step of `cfg`'s method as the loop runs it (condgan.bench.flops)."""
    method = build_method(cfg, DataSpec(shape, NUM_CLASSES)).train()
    b = cfg.train.batch_size
    gen = torch.Generator().manual_seed(0)
    step = StepInputs(torch.rand(b, *shape, generator=gen) * 2 - 1, torch.randint(0, NUM_CLASSES, (b,), generator=gen),
                      torch.arange(b), method.latent(b, generator=gen), method.sample_classes(b, generator=gen), step=0)
    return training_step_flops(method, step)


def train_levels(cfg: Config, levels: list[int], steps: int, seed: int, train_x: torch.Tensor,
                 train_y: torch.Tensor) -> tuple[nn.Module, float, dict[str, float]]:
    """The method with only `levels`' phases trained for `steps` steps; CPU seconds; mean stats of the last 50."""
    torch.manual_seed(seed)
    method = build_method(cfg, DataSpec(tuple(train_x.shape[1:]), NUM_CLASSES, len(train_x))).train()
    phases = [p for p in method.phases() if p.level in levels]
    opts = {p.name: torch.optim.Adam(p.module.parameters(), lr=p.lr, betas=(cfg.optim.beta1, cfg.optim.beta2))
            for p in phases}
    gen, b, history = torch.Generator().manual_seed(seed), cfg.train.batch_size, []
    start = time.process_time()
    for t in range(steps):
        idx = torch.randint(0, len(train_x), (b,), generator=gen)
        step = StepInputs(train_x[idx], train_y[idx], idx, method.latent(b, generator=gen),
                          method.sample_classes(b, generator=gen), step=t)
        row = {}
        for p in phases:
            opts[p.name].zero_grad(set_to_none=True)
            loss, stats = method.loss(p, step)
            loss.backward()
            opts[p.name].step()
            row[f"{p.name}/loss"] = float(loss.detach())
            row.update({k: float(v) for k, v in stats.items()})
        history.append(row)
    cpu = time.process_time() - start
    last = {k: round(float(np.mean([r[k] for r in history[-50:]])), 3) for k in history[-1]}
    return method.eval(), cpu, last


def coarse_judge(train_low: torch.Tensor, train_y: torch.Tensor, cache: Path) -> nn.Module:
    """An MLP classifier of real I_K (two hidden layers of 256), trained once and cached."""
    size = train_low.shape[-1]
    net = nn.Sequential(nn.Flatten(), nn.Linear(train_low[0].numel(), 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                        nn.Linear(256, NUM_CLASSES))
    path = cache / f"coarse-judge-{size}px.pt"
    if path.exists():
        net.load_state_dict(torch.load(path, weights_only=True))
        return net.eval()
    torch.manual_seed(1)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(15):  # epochs
        for idx in torch.randperm(len(train_low)).split(256):
            opt.zero_grad()
            F.cross_entropy(net(train_low[idx]), train_y[idx]).backward()
            opt.step()
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return net.eval()


def within_class_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean pairwise L2 distance between distinct same-class images (the first 100 of each class)."""
    out = []
    for k in range(NUM_CLASSES):
        xs = x[y == k][:100].flatten(1)
        n = len(xs)
        if n > 1:
            out.append(float(torch.cdist(xs, xs).sum() / (n * n - n)))
    return float(np.mean(out))


def upsample_to(x: torch.Tensor, size: int) -> torch.Tensor:
    while x.shape[-1] < size:
        x = upsample(x)
    return x


@torch.no_grad()
def diagnose(method, train, test, judge7: nn.Module, n: int, pairs: int, chain_pairs: int | None) -> dict:
    """The JSON row's diagnostics; the chain only when `chain_pairs` is given."""
    K, full = method.K, method.sizes[0]
    gen = torch.Generator().manual_seed(123)
    c = torch.arange(n) % NUM_CLASSES
    z = method.latent(n, generator=gen)
    images, _ = method.generate_levels(z, c)
    real_pyr = gaussian_pyramid(test.x()[:n], K + 1)
    pred = judge7(images[-1]).argmax(1)
    out: dict = {"coarse": {
        "judge_acc_real": round(float((judge7(real_pyr[-1]).argmax(1) == test.y[:n]).float().mean()), 3),
        "judge_acc_gen": round(float((pred == c).float().mean()), 3) if method.conditional else None,
        "pred_class_hist": torch.bincount(pred, minlength=NUM_CLASSES).tolist(),
        "within_class_l2_gen": round(within_class_distance(images[-1], c if method.conditional else pred), 3),
        "within_class_l2_real": round(within_class_distance(real_pyr[-1], test.y[:n]), 3)}}
    if method.conditional:
        out["msssim"] = {}
        for k in range(K + 1):
            gen_k = class_msssim_pairs(upsample_to(images[k], full).clamp(-1, 1), c.numpy(), NUM_CLASSES, pairs).mean(1)
            real_k = class_msssim_pairs(upsample_to(real_pyr[k], full), test.y[:n].numpy(), NUM_CLASSES, pairs).mean(1)
            out["msssim"][f"I{k}"] = {"gen": round(float(gen_k.mean()), 3), "real": round(float(real_k.mean()), 3),
                                      "gap_per_class": [round(float(g), 3) for g in gen_k - real_k]}
            if k == K:  # the coarse content the final samples keep: their own I_K, against Ĩ_K's gaps above
                kept = gaussian_pyramid(images[0].clamp(-1, 1), K + 1)[K]
                kept_gap = class_msssim_pairs(upsample_to(kept, full), c.numpy(), NUM_CLASSES, pairs).mean(1) - real_k
                out["msssim"]["final_I_K"] = {"gap_per_class": [round(float(g), 3) for g in kept_gap],
                                              "rms_from_coarse": round(float((kept - images[K]).pow(2).mean().sqrt()), 4)}
    noise, m = {}, 200
    cc = test.y[:m] if method.conditional else None
    for k in range(K + 1):
        draws = [method._split(method.latent(m, generator=gen))[k] for _ in range(8)]
        if k == K:
            outs = torch.stack([method.G[k](zk, cc) for zk in draws])
            real_spread = torch.stack([real_pyr[K][test.y[:n] == j].std(0).mean() for j in range(NUM_CLASSES)]).mean()
            noise[f"level{k}"] = {"std_over_z": round(float(outs.std(0).mean()), 4),
                                  "real_within_class_std": round(float(real_spread), 4)}
        else:
            low = upsample(real_pyr[k + 1][:m])
            outs = torch.stack([method.G[k](zk, low, cc) for zk in draws])
            real_h = real_pyr[k][:m] - low
            # what of the residual lies below its band: a G_k that redraws the coarse content it was
            # given shows it here, which a D_k that sees only h + l_k does not stop
            noise[f"level{k}"] = {"std_over_z": round(float(outs.std(0).mean()), 4),
                                  "rms_gen": round(float(outs.pow(2).mean().sqrt()), 4),
                                  "rms_real": round(float(real_h.pow(2).mean().sqrt()), 4),
                                  "below_band_rms_gen": round(float(downsample(outs.flatten(0, 1)).pow(2).mean().sqrt()), 4),
                                  "below_band_rms_real": round(float(downsample(real_h).pow(2).mean().sqrt()), 4)}
    out["noise"] = noise
    if chain_pairs is not None:
        judge = load_judge(default_judge_path("fashion-mnist", test.sample_shape))
        on_real = real_pyr[-1]
        zs = method._split(z)
        for k in range(K - 1, -1, -1):
            low = upsample(on_real)
            on_real = low + method.G[k](zs[k], low, test.y[:n] if method.conditional else None)
        out["chain"] = {"final": suite(method, images[0], c, test, judge, chain_pairs),
                        "finer_levels_on_real_coarse": suite(method, on_real, test.y[:n], test, judge, chain_pairs)}
    return out


def suite(method, x: torch.Tensor, y: torch.Tensor, test, judge, pairs: int) -> dict:
    """accuracy (CC only), FID and diversity in judge features, as `condgan eval` computes them."""
    x = images_to_unit_range(to_uint8_nhwc(x.clamp(-1, 1)))
    metrics = ["accuracy", "fid", "diversity"]
    if not method.conditional:  # group by the judge's predicted class, as benchmarks/compare_methods.py
        y = torch.as_tensor(np.asarray(judge_extractor(judge).extract(x, desc="labels", progress=False)[1]).argmax(1))
        metrics.remove("accuracy")
    y = y.numpy().astype(np.int64)
    if distinct_pairs(int(np.bincount(y, minlength=NUM_CLASSES).min())) < pairs:
        metrics.remove("diversity")  # too few images of a class for that many distinct pairs
    r = evaluate(x, y, test, judge=judge, metrics=metrics, options=EvalOptions(pairs=pairs, seed=0, progress=False))["metrics"]
    out = {k: round(r[k], 3) for k in ("accuracy", "fid", "msssim_gen_mean", "msssim_real_mean") if r.get(k) is not None}
    if "diversity" in metrics:
        gap = per_class_values(r, "msssim_gen") - per_class_values(r, "msssim_real")
        out["msssim_gap_per_class"] = [round(float(g), 3) for g in gap]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained LAPGAN/CC-LAPGAN run directory")
    parser.add_argument("--config", help="preset or YAML (with --levels)")
    parser.add_argument("--levels", help="comma-separated pyramid levels to train alone (0 finest)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=2000, help="samples per diagnostic")
    parser.add_argument("--pairs", type=int, default=100, help="MS-SSIM pairs per class")
    parser.add_argument("--judge-eval", action="store_true", help="the suite on the final and the real-coarse chains")
    parser.add_argument("--chain-pairs", type=int, default=50, help="MS-SSIM pairs per class in the chain")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", default="runs/lapgan-levels-cache", help="where the coarse judge is kept")
    args = parser.parse_args()
    if (args.run is None) == (args.levels is None):
        parser.error("give either --run or --config with --levels")
    torch.set_num_threads(args.threads)
    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    train_x = train.x()  # the 60,000 images as float, once: training and the coarse judge both read them
    row: dict = {}
    if args.run:
        loaded = load_run(args.run)
        method, cfg = loaded.method, loaded.config
        row.update(run=args.run, step=loaded.step)
    else:
        cfg = resolve_config([preset_or_path(args.config)], args.set)
        levels = [int(k) for k in args.levels.split(",")]
        method, cpu, last = train_levels(cfg, levels, args.steps, args.seed, train_x, train.y)
        row.update(config=args.config, set=args.set, levels=levels, steps=args.steps, seed=args.seed,
                   train_cpu_s=round(cpu, 1), last50=last)
    shape = train.sample_shape
    flops = step_flops(cfg, shape)
    row["cost"] = {"gflop_per_step": round(flops / 1e9, 2),
                   "x_acgan": round(flops / step_flops(resolve_config([preset_or_path("acgan-fashion-mnist-paper")]), shape), 2)}
    judge7 = coarse_judge(gaussian_pyramid(train_x, method.K + 1)[-1], train.y, Path(args.cache))
    row.update(diagnose(method, train, test, judge7, args.n, args.pairs, args.chain_pairs if args.judge_eval else None))
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
