"""Quality per CPU-minute: every conditional method of condgan on Fashion-MNIST for the same CPU time.

Each entry trains for `--budget` CPU-minutes of this process (`time.process_time`, all threads;
run it alone: two trainings at once on 2 cores slow each other), `--seeds` seeds, one training at a
time. `--points` times during training (equal fractions of the budget) it draws `--curve-n` samples
and scores their FID in judge features against the real test set (the time this takes is not
charged to the budget); at the end it draws `--n` samples and runs the evaluation suite on them
(`condgan.evaluation.suite.evaluate`: judge accuracy with the spread across the cached judges of
seeds 0..`--judges`-1, FID and KID in judge features, precision/recall/density/coverage, per-class
MS-SSIM against real, and CAS with `--cas`). Entries (`--entries`, comma-separated):

    default         condgan's default recipe (preset acgan-fashion-mnist, docs/quality.md)
    acgan-paper     the AC-GAN paper's objective, nets and Adam settings (preset acgan-fashion-mnist-paper)
    plain-loop      benchmarks/reference_loop.py on the same nets and losses (the single-file reference)
    acgan-modern    the paper's nets with the modern recipe (preset acgan-fashion-mnist-modern, docs/quality.md)
    ...             every other entry is a preset name with optional overrides, listed in ENTRIES

Results go to OUT/<entry>-seed<S>.json (an existing file is reused, so an interrupted benchmark
continues where it stopped). A CPU-time budget buys a different number of steps on another CPU
(three times as many between two x86_64 machines of this project), so every result records its
machine (CPU model, threads, torch) and one directory holds one machine and one budget: adding to
or summarising a directory whose results differ in either is refused in one line that names the
file (exit code 2), as is a file there that is not a result; results are written atomically, so an
interrupted run leaves none torn. The script prints the table (mean ± std over seeds), the issue's
targets for the default against their measured values, and draws FID against CPU-minutes for every
entry in OUT/fid-vs-cpu.png.

    python benchmarks/quality_per_budget.py --budget 10 --seeds 0,1,2 --out runs/quality [--cas]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_loop import plain_acgan  # noqa: E402

from condgan.config import Config, preset_or_path, resolve_config  # noqa: E402
from condgan.data import LabelledData, load_dataset  # noqa: E402
from condgan.evaluation.suite import EvalOptions, evaluate  # noqa: E402
from condgan.io import atomic_write_bytes  # noqa: E402
from condgan.metrics.classifier import default_judge_path, load_judge  # noqa: E402
from condgan.metrics.diversity import less_diverse_classes  # noqa: E402
from condgan.metrics.features import judge_extractor, real_features  # noqa: E402
from condgan.metrics.fid import fid  # noqa: E402
from condgan.sampling import Classes, generate  # noqa: E402
from condgan.training import loop  # noqa: E402

# Override groups shared by the CC-LAPGAN entries: the finer G_k as BicycleGAN's cVAE-GAN (a noise
# vector of 8, the cVAE term at its weight 10), and bf16 autocast with channels_last tensors.
FINER_VAE = ["method.finer_noise_dim=8", "method.finer_vae_weight=10"]
BF16 = ["train.amp=bf16", "train.channels_last=true"]
EMA = ["recipe.ema_decay=0.999", "recipe.ema_rampup=0.05"]  # the default recipe's G-EMA
# BicycleGAN on the finer levels: the cVAE term and the latent regression (λ_z 0.5, its code's)
BICYCLE = FINER_VAE + ["method.finer_latent_weight=0.5"]

# entry -> (preset, overrides).
ENTRIES: dict[str, tuple[str, list[str]]] = {
    "default": ("acgan-fashion-mnist", []),
    "acgan-paper": ("acgan-fashion-mnist-paper", []),
    "tacgan": ("tacgan-fashion-mnist", []),
    "adcgan": ("adcgan-fashion-mnist", []),
    # the default before 2026-12-02: ADC-GAN with the default's nets and rate, λ 0.5 (docs/quality.md)
    "adcgan-fast": ("adcgan-fashion-mnist", ["model.g_channels=32", "model.d_channels=32", "optim.g_lr=1.6e-3",
                                             "optim.d_lr=1.6e-3", "method.class_weight=0.5"]),
    # TAC-GAN with the default's nets and rate, and mode seeking (docs/quality.md, "Mode seeking")
    "tacgan-ms": ("tacgan-fashion-mnist", ["model.g_channels=32", "model.d_channels=32", "optim.g_lr=1.6e-3",
                                           "optim.d_lr=1.6e-3", "recipe.mode_seeking=0.3"]),
    "reacgan": ("reacgan-fashion-mnist", []),
    "lapgan": ("lapgan-fashion-mnist", []),
    "cclapgan": ("cclapgan-fashion-mnist", []),
    # the finer D_k at twice the rate, or with the minibatch-std feature (docs/methods-lapgan-selfcond.md);
    # these variants were measured on the preset before its coarse cVAE term, hence coarse_vae_weight=0
    "cclapgan-finer-d2": ("cclapgan-fashion-mnist", ["method.finer_d_lr_scale=2", "method.coarse_vae_weight=0"]),
    "cclapgan-mbstd": ("cclapgan-fashion-mnist", ["method.finer_d_minibatch_std=4", "method.coarse_vae_weight=0"]),
    # the finer G_k as BicycleGAN's cVAE-GAN: a noise vector of 8 and the cVAE term at its weight 10
    "cclapgan-vae": ("cclapgan-fashion-mnist", FINER_VAE + ["method.coarse_vae_weight=0"]),
    # the same term at the coarsest level only (an MLP encoder of I_K and the class); the cclapgan
    # preset since 2026-12-03, so the same as the entry cclapgan from then on
    "cclapgan-coarse-vae": ("cclapgan-fashion-mnist", ["method.coarse_vae_weight=10"]),
    # the preset under bf16 autocast with channels_last tensors: on CPUs with AVX512-BF16 or AMX a
    # CC-LAPGAN step runs 1.9x faster (docs/distributed-and-speed.md), so the budget holds more steps
    "cclapgan-bf16": ("cclapgan-fashion-mnist", BF16),
    # and with the finer levels' cVAE term too (the preset's coarse one kept): the faster step pays for its cost
    "cclapgan-vae-bf16": ("cclapgan-fashion-mnist", FINER_VAE + BF16),
    # and the finer D_k at twice the rate, which narrowed the largest per-class gap without the cVAE term
    "cclapgan-vae-d2-bf16": ("cclapgan-fashion-mnist", FINER_VAE + ["method.finer_d_lr_scale=2"] + BF16),
    # and BicycleGAN's latent regression on the finer levels (λ_z 0.5, its code's): G_k must make
    # residuals from which E_k reads their noise back (docs/methods-lapgan-selfcond.md)
    "cclapgan-bicycle-bf16": ("cclapgan-fashion-mnist", BICYCLE + BF16),
    # and G-EMA as in the default recipe (0.999, ramp-up 0.05): the samples come from the average of
    # the last few hundred steps' G, not from one iterate of a GAN whose per-class spread still moves
    "cclapgan-bicycle-ema-bf16": ("cclapgan-fashion-mnist", BICYCLE + EMA + BF16),
    # and the finer D_k at twice the rate: with G-EMA the class left short of real variety (Sandal) loses
    # it at level 1, whose residuals are twice the real band's RMS: a faster D_k judges them harder
    "cclapgan-bicycle-ema-d2-bf16": ("cclapgan-fashion-mnist",
                                     BICYCLE + EMA + ["method.finer_d_lr_scale=2"] + BF16),
    # and the finer noise as a 4×4 grid of codes, upsampled, with the finer KL at λ/10,000: a region's
    # code sets that region's detail, which a tiled code cannot place (docs/methods-lapgan-selfcond.md)
    "cclapgan-bicycle-grid4-ema-bf16": ("cclapgan-fashion-mnist",
                                        BICYCLE + ["method.finer_noise_grid=4", "method.finer_kl_ratio=1e-4"] + EMA + BF16),
    # and the finer D_k see each class's feature spread over the batch (nets.pyramid.ClassStd): the
    # class left less varied than real (Sandal) is told apart by its own spread, not the batch's
    "cclapgan-bicycle-cstd-ema-bf16": ("cclapgan-fashion-mnist",
                                       BICYCLE + ["method.finer_d_class_std=true"] + EMA + BF16),
    # and the class scaling and shifting G_K's hidden units (FiLM): with the class only concatenated
    # to z, the coarse level gives every class about the same spread (docs/methods-lapgan-selfcond.md)
    "cclapgan-bicycle-gain-ema-bf16": ("cclapgan-fashion-mnist",
                                       BICYCLE + ["method.coarse_class_gain=true"] + EMA + BF16),
    # and the finer D_k see l_k beside h_k + l_k: the paper's D_k sees only the sum, so G_k may redraw
    # the coarse content it refines (docs/methods-lapgan-selfcond.md)
    "cclapgan-bicycle-dlow-ema-bf16": ("cclapgan-fashion-mnist",
                                       BICYCLE + ["method.finer_d_sees_low=true"] + EMA + BF16),
    # and BicycleGAN's latent regression at λ_z 1: with D_k holding G_k to its l_k, the finer levels no
    # longer add variety below their band, and a stronger regression gives it back as detail
    "cclapgan-bicycle-dlow-lz1-ema-bf16": ("cclapgan-fashion-mnist",
                                           FINER_VAE + ["method.finer_latent_weight=1", "method.finer_d_sees_low=true"]
                                           + EMA + BF16),
    "plain-loop": ("acgan-fashion-mnist-paper", []),
    # SN on D, hinge, G-EMA ramped up (the curve and the final samples come from the average), DiffAugment
    # translation, betas (0, 0.999): docs/quality.md
    "acgan-modern": ("acgan-fashion-mnist-modern", []),
    "cgan-projection-modern": ("cgan-fashion-mnist", [
        "method.cgan_variant=projection", "method.d_source_loss=hinge", "method.g_source_loss=hinge",
        "optim.g_beta1=0.0", "optim.g_beta2=0.999", "optim.d_beta1=0.0", "optim.d_beta2=0.999",
        "recipe.spectral_norm=d", "recipe.ema_decay=0.999", "recipe.ema_rampup=0.05", "recipe.diffaugment=translation"]),
}
DEFAULT_ENTRY = "default"  # the entry the targets are checked for
PAPER_ENTRY = "acgan-paper"
PLAIN_ENTRY = "plain-loop"
CCLAPGAN_ENTRY = "cclapgan"
SUITE = ["accuracy", "fid", "kid", "prdc", "diversity"]


class Refused(Exception):
    """Bad input or a result directory this run must not touch: main prints one line and exits 2."""


class _BudgetSpent(Exception):
    """Ends a condgan training run once its CPU budget is used."""


class Clock:
    """Process CPU seconds spent training since the first step: excludes setup (data loading, net
    construction) and the time the snapshots take."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.excluded = 0.0

    def spent(self) -> float:
        if self.start is None:  # the first step's end: count from here
            self.start = time.process_time()
        return time.process_time() - self.start - self.excluded

    def excluding(self, fn: Callable[[], object]) -> object:
        t0 = time.process_time()
        try:
            return fn()
        finally:
            self.excluded += time.process_time() - t0


def this_machine(threads: int) -> dict[str, str | int]:
    """What a CPU-time budget depends on: the CPU (Linux: /proc/cpuinfo's model name, family and model,
    since a virtual machine may name only the vendor), the threads and torch."""
    cpu = platform.processor() or platform.machine()
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines()
                    if ":" in line)
        info = {k.strip(): v.strip() for k, v in info.items()}
        cpu = f"{info['model name']} (family {info.get('cpu family', '?')}, model {info.get('model', '?')})"
    except (OSError, KeyError):
        pass
    return {"cpu": cpu, "threads": threads, "torch": torch.__version__}


def result_files(out: Path) -> dict[Path, dict]:
    """Every OUT/<entry>-seed<S>.json; one that is not a result is refused in one line naming it."""
    rows = {}
    for path in sorted(out.glob("*-seed*.json")):
        try:
            row = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise Refused(f"{path} is not a result file of this benchmark ({exc!r}); "
                          "move it away or use another --out") from None
        if not isinstance(row, dict) or "budget_cpu_min" not in row:
            raise Refused(f"{path} is not a result file of this benchmark (no budget_cpu_min); "
                          "move it away or use another --out")
        rows[path] = row
    return rows


def check_one_setup(rows: dict[Path, dict], this_run: tuple[dict, float] | None = None) -> None:
    """Exit with one line when the result files (and `this_run`'s machine and budget) differ in machine
    or budget: CPU-minutes of different setups are not comparable, so they never share a table."""
    setups = {} if this_run is None else {"this run": this_run}
    setups |= {str(p): (row.get("machine", "not recorded"), row["budget_cpu_min"]) for p, row in rows.items()}
    if not setups:
        return
    first_where, first = next(iter(setups.items()))
    for where, setup in setups.items():
        if setup != first:
            raise Refused(f"{where} is {_describe_setup(setup)}, but {first_where} is {_describe_setup(first)}: "
                          "results of different machines or budgets do not share a table; use another --out")


def _describe_setup(setup: tuple) -> str:
    machine, budget = setup
    if isinstance(machine, dict):
        machine = f"{machine['cpu']}, {machine['threads']} threads, torch {machine['torch']}"
    return f"{machine}, budget {budget} CPU-min"


def _config(entry: str, seed: int, extra: list[str]) -> Config:
    preset, overrides = ENTRIES[entry]
    return resolve_config([preset_or_path(preset)], overrides=[*overrides, *extra, f"train.seed={seed}",
                                                               "train.steps=100000000", "train.ckpt_every=100000000",
                                                               "train.grid_every=100000000", "train.log_every=100"])


def _sample_plain(G: torch.nn.Module, cfg: Config, n: int, num_classes: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % num_classes
    G.eval()
    with torch.no_grad():
        x = torch.cat([G(torch.randn(min(500, n - s), cfg.model.z_dim, generator=gen), labels[s:s + 500])
                       for s in range(0, n, 500)])
    G.train()
    return x.clamp(-1, 1), labels.numpy()


def _sample_method(method, n: int, seed: int) -> tuple[torch.Tensor, np.ndarray | None]:
    was_training = method.training
    method.eval()
    with torch.no_grad():
        x, labels = generate(method, n, Classes.balanced(), seed=seed)
    method.train(was_training)
    return x.clamp(-1, 1), None if labels is None else labels.numpy()


def train_entry(entry: str, seed: int, args: argparse.Namespace, real: LabelledData, judge) -> dict:
    """Train `entry` for the budget; returns the curve (CPU-min, step, FID) and the final samples."""
    cfg = _config(entry, seed, args.set)
    budget = args.budget * 60.0
    marks = [budget * (k + 1) / args.points for k in range(args.points)]
    ex = judge_extractor(judge)
    real_f = real_features(real, "test", ex, progress=False)[0]
    curve: list[dict] = []
    final: dict = {}
    clock = Clock()

    def snapshot(draw: Callable[[int], tuple[torch.Tensor, np.ndarray | None]], step: int) -> bool:
        """At each mark: the curve's FID; at the last: the final samples. True when the budget is spent."""
        spent = clock.spent()
        if spent < marks[len(curve)]:
            return False

        def measure():
            x, _ = draw(args.curve_n)
            curve.append({"cpu_min": spent / 60, "step": step,
                          "fid": fid(real_f, ex.extract(x, progress=False)[0])["fid"]})
            if len(curve) == len(marks):
                final["x"], final["y"] = draw(args.n)
                final["step"], final["cpu_min"] = step, spent / 60
        clock.excluding(measure)
        return len(curve) == len(marks)

    torch.set_num_threads(args.threads)
    if entry == PLAIN_ENTRY:
        data = loop.load_training_data(cfg).data
        for step, G in plain_acgan(cfg, data):
            if snapshot(lambda n, G=G: _sample_plain(G, cfg, n, data.num_classes, seed + 1), step):
                break
    else:
        def monitor(method, step: int) -> dict[str, float]:
            if snapshot(lambda n: _sample_method(method, n, seed + 1), step):
                raise _BudgetSpent
            return {}

        run_dir = Path(args.out) / "runs" / f"{entry}-seed{seed}"
        try:
            loop.train(cfg, run_dir, force=True, progress=False, monitors=[(1, monitor)])
        except _BudgetSpent:
            pass
    return {"curve": curve, **final}


def score(final: dict, real: LabelledData, judges: list, args: argparse.Namespace) -> dict:
    metrics = SUITE + (["cas"] if args.cas else [])
    label_kind = "class" if final["y"] is not None else "none"
    result = evaluate(final["x"], final["y"], real, label_kind=label_kind, judge=judges[0], extra_judges=judges[1:],
                      metrics=metrics, options=EvalOptions(pairs=args.pairs, progress=False))
    return {"metrics": result["metrics"], "skipped": result["skipped"], "extractors": result["extractors"]}


def run_all(args: argparse.Namespace, machine: dict) -> dict[str, list[dict]]:
    out = Path(args.out)
    saved = result_files(out)
    check_one_setup(saved, (machine, args.budget))
    real = load_dataset("fashion-mnist", "test")
    shape = real.sample_shape
    judges = []
    for s in range(args.judges):
        path = default_judge_path(real.name, shape, s)
        if not path.is_file():
            raise Refused(f"no cached judge of seed {s} ({path}); train it first: "
                          f"condgan classifier train --data fashion-mnist --seed {s}")
        judges.append(load_judge(path))
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict]] = {}
    for entry in args.entries:
        for seed in args.seeds:
            path = out / f"{entry}-seed{seed}.json"
            if path in saved:
                results.setdefault(entry, []).append(saved[path])
                continue
            t0 = time.perf_counter()
            trained = train_entry(entry, seed, args, real, judges[0])
            row = {"entry": entry, "seed": seed, "machine": machine, "budget_cpu_min": args.budget, "curve": trained["curve"],
                   "steps": trained["step"], "train_cpu_min": trained["cpu_min"],
                   "train_wall_min": (time.perf_counter() - t0) / 60, **score(trained, real, judges, args),
                   "judges": [j.id for j in judges]}
            atomic_write_bytes(path, json.dumps(row, indent=1).encode())  # an interrupted write leaves no torn result
            print(f"{entry} seed {seed}: {row['steps']} steps, FID {row['metrics']['fid']:.2f}, "
                  f"accuracy {row['metrics'].get('accuracy', float('nan')):.3f}", flush=True)
            results.setdefault(entry, []).append(row)
    return results


def saved_results(out: Path) -> dict[str, list[dict]]:
    """Every OUT/<entry>-seed<S>.json of a known entry, in ENTRIES order, seeds ascending."""
    files = result_files(out)
    check_one_setup(files)
    results: dict[str, list[dict]] = {}
    for entry in ENTRIES:
        rows = [row for p, row in files.items() if p.name.startswith(f"{entry}-seed")]
        if rows:
            results[entry] = sorted(rows, key=lambda r: r["seed"])
    if not results:
        raise Refused(f"--summarise: no result files (<entry>-seed<S>.json) in {out}")
    return results


def _per_class(m: dict, prefix: str) -> np.ndarray | None:
    keys = sorted((k for k in m if k.startswith(f"{prefix}/class_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    return np.array([m[k] for k in keys]) if keys else None


def _mean_std(rows: list[dict], fn: Callable[[dict], float | None]) -> str:
    v = np.array([x for x in (fn(r["metrics"]) for r in rows) if x is not None], dtype=np.float64)
    if not len(v):
        return "–"
    return f"{v.mean():.3f}" + (f" ± {v.std(ddof=1):.3f}" if len(v) > 1 else "")


def _worst_class_ratio(m: dict) -> float | None:
    gen, real = _per_class(m, "accuracy"), _per_class(m, "real_accuracy")
    return None if gen is None or real is None else float((gen / real).min())


def _classes_less_diverse(m: dict, beyond_error: bool = False) -> float | None:
    """Classes whose MS-SSIM exceeds real's by more than the issue's 0.02: the point estimates (with
    --pairs 1000 their difference is known to about ±0.008), or with `beyond_error` only excesses
    beyond twice their standard error (None for results without standard errors)."""
    gen, real = _per_class(m, "msssim_gen"), _per_class(m, "msssim_real")
    if gen is None or real is None:
        return None
    gen_se = real_se = None
    if beyond_error:
        gen_se, real_se = _per_class(m, "msssim_gen_se"), _per_class(m, "msssim_real_se")
        if gen_se is None or real_se is None:
            return None
    return float(sum(less_diverse_classes(gen, real, gen_se, real_se, margin=0.02)))


def _worst_msssim_gap(m: dict) -> float | None:
    """The largest |MS-SSIM_gen − MS-SSIM_real| over the classes (CC-LAPGAN's target: ≤ 0.05)."""
    gen, real = _per_class(m, "msssim_gen"), _per_class(m, "msssim_real")
    return None if gen is None or real is None else float(np.abs(gen - real).max())


COLUMNS: list[tuple[str, Callable[[dict], float | None]]] = [
    ("judge accuracy", lambda m: m.get("accuracy")),
    ("spread across judges (max − min)", lambda m: m["accuracy_judges_max"] - m["accuracy_judges_min"]
     if "accuracy_judges_max" in m else None),
    ("worst class / real", _worst_class_ratio),
    ("FID (judge)", lambda m: m.get("fid")),
    ("KID (judge)", lambda m: m.get("kid_mean")),
    ("precision", lambda m: m.get("precision")),
    ("recall", lambda m: m.get("recall")),
    ("classes MS-SSIM > real + 0.02", _classes_less_diverse),
    ("largest class MS-SSIM gap", _worst_msssim_gap),
    ("CAS", lambda m: m.get("cas")),
]


def table(results: dict[str, list[dict]]) -> None:
    print("\n| entry | seeds | steps | " + " | ".join(c for c, _ in COLUMNS) + " |")
    print("|---" * (3 + len(COLUMNS)) + "|")
    for entry, rows in results.items():
        steps = int(np.mean([r["steps"] for r in rows]))
        cells = [_mean_std(rows, fn) for _, fn in COLUMNS]
        print(f"| {entry} | {len(rows)} | {steps} | " + " | ".join(cells) + " |")


def _first_cpu_at(curve: list[dict], fid_value: float) -> float | None:
    return next((p["cpu_min"] for p in curve if p["fid"] <= fid_value), None)


def targets(results: dict[str, list[dict]], default: str) -> None:
    """The issue's targets for the default entry, each with its measured value (means over seeds)."""
    if default not in results:
        return
    rows = results[default]
    mean = lambda fn: float(np.mean([fn(r["metrics"]) for r in rows]))  # noqa: E731
    checks = [
        # two-sided: samples recognised more often than real test images are easier than real ones
        ("judge accuracy within 3 points of the judge's real accuracy (samples − real)",
         mean(lambda m: m["accuracy"] - m["real_accuracy"]), lambda v: abs(v) <= 0.03),
        ("every class ≥ 0.8 × the judge's real accuracy on it", mean(_worst_class_ratio), lambda v: v >= 0.8),
        ("recall ≥ 0.6", mean(lambda m: m["recall"]), lambda v: v >= 0.6),
        ("every class's MS-SSIM ≤ real + 0.02 (classes above)", mean(_classes_less_diverse), lambda v: v == 0),
    ]
    beyond_error = lambda m: _classes_less_diverse(m, beyond_error=True)  # noqa: E731
    if all(beyond_error(r["metrics"]) is not None for r in rows):
        checks.append(("  the same, counting only excesses beyond twice their standard error",
                       mean(beyond_error), lambda v: v == 0))
    if PAPER_ENTRY in results and default != PAPER_ENTRY:
        paper = float(np.mean([r["metrics"]["fid"] for r in results[PAPER_ENTRY]]))
        checks.append(("FID ≤ ½ of the paper AC-GAN's (ratio)", mean(lambda m: m["fid"]) / paper, lambda v: v <= 0.5))
    if PLAIN_ENTRY in results:
        ratios = []
        for plain, ours in zip(results[PLAIN_ENTRY], rows):
            at = _first_cpu_at(ours["curve"], plain["metrics"]["fid"])
            ratios.append(np.inf if at is None else at / plain["train_cpu_min"])
        checks.append(("reaches the plain loop's final FID in ≤ ⅓ of its CPU time (ratio)", float(np.mean(ratios)),
                       lambda v: v <= 1 / 3))
    if CCLAPGAN_ENTRY in results and default != CCLAPGAN_ENTRY:
        cc = results[CCLAPGAN_ENTRY]
        cc_mean = lambda fn: float(np.mean([fn(r["metrics"]) for r in cc]))  # noqa: E731
        checks.append((f"{CCLAPGAN_ENTRY}: judge accuracy ≥ 0.8 × the default's (ratio)",
                       cc_mean(lambda m: m["accuracy"]) / mean(lambda m: m["accuracy"]), lambda v: v >= 0.8))
        checks.append((f"{CCLAPGAN_ENTRY}: every class's MS-SSIM within 0.05 of real (largest gap)",
                       cc_mean(_worst_msssim_gap), lambda v: v <= 0.05))
    print(f"\ntargets for {default}:\n| target | measured | met |\n|---|---|---|")
    for name, value, ok in checks:
        print(f"| {name} | {value:.3f} | {'yes' if ok(value) else 'no'} |")


def figure(results: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for entry, rows in results.items():
        points = min(len(r["curve"]) for r in rows)
        cpu = np.mean([[p["cpu_min"] for p in r["curve"][:points]] for r in rows], axis=0)
        fids = np.array([[p["fid"] for p in r["curve"][:points]] for r in rows])
        (line,) = ax.plot(cpu, fids.mean(0), marker="o", ms=3, label=entry)
        if len(rows) > 1:  # the band in its line's colour (fills draw from a colour cycle of their own)
            ax.fill_between(cpu, fids.min(0), fids.max(0), color=line.get_color(), alpha=0.15)
    # one directory holds one machine (`check_one_setup`), so the first row's threads are every row's
    machine = next(iter(results.values()))[0].get("machine")
    threads = f", {machine['threads']} threads" if isinstance(machine, dict) else ""
    ax.set_xlabel(f"training CPU-minutes (process time{threads})")
    ax.set_ylabel("FID in judge features (lower is better)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Fashion-MNIST, equal CPU budgets (mean over seeds, band: min–max)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"\nwrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=10.0, help="training CPU-minutes per run")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--entries", default=",".join(ENTRIES), help=f"comma-separated subset of {', '.join(ENTRIES)}")
    parser.add_argument("--default", default=DEFAULT_ENTRY, help="the entry whose targets are checked")
    parser.add_argument("--points", type=int, default=10, help="FID measurements along each run")
    parser.add_argument("--curve-n", type=int, default=5000, help="samples per curve point")
    parser.add_argument("--n", type=int, default=10_000, help="samples of the final evaluation")
    parser.add_argument("--pairs", type=int, default=1000,
                        help="MS-SSIM pairs per class (at the paper's 100, two draws of the same real images differ "
                             "by more than 0.02 in about a quarter of the classes; at 1000 the difference is known "
                             "to about ±0.008)")
    parser.add_argument("--judges", type=int, default=2, help="cached judges of seeds 0..N-1")
    parser.add_argument("--cas", action="store_true", help="also CAS (about 1.5 CPU-minutes per run)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override for every entry (e.g. data.num_samples=2000 for a smoke run)")
    parser.add_argument("--out", default="runs/quality")
    parser.add_argument("--summarise", action="store_true",
                        help="train nothing: the table, targets and figure of the result files already in --out "
                             "(any seeds per entry; --entries and --seeds are ignored)")
    args = parser.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.entries = [e.strip() for e in args.entries.split(",") if e.strip()]
    unknown = [e for e in args.entries if e not in ENTRIES]
    if unknown:
        parser.error(f"unknown entries {unknown}; expected some of {', '.join(ENTRIES)}")
    machine = this_machine(args.threads)
    print(f"{machine['cpu']} ({platform.machine()}), torch {machine['torch']}, {args.threads} threads, "
          f"load average at start {os.getloadavg()[0]:.1f}; budget {args.budget} CPU-min per run")
    print("command: python " + " ".join(sys.argv))
    try:
        results = saved_results(Path(args.out)) if args.summarise else run_all(args, machine)
    except Refused as exc:
        print(f"quality_per_budget: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    table(results)
    targets(results, args.default)
    figure(results, Path(args.out) / "fid-vs-cpu.png")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
