"""Evaluation speed: the suite on 10,000 28×28 samples, MS-SSIM, and one 2048-d FID.

1. The full `condgan eval` suite (the default metrics but CAS, and interpolation, which needs a
   run) on the Fashion-MNIST test images standing in for 10,000 samples, judged by the cached
   Fashion-MNIST judge: a cold run (real test/train features computed and cached) and a warm run
   (cached); the warm run is the figure to compare with the 30 s target. CAS trains a classifier
   on the samples (minutes, budget 3 CPU-minutes) and is timed on its own row (`--skip-cas`).
   Beside it, on the same judge features: condgan's is/fid/kid/prdc functions and torch-fidelity's
   `isc_features_to_metric`, `fid_features_to_statistics` + `fid_statistics_to_metric`,
   `kid_features_to_metric` and `prc_features_to_metric` (precision/recall only).
2. MS-SSIM pairs/s of `condgan.metrics.msssim.ms_ssim` and `pytorch_msssim.ms_ssim` on the same
   pairs of 28×28 real images at the same settings (7-tap window, sigma 1.5, 3 scales with the
   renormalised standard weights, data range [0, 1]), and their largest difference.
   pytorch-msssim asserts side > 16 (win - 1) whatever the number of scales; under `python -O`
   that assert is skipped and its code runs unchanged, valid here since every scale fits the
   window. The script therefore re-runs itself with -O.

3. One FID at 2048 dimensions, 10,000 vs 10,000 samples (covariances included), with
   `condgan.metrics.fid.fid`, beside torch-fidelity's `fid_features_to_statistics` +
   `fid_statistics_to_metric` (eigenvalues of the non-symmetric product) on the same float32 arrays
   when torch-fidelity is installed, and optionally (`--fid-sqrtm`) pytorch-fid's
   `calculate_frechet_distance` (scipy sqrtm, ~20 s); then intra-FID over 10 classes of 1,000. The
   arrays are synthetic pool3-like features (ReLU of correlated Gaussians), since the Inception
   weights are not available here. torch-fidelity's package imports torchvision; the script uses
   tests/torchvision_compat.py for that, as the tests do.

    python -O benchmarks/eval_speed.py --threads 2 [--samples S.npz] [--pairs 100] [--skip-suite]
        [--skip-cas] [--skip-msssim] [--skip-fid] [--fid-sqrtm]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch


def suite(args: argparse.Namespace) -> list[tuple[str, float, float, dict]]:
    from condgan.data import load_dataset
    from condgan.evaluation.suite import DEFAULT_METRICS, EvalOptions, evaluate
    from condgan.metrics.cas import classification_accuracy_score
    from condgan.metrics.features import judge_extractor, real_features
    from condgan.quickstart import ensure_judge
    from condgan.samples import check_against, read_samples

    real = load_dataset("fashion-mnist", "test")
    if args.samples:
        samples = read_samples(args.samples)
        check_against(samples, real, args.samples, args.pairs)
        gen_x, gen_y = samples.float_images(), samples.labels
    else:
        gen_x, gen_y = real.x(slice(0, args.n)), real.y[: args.n].numpy()
    judge = ensure_judge("fashion-mnist")
    cache = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="condgan-eval-bench-"))
    metrics = [m for m in DEFAULT_METRICS if m != "cas"]
    rows = []
    for label in ("cold (real features computed, cached)", "warm (real features from cache)"):
        t0, c0 = time.perf_counter(), time.process_time()
        options = EvalOptions(pairs=args.pairs, cache_dir=cache, out_dir=Path(args.out) / label.split()[0],
                              progress=False)
        result = evaluate(gen_x, gen_y, real, judge=judge, metrics=metrics,
                          train_data=lambda: load_dataset("fashion-mnist", "train"), options=options)
        rows.append((label, time.perf_counter() - t0, time.process_time() - c0, result))
    if not args.skip_cas:
        t0, c0 = time.perf_counter(), time.process_time()
        cas = classification_accuracy_score(gen_x, gen_y, real)
        rows.append((f"cas alone (a JudgeCNN trained on the samples; cas = {cas['cas']:.4f})",
                     time.perf_counter() - t0, time.process_time() - c0, None))
    print(f"\nsuite ({', '.join(metrics)}) on {len(gen_x)} samples of {tuple(gen_x.shape[1:])}, {judge.id}, "
          f"pairs/class {args.pairs}")
    print("| run | wall (s) | process CPU (s, all threads) |\n|---|---|---|")
    for label, secs, cpu, _ in rows:
        print(f"| {label} | {secs:.1f} | {cpu:.1f} |")
    print("\nwarm run, per metric (wall s):\n| metric | s |\n|---|---|")
    for name, secs in rows[1][3]["seconds"].items():
        print(f"| {name} | {secs:.1f} |")
    ex = judge_extractor(judge)
    gen_f, gen_logits = ex.extract(gen_x, progress=False)
    real_f = real_features(real, "test", ex, cache_dir=cache, progress=False)[0]
    beside_torch_fidelity(gen_f, gen_logits, real_f, args.repeats)
    return rows


def beside_torch_fidelity(gen_f, gen_logits, real_f, repeats: int) -> None:
    """condgan's is/fid/kid/prdc and torch-fidelity's equivalents on the same judge features."""
    from condgan.metrics import fid, inception_score, kid, prdc

    ours = {
        "is": lambda: inception_score.inception_score(gen_logits, splits=10),
        "fid": lambda: fid.fid(real_f, gen_f),
        "kid": lambda: kid.kid(real_f, gen_f, num_subsets=100, subset_size=1000),
        "prdc": lambda: prdc.prdc(real_f, gen_f, k=5),
    }
    theirs = {}
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from torchvision_compat import make_torchvision_importable

    make_torchvision_importable()
    try:
        from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
        from torch_fidelity.metric_isc import isc_features_to_metric
        from torch_fidelity.metric_kid import kid_features_to_metric
        from torch_fidelity.metric_prc import prc_features_to_metric
    except ImportError as e:
        print(f"\ntorch-fidelity not importable ({e}); only condgan's metric functions are timed")
    else:
        g, r, lg = torch.from_numpy(gen_f), torch.from_numpy(real_f), torch.from_numpy(gen_logits)
        kid_args = dict(kid_subsets=100, kid_subset_size=1000, kid_degree=3, kid_gamma=None, kid_coef0=1,
                        verbose=False, rng_seed=2020)
        theirs = {
            "is": lambda: isc_features_to_metric(lg, splits=10),
            "fid": lambda: fid_statistics_to_metric(fid_features_to_statistics(r), fid_features_to_statistics(g),
                                                    False),
            "kid": lambda: kid_features_to_metric(g, r, **kid_args),
            "prdc": lambda: prc_features_to_metric(g, r, prc_neighborhood=5, prc_batch_size=10000,
                                                   save_cpu_ram=False, verbose=False),
        }
    print(f"\nmetric functions on the same judge features ({len(gen_f)} vs {len(real_f)}, D = {gen_f.shape[1]}), "
          f"wall s, best of {repeats}:\n| metric | condgan | torch-fidelity |\n|---|---|---|")
    for name, fn in ours.items():
        mine = min(_timed(fn, repeats)[0])
        other = f"{min(_timed(theirs[name], repeats)[0]):.2f}" if name in theirs else "–"
        note = " (precision/recall only)" if name == "prdc" and theirs else ""
        print(f"| {name} | {mine:.2f} | {other}{note} |")


def msssim_speed(args: argparse.Namespace) -> None:
    from pytorch_msssim import ms_ssim as reference

    from condgan.data import load_dataset
    from condgan.metrics.msssim import default_settings, ms_ssim

    real = load_dataset("fashion-mnist", "test")
    g = torch.Generator().manual_seed(0)
    i, j = torch.randint(0, len(real), (2, args.msssim_pairs), generator=g)
    x, y = real.x(i), real.x(j)
    s = default_settings(28, 28)
    timings = {}
    for name, fn in (
        ("condgan ms_ssim", lambda a, b: ms_ssim(a, b, batch_size=256)),
        ("pytorch_msssim.ms_ssim", lambda a, b: reference((a + 1) / 2, (b + 1) / 2, data_range=1.0,
                                                           win_size=s.win_size, weights=list(s.weights),
                                                           size_average=False)),
    ):
        fn(x[:256], y[:256])  # warm-up
        t0 = time.perf_counter()
        out = torch.cat([fn(x[k:k + 256], y[k:k + 256]) for k in range(0, len(x), 256)])
        timings[name] = (len(x) / (time.perf_counter() - t0), out)
    diff = (timings["condgan ms_ssim"][1].double() - timings["pytorch_msssim.ms_ssim"][1].double()).abs().max()
    print(f"\nMS-SSIM, {len(x)} pairs of 28×28×1 Fashion-MNIST test images, win {s.win_size}, sigma 1.5, "
          f"{len(s.weights)} scales, weights {tuple(round(w, 4) for w in s.weights)}; max |difference| "
          f"{float(diff):.2e}")
    print("| implementation | pairs/s |\n|---|---|")
    for name, (rate, _) in timings.items():
        print(f"| {name} | {rate:.0f} |")


def _pool3_like(n: int, d: int, seed: int, scale: float = 1.0):
    import numpy as np

    rng = np.random.default_rng(seed)
    mix = (np.random.default_rng(99).normal(size=(d, d)) / np.sqrt(d)).astype(np.float32)
    return np.maximum(rng.standard_normal((n, d), dtype=np.float32) @ mix, 0) * scale


def _timed(fn, repeats: int):
    """(wall seconds of each run, process CPU seconds of each run, the last value)."""
    walls, cpus, value = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        value = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return walls, cpus, value


def fid_speed(args: argparse.Namespace) -> None:
    import numpy as np

    from condgan.metrics.fid import fid, intra_class_fid

    n, d = args.fid_samples, 2048
    a, b = _pool3_like(n, d, 0), _pool3_like(n, d, 1, scale=1.1)
    rows = [("condgan.metrics.fid.fid", *_timed(lambda: fid(a, b)["fid"], args.repeats))]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from torchvision_compat import make_torchvision_importable

    status = make_torchvision_importable()
    try:
        from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    except ImportError as e:
        print(f"\ntorch-fidelity not importable ({e}); its FID is not timed")
    else:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        rows.append(("torch_fidelity fid_features_to_statistics + fid_statistics_to_metric", *_timed(
            lambda: fid_statistics_to_metric(fid_features_to_statistics(ta), fid_features_to_statistics(tb),
                                             False)["frechet_inception_distance"], args.repeats)))
    if args.fid_sqrtm:
        try:
            from pytorch_fid.fid_score import calculate_frechet_distance
        except ImportError as e:
            print(f"\npytorch-fid not importable ({e}); its FID is not timed")
        else:
            def pytorch_fid_value():
                a64, b64 = a.astype(np.float64), b.astype(np.float64)
                return calculate_frechet_distance(a64.mean(0), np.cov(a64, rowvar=False), b64.mean(0),
                                                  np.cov(b64, rowvar=False))
            rows.append(("pytorch_fid calculate_frechet_distance (+ np.cov)", *_timed(pytorch_fid_value, 1)))
    ours = rows[0][3]
    print(f"\nFID, {n} vs {n} synthetic pool3-like float32 features, D = {d}, covariances included "
          f"(torchvision: {status}); load average now {os.getloadavg()[0]:.1f}")
    print("| implementation | wall s, best | wall s, each run | process CPU s, each run | FID | relative difference "
          "to condgan |\n|---|---|---|---|---|---|")
    for name, walls, cpus, value in rows:
        print(f"| {name} | {min(walls):.2f} | {', '.join(f'{w:.2f}' for w in walls)} | "
              f"{', '.join(f'{c:.2f}' for c in cpus)} | {value:.6f} | {(value - ours) / ours:.1e} |")
    k, per_class = 10, n // 10
    ya, yb = np.repeat(np.arange(k), per_class), np.repeat(np.arange(k), per_class)
    walls, cpus, out = _timed(lambda: intra_class_fid(a[: k * per_class], ya, b[: k * per_class], yb), 1)
    print(f"\nintra-FID over {k} classes of {per_class} vs {per_class} (D = {d}): {walls[0]:.2f} s wall, "
          f"{cpus[0]:.2f} s process CPU, mean {out['intra_fid_mean']:.4f}")


def main() -> None:
    if __debug__:  # pytorch-msssim's size assert (see the module docstring) is skipped under -O
        os.execv(sys.executable, [sys.executable, "-O", *sys.argv])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=10_000, help="real test images used as samples")
    parser.add_argument("--samples", help="a samples .npz instead of the real test images")
    parser.add_argument("--pairs", type=int, default=100, help="MS-SSIM pairs per class (diversity)")
    parser.add_argument("--msssim-pairs", type=int, default=4096)
    parser.add_argument("--cache", help="real-feature cache folder (default: a fresh temporary one)")
    parser.add_argument("--out", default="runs/bench-eval", help="figures of the two runs")
    parser.add_argument("--skip-suite", action="store_true")
    parser.add_argument("--skip-cas", action="store_true", help="do not time CAS (minutes)")
    parser.add_argument("--skip-msssim", action="store_true")
    parser.add_argument("--skip-fid", action="store_true")
    parser.add_argument("--fid-samples", type=int, default=10_000, help="samples per side of the 2048-d FID")
    parser.add_argument("--fid-sqrtm", action="store_true", help="also time pytorch-fid's sqrtm route (~20 s)")
    parser.add_argument("--repeats", type=int, default=3, help="FID timings: best of this many runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads, "
          f"load average at start {os.getloadavg()[0]:.1f}")
    print("command: python -O " + " ".join(sys.argv))
    if not args.skip_suite:
        suite(args)
    if not args.skip_msssim:
        msssim_speed(args)
    if not args.skip_fid:
        fid_speed(args)
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
