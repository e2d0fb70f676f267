"""`condgan eval`: load samples (a samples file, or drawn from a run), the real test set and the
judge; run the suite; write `metrics.json` + `report.html` (+ figures) into the report folder."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from condgan.data import LabelledData, load_dataset
from condgan.device import resolve_device
from condgan.errors import ConfigError
from condgan.evaluation.suite import EvalOptions, default_metrics, evaluate
from condgan.metrics.classifier import default_judge_path, load_judge
from condgan.metrics.features import inception_extractor
from condgan.report.html import write_report
from condgan.samples import Samples, check_against, read_samples
from condgan.sampling import LoadedRun, draw_samples, load_run


@dataclass(frozen=True)
class EvalRequest:
    """What to evaluate: exactly one of `samples` (a file) and `run` (a run directory, `n` samples).

    `real` names the dataset (default for a run: its training dataset); `metrics` None means the
    defaults for the samples' labels; `judge_path` None the cached judge of the dataset.
    """

    out_dir: Path
    samples: Path | None = None
    run: Path | None = None
    n: int = 10_000
    real: str | None = None
    data_dir: str | None = None
    metrics: tuple[str, ...] | None = None
    judge_path: Path | None = None
    inception_weights: Path | None = None
    device: str = "cpu"


def _load(req: EvalRequest, pairs: int | None, seed: int) -> tuple[Samples, LabelledData, dict, LoadedRun | None]:
    """The samples, the real test set, how to load the real training set, and the run (if any)."""
    if req.run is not None:
        loaded = load_run(req.run, device=resolve_device(req.device))
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


def run_eval(req: EvalRequest, options: EvalOptions = EvalOptions()) -> dict:
    """What `condgan eval` does (see the module docstring); returns the suite's result."""
    if (req.samples is None) == (req.run is None):
        raise ConfigError("condgan eval: expected exactly one of --samples FILE or --run RUN")
    if isinstance(options.pairs, bool) or options.pairs < 1:
        raise ConfigError(f"--pairs: expected a positive number of pairs per class, found {options.pairs}")
    if req.n < 1:
        raise ConfigError(f"--n: expected a positive number of samples, found {req.n}")
    wants_diversity = req.metrics is None or "diversity" in req.metrics
    samples, real, train, loaded = _load(req, options.pairs if wants_diversity else None, options.seed)
    device = resolve_device(req.device)
    judge = load_judge(req.judge_path or default_judge_path(real.name, tuple(real.x.shape[1:])), device)
    features = inception_extractor(req.inception_weights, device) if req.inception_weights else None
    metrics = req.metrics or default_metrics(samples.label_kind, with_run=loaded is not None)
    name = train.pop("name")
    result = evaluate(samples.float_images(), samples.labels, real, label_kind=samples.label_kind, judge=judge,
                      features=features, metrics=metrics, train_data=lambda: load_dataset(name, "train", **train),
                      run=loaded, options=replace(options, out_dir=req.out_dir))
    result["inputs"].update({"samples": str(req.samples) if req.samples else None,
                             "run": str(req.run) if req.run else None,
                             "run_step": loaded.step if loaded else None, "judge_test_accuracy": judge.test_accuracy})
    write_report(result, req.out_dir)
    return result
