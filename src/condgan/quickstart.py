"""The built-in default job: a short AC-GAN run on Fashion-MNIST, sampled and judged.

Trains (or finishes) the `acgan-fashion-mnist` preset for `steps` steps, trains the judge CNN on
the real training set if it is not cached yet, draws 10,000 class-balanced samples and prints the
judge's accuracy on them next to its accuracy on the real test set.
"""

from __future__ import annotations

from pathlib import Path

import torch

from condgan.config import preset_or_path
from condgan.config import resolve_config
from condgan.data import load_dataset
from condgan.metrics.classifier import default_judge_path, load_judge, save_judge, train_judge
from condgan.report.grid import save_png
from condgan.samples import write_samples
from condgan.sampling import class_grid, draw_samples, load_run
from condgan.training.loop import train
from condgan.run.directory import holds_run


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


def run_quickstart(out: Path, steps: int = 2000, force: bool = False, n_samples: int = 10_000) -> dict[str, float]:
    cfg = resolve_config([preset_or_path("acgan-fashion-mnist")], [f"train.steps={steps}"])
    # An earlier quickstart in `out` is continued to the requested length rather than refused.
    result = train(cfg, out, resume=holds_run(out) and not force, force=force)
    judge = ensure_judge(cfg.data.name)
    run = load_run(out)
    samples = draw_samples(run.method, n_samples)
    write_samples(out / "samples.npz", samples)
    _, logits = judge.run(samples.float_images())
    accuracy = float((logits.argmax(1).numpy() == samples.labels).mean())
    z = run.method.latent(10, generator=torch.Generator().manual_seed(0))
    grid = save_png(class_grid(run.method, z, list(range(run.num_classes))), out / "grid.png")
    numbers = {"steps": float(run.step), "train_images_per_sec": result.images_per_sec,
               "judge_accuracy_on_samples": accuracy, "judge_accuracy_on_real_test": judge.test_accuracy}
    print(f"\nAC-GAN on Fashion-MNIST, {run.step} steps of {cfg.train.batch_size} images")
    speed = f"{result.images_per_sec:8.0f} images/s" if result.images_per_sec else "(already trained)"
    print(f"  training speed            {speed}")
    print(f"  judge accuracy, samples   {accuracy:8.4f}   ({n_samples} samples, {judge.id})")
    print(f"  judge accuracy, real test {judge.test_accuracy:8.4f}")
    print(f"  class grid (rows: fixed z, columns: classes): {grid}")
    return numbers
