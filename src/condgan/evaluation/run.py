"""`condgan eval`: load samples (a samples file, or drawn from a run), the real test set and the
judge(s); run the suite; draw the sample grid; write `metrics.json` + `report.html` (+ figures)
into the report folder.

Judges: `judge_paths` (files, the first one is the judge whose numbers stay under the usual keys),
else `judges` N cached judges of the dataset trained with seeds 0..N-1
(`condgan.metrics.classifier.default_judge_path`). Missing cached judges are not trained here
(each costs minutes): the error names the `condgan classifier train --seed S` commands that make them.

Real statistics (`real_stats`, a `condgan stats` file or pytorch-fid's / clean-fid's, with
`real_stats_from` naming the convention of a foreign file): fid and intra_fid compare with them; the
file is refused unless it belongs to the extractor in use. Without `real` images only the metrics
that need none run (`EvalMetric.without_real`), and the judge, when the features are the judge's,
is the cached judge of the dataset the statistics name (or `judge_paths`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from condgan.data import LabelledData, load_dataset
from condgan.device import resolve_device
from condgan.errors import ConfigError, SamplesError, StatsError, one_line
from condgan.evaluation.suite import EvalOptions, default_metrics, evaluate
from condgan.metrics.classifier import Judge, default_judge_path, load_judge
from condgan.metrics.features import Extractor, inception_extractor, judge_extractor
from condgan.metrics.stats import FeatureStats, load_stats
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
    real_stats: Path | None = None
    real_stats_from: str | None = None  # for a foreign statistics file: condgan.metrics.stats.CONVENTIONS or an id


def _load(req: EvalRequest, pairs: int | None, seed: int) -> tuple[Samples, LabelledData | None, dict, LoadedRun | None]:
    """The samples, the real test set (None: only statistics given), how to load the real training
    set, and the run (if any)."""
    if req.run is not None:
        loaded = load_run(req.run, req.checkpoint, device=resolve_device(req.device))
        d = loaded.config.data
        if d.classes is not None:  # its labels index its own classes; the judges and test set know the dataset's
            raise ConfigError(f"condgan eval --run {req.run}: the run trains classes {one_line(list(d.classes), 80)} "
                              f"of {d.name} only (data.classes), labelled 0..{len(d.classes) - 1}; evaluate the "
                              "splits root it belongs to, which routes every class to its split")
        data = dict(data_dir=req.data_dir or d.data_dir, resolution=d.resolution, channels=d.channels)
        real = load_dataset(req.real or d.name, "test", **data)
        # Drawn in the samples-file layout (uint8), so the numbers equal those of `condgan sample`'s file.
        samples = draw_samples(loaded.method, req.n, seed=seed, device=resolve_device(req.device))
        check_against(samples, real, f"run {req.run} (--n {req.n})", pairs)
        return samples, real, {"name": req.real or d.name, **data}, loaded
    if req.real is None:
        if req.real_stats is None:
            raise ConfigError("condgan eval: --samples needs --real NAME (the dataset the samples imitate) "
                              "or --real-stats FILE (its statistics)")
        samples = read_samples(req.samples)
        if not samples.is_image:
            raise SamplesError(f"samples file {req.samples}: holds 2D points; the evaluation suite is for images")
        return samples, None, {"name": None}, None
    real = load_dataset(req.real, "test", data_dir=req.data_dir)
    samples = read_samples(req.samples)
    check_against(samples, real, f"samples file {req.samples}", pairs)
    return samples, real, {"name": req.real, "data_dir": req.data_dir}, None


def load_judges(req: EvalRequest, dataset: str, shape: tuple[int, int, int], data: dict, device) -> list[Judge]:
    """The judges of an evaluation of `dataset` samples of C×H×W `shape` (module docstring);
    missing cached ones are refused with the commands that train them."""
    if req.judge_paths:
        if req.judges != 1:
            raise ConfigError("condgan eval: give either --judge FILE(s) or --judges N, not both")
        return [load_judge(p, device) for p in req.judge_paths]
    if isinstance(req.judges, bool) or req.judges < 1:
        raise ConfigError(f"--judges: expected a positive number of judges, found {req.judges}")
    paths = [default_judge_path(dataset, shape, seed) for seed in range(req.judges)]
    missing = [(seed, p) for seed, p in enumerate(paths) if not p.is_file()]
    if missing:
        extra = "".join(f" --{k.replace('_', '-')} {v}" for k, v in data.items() if v is not None and k != "channels")
        cmds = "; ".join(f"condgan classifier train --data {dataset}{extra} --seed {seed}" for seed, _ in missing)
        raise ConfigError(f"condgan eval --judges {req.judges}: no cached judge for seed(s) "
                          f"{', '.join(str(s) for s, _ in missing)} ({missing[0][1]}...); train them first with: {cmds}")
    return [load_judge(p, device) for p in paths]


def _check_stats(stats: FeatureStats, path: Path, extractor: Extractor, samples: Samples) -> None:
    """Refuse, naming the file, statistics of another extractor or feature size (before the suite runs)."""
    stats.check_extractor(extractor.id, str(path))
    probe = torch.from_numpy(samples.data[:2]).permute(0, 3, 1, 2).float() / 127.5 - 1
    dim = extractor.extract(probe, progress=False)[0].shape[1]
    if dim != stats.feature_dim:
        raise StatsError(f"--real-stats {path}: statistics of {stats.feature_dim}-d features, the extractor "
                         f"{extractor.id} gives {dim}-d")


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
    stats = load_stats(req.real_stats, foreign=req.real_stats_from) if req.real_stats is not None else None
    samples, real, train, loaded = _load(req, options.pairs if wants_diversity else None, options.seed)
    device = resolve_device(req.device)
    name = train.pop("name")
    features = inception_extractor(req.inception_weights, device) if req.inception_weights else None
    h, w, c = samples.data.shape[1:]
    if real is None and features is None and not req.judge_paths and not stats.dataset:
        raise ConfigError(f"--real-stats {req.real_stats}: the statistics name no dataset, so no cached judge "
                          "can be chosen; pass --judge FILE or --inception-weights FILE (or --real NAME)")
    judges = [] if real is None and features is not None and not req.judge_paths else load_judges(
        req, real.name if real is not None else stats.dataset, (c, h, w),
        {"data_dir": train.get("data_dir"), "resolution": train.get("resolution")}, device)
    if stats is not None:
        _check_stats(stats, req.real_stats, features or judge_extractor(judges[0], device), samples)
    metrics = req.metrics or default_metrics(
        samples.label_kind, with_run=loaded is not None and loaded.method.takes_class_vectors,
        real_images=real is not None)  # interpolation blends class vectors, which class splits cannot route
    result = evaluate(samples.float_images(), samples.labels, real, label_kind=samples.label_kind,
                      judge=judges[0] if judges else None, extra_judges=judges[1:], features=features,
                      metrics=metrics, train_data=(lambda: load_dataset(name, "train", **train)) if real else None,
                      run=loaded, options=replace(options, out_dir=req.out_dir), real_stats=stats)
    num_classes = (real.num_classes if real is not None else
                   int(samples.labels.max()) + 1 if samples.labels is not None and len(samples.labels) else 1)
    grid = sample_grid(samples, loaded, num_classes, options.seed, device)
    if grid is not None:
        req.out_dir.mkdir(parents=True, exist_ok=True)
        save_png(grid, req.out_dir / "samples.png")
        result["figures"] = {"samples": "samples.png", **result["figures"]}
    result["inputs"].update({"samples": str(req.samples) if req.samples else None,
                             "run": str(req.run) if req.run else None,
                             "run_step": loaded.step if loaded else None,
                             # which generator drew them: "G-EMA (...)" or "live G" (condgan.sampling.load_run)
                             "generator_weights": loaded.weights if loaded else None,
                             "judge_test_accuracy": judges[0].test_accuracy if judges else None,
                             "real_stats_file": str(req.real_stats) if req.real_stats else None,
                             "grid": None if grid is None else ("class_grid (rows: fixed z, columns: classes)"
                                                                if loaded is not None else
                                                                "first samples of each class (columns: classes)")})
    write_report(result, req.out_dir)
    return result
