"""Training speed: condgan's loop against a plain single-file AC-GAN loop, FLOP/s and peak memory.

Two setups, each timed on the identical G/D architecture two ways, in one run on one machine:
  fm     condgan's default Fashion-MNIST AC-GAN (config defaults + data.name=fashion-mnist: DCGAN
         28 px nets, batch 64);
  cifar  the AC-GAN paper's CIFAR-10 nets (model.arch=acgan_cifar, 32×32×3, batch 64) on random
         data (10,000 images, 10 classes), so no dataset download is needed.
"condgan" is `condgan.training.loop.train` itself (logging to metrics.jsonl/TensorBoard included;
grids and checkpoints fall outside the window). "plain" is `reference_loop.plain_acgan`, written
the way the popular single-file AC-GAN scripts are (per-image PIL decoding in a DataLoader, a G
forward for D's step and another for G's step, `torch.optim.Adam`). Both use the same losses,
learning rates and batch size.

Each loop runs a short warm-up, then a timed window of `--seconds`; images/s counts real images
consumed, per second of wall time and per second of this process's CPU time. On a shared machine
the CPU-time rate is the comparable one (other users' load stretches wall time, not the CPU time
a computation needs), so the speed-up is computed from it; run with `--threads 1` there so that
CPU time is not inflated by OpenMP threads spinning while waiting for a core. Achieved FLOP/s = FLOPs of one training step (counted with
torch.utils.flop_counter.FlopCounterMode via condgan.bench.flops: forward and backward matmuls/convolutions) × steps/s,
against the machine's measured float32 matmul ceiling (2048² `torch.mm`, same threads).
Peak RSS is that of a separate `condgan train --data fashion-mnist` process with the defaults
(ru_maxrss of the child).

    python benchmarks/train_speed.py [--seconds 30] [--threads 2] [--set train.channels_last=true] [--nproc 2]

`--nproc N` adds the fm setup trained as N gloo processes (`condgan train --nproc N`), wall time only.

The windows of the two loops alternate (condgan, plain, condgan, plain, ...); the table gives the
median of each.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from condgan.bench.flops import training_step_flops
from condgan.config import Config, resolve_config
from condgan.data import LabelledData
from condgan.data.storage import TrainingData
from condgan.methods import StepInputs, build_method
from condgan.nets import DataSpec
from condgan.training import loop
from reference_loop import plain_acgan

WARMUP_STEPS = 10
RANDOM_IMAGES = 10_000


class _Stop(Exception):
    """Raised by the timing monitor to end a condgan run when its window is over."""


def _setups(extra: list[str]) -> dict[str, tuple[Config, LabelledData]]:
    fm_cfg = resolve_config(overrides=["data.name=fashion-mnist", *extra])
    fm = loop.load_training_data(fm_cfg).data
    g = torch.Generator().manual_seed(0)
    rand = LabelledData(torch.rand(RANDOM_IMAGES, 3, 32, 32, generator=g) * 2 - 1,
                        torch.randint(0, 10, (RANDOM_IMAGES,), generator=g), tuple(str(i) for i in range(10)), "random")
    cifar_cfg = resolve_config(overrides=["data.name=cifar10", "model.arch=acgan_cifar", *extra])
    return {"fm": (fm_cfg, fm), "cifar": (cifar_cfg, rand)}


Rates = tuple[float, float]  # images per second of (wall time, process CPU time)


def time_condgan(cfg: Config, data: LabelledData, seconds: float) -> Rates:
    """Images/s of `condgan.training.loop.train` over a window of `seconds` after the warm-up."""
    marks: dict[str, float] = {}

    def monitor(method: torch.nn.Module, step: int) -> dict[str, float]:
        now, cpu = time.perf_counter(), time.process_time()
        if step == WARMUP_STEPS:
            marks["t0"], marks["c0"], marks["s0"] = now, cpu, step
        elif step > WARMUP_STEPS and now - marks["t0"] >= seconds:
            marks["t1"], marks["c1"], marks["s1"] = now, cpu, step
            raise _Stop
        return {}

    cfg = resolve_config(base=cfg.to_dict(), overrides=["train.steps=100000000", "train.grid_every=100000000",
                                                         "train.ckpt_every=100000000", "train.log_every=50"])
    original = loop.load_training_data
    loop.load_training_data = lambda _cfg: TrainingData(data, "memory", "benchmark data")  # e.g. random data
    try:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                loop.train(cfg, Path(tmp) / "run", progress=False, monitors=[(1, monitor)])
            except _Stop:
                pass
    finally:
        loop.load_training_data = original
    images = (marks["s1"] - marks["s0"]) * cfg.train.batch_size
    return images / (marks["t1"] - marks["t0"]), images / (marks["c1"] - marks["c0"])


def time_plain(cfg: Config, data: LabelledData, seconds: float, device: str = "cpu") -> Rates:
    """Images/s of the plain reference loop (reference_loop.py) on the same nets and losses, on
    `device` (CUDA is synchronised at the marks)."""
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    t0 = c0 = 0.0
    for steps, _ in plain_acgan(cfg, data, device):
        if steps == WARMUP_STEPS:
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
        elif steps > WARMUP_STEPS and time.perf_counter() - t0 >= seconds:
            sync()
            images = (steps - WARMUP_STEPS) * cfg.train.batch_size
            return images / (time.perf_counter() - t0), images / (time.process_time() - c0)
    raise AssertionError("plain_acgan never stops")


def time_condgan_ranks(cfg: Config, nproc: int, steps: int) -> float:
    """Wall images/s of `condgan train --nproc` (gloo, `train.threads` each) between its first and last log row.

    Rank 0 logs `images_per_sec` = images so far / time so far every WARMUP_STEPS steps, from which
    the rate over the window after the first row follows. Wall time only: CPU time is spread over processes.
    """
    cfg = resolve_config(base=cfg.to_dict(), overrides=[f"train.steps={steps}", "train.grid_every=100000000",
                                                         "train.ckpt_every=100000000", f"train.log_every={WARMUP_STEPS}"])
    with tempfile.TemporaryDirectory() as tmp:
        loop.train_spawned(nproc, cfg, Path(tmp) / "run", progress=False)
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    b = cfg.train.batch_size
    (s0, r0), (s1, r1) = [(row["step"], row["images_per_sec"]) for row in (rows[0], rows[-1])]
    return (s1 - s0) * b / (s1 * b / r1 - s0 * b / r0)


def step_flops(cfg: Config, data: LabelledData) -> int:
    """FLOPs of one condgan training step (both phases, forward and backward)."""
    torch.manual_seed(0)
    method = build_method(cfg, DataSpec(data.sample_shape, data.num_classes, len(data)))
    b = cfg.train.batch_size
    idx = torch.arange(b)
    inputs = StepInputs(data.x(idx), data.y[idx], idx, method.latent(b), method.sample_classes(b), 0)
    return training_step_flops(method, inputs)


def matmul_ceiling(seconds: float = 3.0, n: int = 2048) -> float:
    """Measured float32 matmul FLOP per CPU-second of this process (best of repeated n×n products)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.process_time()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / max(time.process_time() - t, 1e-9))
    return best


def default_run_peak_rss(threads: int, steps: int) -> float:
    """Peak RSS (GiB) of `condgan train --data fashion-mnist` with the defaults, as its own process."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "condgan.cli", "train", "--data", "fashion-mnist", "--steps", str(steps),
                        "--threads", str(threads), "--out", str(Path(tmp) / "run"), "--no-progress"],
                       check=True, stdout=subprocess.DEVNULL)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="timed window per loop and repeat")
    parser.add_argument("--repeats", type=int, default=2, help="alternating condgan/plain windows per setup")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rss-steps", type=int, default=200)
    parser.add_argument("--nproc", type=int, default=0,
                        help="also time fm as `--nproc N` gloo ranks of --threads/N threads each (wall time: "
                             "run on an otherwise idle machine)")
    parser.add_argument("--nproc-steps", type=int, default=100)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="config override for both loops (e.g. train.channels_last=true)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    extra = [f"train.threads={args.threads}", *args.set]
    ceiling = matmul_ceiling()
    rows = []
    setups = _setups(extra)
    for name, (cfg, data) in setups.items():
        ours, plain = [], []
        for _ in range(args.repeats):
            ours.append(time_condgan(cfg, data, args.seconds))
            plain.append(time_plain(cfg, data, args.seconds))
            print(f"{name}: condgan {ours[-1][0]:.0f} img/s wall, {ours[-1][1]:.0f} img/CPU-s; "
                  f"plain {plain[-1][0]:.0f} img/s wall, {plain[-1][1]:.0f} img/CPU-s", flush=True)
        ours_wall, ours_cpu = np.median(ours, axis=0)
        plain_wall, plain_cpu = np.median(plain, axis=0)
        flops = step_flops(cfg, data)
        achieved = flops * ours_cpu / cfg.train.batch_size  # per CPU-second
        rows.append((name, cfg, ours_wall, ours_cpu, plain_wall, plain_cpu, flops, achieved))
    ranks = None
    if args.nproc:
        fm_cfg = resolve_config(base=setups["fm"][0].to_dict(),
                                overrides=[f"train.threads={max(1, args.threads // args.nproc)}"])
        ranks = time_condgan_ranks(fm_cfg, args.nproc, args.nproc_steps)
    rss = default_run_peak_rss(args.threads, args.rss_steps)
    print(f"\nmachine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}; float32 matmul ceiling {ceiling / 1e9:.1f} GFLOP per CPU-second")
    print("| setup | arch | batch | condgan img/s (wall) | plain img/s (wall) | condgan img/CPU-s | plain img/CPU-s "
          "| speed-up (CPU time) | GFLOP/step | achieved GFLOP/CPU-s | of ceiling |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, cfg, ours_wall, ours_cpu, plain_wall, plain_cpu, flops, achieved in rows:
        arch = "acgan_cifar" if name == "cifar" else "dcgan 28px"
        print(f"| {name} | {arch} | {cfg.train.batch_size} | {ours_wall:.0f} | {plain_wall:.0f} | {ours_cpu:.0f} | "
              f"{plain_cpu:.0f} | {ours_cpu / plain_cpu:.2f}x | {flops / 1e9:.2f} | {achieved / 1e9:.1f} | "
              f"{achieved / ceiling:.0%} |")
    if ranks is not None:
        fm = rows[0]
        print(f"\nfm as {args.nproc} gloo ranks x {max(1, args.threads // args.nproc)} threads: {ranks:.0f} img/s wall "
              f"(one process: condgan {fm[2]:.0f}, plain {fm[4]:.0f})")
    print(f"\npeak RSS of `condgan train --data fashion-mnist --steps {args.rss_steps}` (defaults): {rss:.2f} GiB")
    print(f"command: {' '.join(['python', *sys.argv])}")


if __name__ == "__main__":
    main()
