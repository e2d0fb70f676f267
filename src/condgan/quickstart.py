"""The built-in default job: the default AC-GAN recipe on Fashion-MNIST, trained, sampled and judged.

Trains (or finishes) the `acgan-fashion-mnist` preset (its own length, or `steps` steps; the
recipe and its measurement are in docs/quality.md), trains the judge CNN on
the real training set if it is not cached yet, draws 10,000 class-balanced samples, evaluates them
(`QUICK_METRICS`: judge accuracy, FID with its real-vs-real floor, precision/recall, per-class
MS-SSIM) into `out/eval/` (metrics.json + report.html) and prints each headline number beside its
real-data reference and a plain-words reading, as the report's summary does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from condgan.config import preset_or_path
from condgan.config import resolve_config
from condgan.data import load_dataset
from condgan.evaluation.suite import EvalOptions, evaluate
from condgan.metrics.classifier import default_judge_path, load_judge, save_judge, train_judge
from condgan.report.grid import save_png
from condgan.report.html import HEADLINES, fmt_number, fmt_percent, write_report
from condgan.samples import write_samples
from condgan.sampling import class_grid, draw_samples, load_run
from condgan.training.loop import train
from condgan.run.directory import holds_run

# The quickstart's evaluation: the cheap headline metrics (CAS and memorisation take minutes).
QUICK_METRICS = ("accuracy", "fid", "prdc", "diversity")
# MS-SSIM pairs per class: 500 know each class's mean to about ±0.007 (the paper's 100: ±0.02) for
# a few CPU-seconds at 28 px (docs/evaluation.md, "Sampling error")
QUICK_PAIRS = 500
DEFAULT_PRESET = "acgan-fashion-mnist"


def ensure_judge(dataset: str, progress: bool = True):
    """The cached judge for `dataset` at native resolution, trained first if missing."""
    train_set = load_dataset(dataset, "train")
    path = default_judge_path(train_set.name, train_set.sample_shape)
    if path.exists():
        return load_judge(path)
    test_set = load_dataset(dataset, "test")
    model, acc, _ = train_judge(train_set, test_set, progress=progress)
    return save_judge(model, path, dataset=train_set.name, class_names=list(train_set.class_names),
                      sample_shape=train_set.sample_shape, test_accuracy=acc, seed=0)


def run_quickstart(out: Path, steps: int | None = None, force: bool = False, n_samples: int = 10_000,
                   preset: str = DEFAULT_PRESET) -> dict[str, float]:
    cfg = resolve_config([preset_or_path(preset)], [f"train.steps={steps}"] if steps else [])
    # An earlier quickstart in `out` is continued to the requested length; a run of another config
    # there (e.g. of an earlier default preset) is refused with the ways on (run.directory.plan_run_dir).
    trained = train(cfg, out, resume=holds_run(out) and not force, force=force)
    judge = ensure_judge(cfg.data.name)
    run = load_run(out)
    samples = draw_samples(run.method, n_samples)
    write_samples(out / "samples.npz", samples)
    z = run.method.latent(10, generator=torch.Generator().manual_seed(0))
    grid = save_png(class_grid(run.method, z, list(range(run.num_classes))), out / "grid.png")
    real = load_dataset(cfg.data.name, "test", data_dir=cfg.data.data_dir)
    report = out / "eval"
    # fewer pairs where a small dataset's class cannot form QUICK_PAIRS distinct ones
    smallest = min(int(np.bincount(np.asarray(y), minlength=run.num_classes).min()) for y in (samples.labels, real.y))
    pairs = max(1, min(QUICK_PAIRS, smallest * (smallest - 1) // 2))
    result = evaluate(samples.float_images(), samples.labels, real, judge=judge, metrics=QUICK_METRICS,
                      options=EvalOptions(pairs=pairs, out_dir=report, progress=False))
    write_report(result, report)
    m = result["metrics"]
    print(f"\n{preset} (method {cfg.method.name}) on {cfg.data.name}, {run.step} steps of {cfg.train.batch_size} images")
    speed = f"{trained.images_per_sec:.0f} images/s" if trained.images_per_sec else "(already trained)"
    print(f"  training speed: {speed}; {n_samples} samples judged by {judge.id}")
    print(f"  {'':32s} {'samples':>8s}  {'real reference':<34s}")
    for h in HEADLINES:
        value = h.value(m)
        if value is None:
            continue
        shown = fmt_percent(value) if h.key == "accuracy" else fmt_number(value)
        print(f"  {h.label:32s} {shown:>8s}  {(h.ref(m) or '–') + ' (' + h.reference + ')':<34s}")
    for h in HEADLINES:
        reading = h.reading(m) if h.value(m) is not None else None
        if reading:
            print(f"  - {reading}")
    print(f"  class grid (rows: fixed z, columns: classes): {grid}")
    print(f"  report: {report / 'report.html'}")
    return {"steps": float(run.step), "train_images_per_sec": trained.images_per_sec,
            "judge_accuracy_on_samples": m["accuracy"], "judge_accuracy_on_real_test": m["real_accuracy"],
            "fid": m["fid"], "fid_real_floor": m["fid_real_floor"], "recall": m["recall"]}
