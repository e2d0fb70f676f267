"""`condgan eval`: load samples (a samples file, or drawn from a run), the real test set and the
judge(s); run the suite; draw the sample grid; write `metrics.json` + `report.html` (+ figures)
into the report folder.

Judges: `judge_paths` (files, the first one is the judge whose numbers stay under the usual keys),
else `judges` N cached judges of the dataset trained with seeds 0..N-1
(`condgan.metrics.classifier.default_judge_path`). Missing cached judges are not trained here
(each costs minutes): the error names the `condgan classifier train --seed S` commands that make them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from condgan.data import LabelledData, load_dataset
from condgan.device import resolve_device
from condgan.errors import ConfigError
from condgan.evaluation.suite import EvalOptions, default_metrics, evaluate
from condgan.metrics.classifier import Judge, default_judge_path, load_judge
from condgan.metrics.features import inception_extractor
from condgan.report.grid import first_per_class_grid, save_png
from condgan.report.html import write_report
from condgan.samples import Samples, check_against, read_samples
from condgan.sampling import LoadedRun, class_grid, draw_samples, load_run

# The sample grid at the top of the report: rows (fixed z for a run; the first samples of each
# class for a samples file), at most GRID_COLUMNS classes as columns.
GRID_ROWS = 8
GRID_COLUMNS = 20


@dataclass(frozen=True)
class EvalRequest:
    """What to evaluate: exactly one of `samples` (a file) and `run` (a run directory, `n` samples).

    `real` names the dataset (default for a run: its training dataset); `metrics` None means the
    defaults for the samples' labels; `judge_paths` empty means `judges` cached judges of the
    dataset (seeds 0..judges-1; one by default).
    """

    out_dir: Path
    samples: Path | None = None
    run: Path | None = None
    checkpoint: Path | None = None  # with `run`: this checkpoint instead of the newest
    n: int = 10_000
    real: str | None = None
    data_dir: str | None = None
    metrics: tuple[str, ...] | None = None
    judge_paths: tuple[Path, ...] = ()
    judges: int = 1
    inception_weights: Path | None = None
    device: str = "cpu"


def _load(req: EvalRequest, pairs: int | None, seed: int) -> tuple[Samples, LabelledData, dict, LoadedRun | None]:
    """The samples, the real test set, how to load the real training set, and the run (if any)."""
    if req.run is not None:
        loaded = load_run(req.run, req.checkpoint, device=resolve_device(req.device))
        d = loaded.config.data
        data = dict(data_dir=req.data_dir or d.data_dir, resolution=d.resolution, channels=d.channels)
        real = load_dataset(req.real or d.name, "test", **data)
        # Drawn in the samples-file layout (uint8), so the numbers equal those of `condgan sample`'s file.
        samples = draw_samples(loaded.method, req.n, seed=seed, device=resolve_device(req.device))
        check_against(samples, real, f"run {req.run} (--n {req.n})", pairs)
        return samples, real, {"name": req.real or d.name, **data}, loaded
    if req.real is None:
        raise ConfigError("condgan eval: --samples needs --real NAME (the dataset the samples imitate)")
    real = load_dataset(req.real, "test", data_dir=req.data_dir)
    samples = read_samples(req.samples)
    check_against(samples, real, f"samples file {req.samples}", pairs)
    return samples, real, {"name": req.real, "data_dir": req.data_dir}, None


def load_judges(req: EvalRequest, real: LabelledData, data: dict, device) -> list[Judge]:
    """The judges of an evaluation (module docstring); missing cached ones are refused with the
    commands that train them."""
    if req.judge_paths:
        if req.judges != 1:
            raise ConfigError("condgan eval: give either --judge FILE(s) or --judges N, not both")
        return [load_judge(p, device) for p in req.judge_paths]
    if isinstance(req.judges, bool) or req.judges < 1:
        raise ConfigError(f"--judges: expected a positive number of judges, found {req.judges}")
    shape = real.sample_shape
    paths = [default_judge_path(real.name, shape, seed) for seed in range(req.judges)]
    missing = [(seed, p) for seed, p in enumerate(paths) if not p.is_file()]
    if missing:
        extra = "".join(f" --{k.replace('_', '-')} {v}" for k, v in data.items() if v is not None and k != "channels")
        cmds = "; ".join(f"condgan classifier train --data {real.name}{extra} --seed {seed}" for seed, _ in missing)
        raise ConfigError(f"condgan eval --judges {req.judges}: no cached judge for seed(s) "
                          f"{', '.join(str(s) for s, _ in missing)} ({missing[0][1]}...); train them first with: {cmds}")
    return [load_judge(p, device) for p in paths]


def sample_grid(samples: Samples, loaded: LoadedRun | None, num_classes: int, seed: int, device) -> np.ndarray | None:
    """uint8 pixels of the report's sample grid, or None for 2D samples: a run's class grid (rows
    share z, columns are classes; `condgan.sampling.class_grid`), else each class's first samples."""
    if not samples.is_image:
        return None
    if loaded is not None:
        z = loaded.method.latent(GRID_ROWS, generator=torch.Generator().manual_seed(seed))
        cols = list(range(min(max(loaded.method.num_classes, 1), GRID_COLUMNS)))
        return class_grid(loaded.method, z, cols, device)
    return first_per_class_grid(samples.data, samples.labels if samples.label_kind == "class" else None, num_classes, GRID_ROWS, GRID_COLUMNS)


def run_eval(req: EvalRequest, options: EvalOptions = EvalOptions()) -> dict:
    """What `condgan eval` does (see the module docstring); returns the suite's result."""
    if (req.samples is None) == (req.run is None):
        raise ConfigError("condgan eval: expected exactly one of --samples FILE or --run RUN")
    if req.checkpoint is not None and req.run is None:
        raise ConfigError("condgan eval: --checkpoint picks a checkpoint of --run RUN; found --samples instead")
    if isinstance(options.pairs, bool) or options.pairs < 1:
        raise ConfigError(f"--pairs: expected a positive number of pairs per class, found {options.pairs}")
    if req.n < 1:
        raise ConfigError(f"--n: expected a positive number of samples, found {req.n}")
    wants_diversity = req.metrics is None or "diversity" in req.metrics
    samples, real, train, loaded = _load(req, options.pairs if wants_diversity else None, options.seed)
    device = resolve_device(req.device)
    name = train.pop("name")
    judges = load_judges(req, real, {"data_dir": train.get("data_dir"), "resolution": train.get("resolution")},
                         device)
    features = inception_extractor(req.inception_weights, device) if req.inception_weights else None
    metrics = req.metrics or default_metrics(samples.label_kind, with_run=loaded is not None)
    result = evaluate(samples.float_images(), samples.labels, real, label_kind=samples.label_kind, judge=judges[0],
                      extra_judges=judges[1:], features=features, metrics=metrics,
                      train_data=lambda: load_dataset(name, "train", **train), run=loaded,
                      options=replace(options, out_dir=req.out_dir))
    grid = sample_grid(samples, loaded, real.num_classes, options.seed, device)
    if grid is not None:
        req.out_dir.mkdir(parents=True, exist_ok=True)
        save_png(grid, req.out_dir / "samples.png")
        result["figures"] = {"samples": "samples.png", **result["figures"]}
    result["inputs"].update({"samples": str(req.samples) if req.samples else None,
                             "run": str(req.run) if req.run else None,
                             "run_step": loaded.step if loaded else None, "judge_test_accuracy": judges[0].test_accuracy,
                             "grid": None if grid is None else ("class_grid (rows: fixed z, columns: classes)"
                                                                if loaded is not None else
                                                                "first samples of each class (columns: classes)")})
    write_report(result, req.out_dir)
    return result
