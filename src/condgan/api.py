"""The Python API that the `condgan` verbs wrap: train, sample, evaluate, stats.

    import condgan
    run = condgan.train("acgan-fashion-mnist", "runs/fm", overrides=["train.steps=2000"])
    samples = condgan.sample("runs/fm", 10_000)                   # a condgan.samples.Samples
    result = condgan.evaluate(samples, "fashion-mnist")           # {"metrics": {...}, ...}
    result = condgan.evaluate(images_uint8_nhwc, "fashion-mnist", labels=labels)   # in-memory arrays
    condgan.stats("fashion-mnist", "fm-test.npz")                 # reference statistics (condgan stats)

Each function takes paths or in-memory objects, as torch-fidelity's `calculate_metrics` does, and
raises the package's own errors (condgan.errors) on bad input. The heavy stages are imported when a
function is called, so `import condgan` stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from condgan.config import Config, preset_or_path, resolve_config
from condgan.data import LabelledData, load_dataset
from condgan.data.base import to_uint8_nhwc
from condgan.device import resolve_device
from condgan.errors import ConfigError, SamplesError
from condgan.samples import Samples, make_samples, read_samples

if TYPE_CHECKING:
    from condgan.metrics.stats import FeatureStats
    from condgan.training.loop import RunResult


def train_config(config: Config | str | Path | Sequence[str | Path] | None, out: str | Path,
                 overrides: Sequence[str] = (), resume: bool = False) -> Config | None:
    """The config a `train` call trains with (None: resume with the run's saved config unchanged).

    `config` is a `Config`, or preset names / YAML files applied in order; `overrides` are
    `section.key=value` strings on top. Resuming takes the run's saved config; overrides may then
    change only the resumable fields (more steps, another device, ...), which `train` checks.
    """
    from condgan.config import read_yaml
    from condgan.errors import ConfigError
    from condgan.run.directory import CONFIG_FILE

    if resume:
        if config is not None:
            raise ConfigError("--resume continues a run with its saved config; drop --config")
        saved = Path(out) / CONFIG_FILE
        return resolve_config(base=read_yaml(saved), overrides=list(overrides)) if overrides and saved.exists() else None
    if isinstance(config, Config):
        return resolve_config(base=config.to_dict(), overrides=list(overrides)) if overrides else config
    files = [config] if isinstance(config, (str, Path)) else list(config or [])
    return resolve_config([preset_or_path(str(f)) for f in files], list(overrides))


def train(config: Config | str | Path | Sequence[str | Path] | None, out: str | Path, *,
          overrides: Sequence[str] = (), resume: bool = False, force: bool = False,
          progress: bool = True) -> RunResult:
    """Train into the run directory `out` (what `condgan train` does); see `train_config` for
    `config` and `overrides`. An existing run is refused unless `resume` (continue it from its
    newest checkpoint) or `force` (replace it)."""
    from condgan.training.loop import train as train_loop

    return train_loop(train_config(config, out, overrides, resume), out, resume=resume, force=force,
                      progress=progress)


def sample(run: str | Path, n: int, classes: Sequence[int] | None = None, *, seed: int = 0,
           device: str = "cpu", out: str | Path | None = None) -> Samples:
    """n samples of a trained run, balanced over `classes` (default: all); written to `out` if given."""
    from condgan.samples import write_samples
    from condgan.sampling import Classes, draw_samples, load_run

    loaded = load_run(run, device=resolve_device(device))
    samples = draw_samples(loaded.method, n, Classes.balanced(list(classes or [])), seed=seed,
                           device=resolve_device(device))
    if out is not None:
        write_samples(out, samples)
    return samples


def _as_samples(samples: Samples | str | Path | np.ndarray | torch.Tensor, labels, label_kind: str | None) -> Samples:
    """A `Samples` from a file, a `Samples`, uint8 N×H×W×C images or float N×C×H×W images in [-1, 1]."""
    if isinstance(samples, Samples):
        return samples
    if isinstance(samples, (str, Path)):
        return read_samples(samples)
    if isinstance(samples, torch.Tensor):
        if samples.dim() != 4 or not samples.is_floating_point():
            raise SamplesError(f"samples: expected float N×C×H×W images in [-1, 1], found {samples.dtype} "
                               f"of shape {tuple(samples.shape)}")
        samples = to_uint8_nhwc(samples.detach().cpu())
    kind = label_kind or ("class" if labels is not None else "none")
    return make_samples(np.asarray(samples), labels, kind, source="samples")


def evaluate(
    samples: Samples | str | Path | np.ndarray | torch.Tensor,
    real: str | LabelledData | None,
    metrics: Sequence[str] | None = None,
    *,
    labels: np.ndarray | torch.Tensor | None = None,
    label_kind: str | None = None,
    judge: str | Path | None = None,
    inception_weights: str | Path | None = None,
    data_dir: str | None = None,
    out: str | Path | None = None,
    pairs: int = 100,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
    real_stats: str | Path | None = None,
    real_stats_from: str | None = None,
) -> dict:
    """The evaluation suite on samples against a real dataset's test split (what `condgan eval` runs).

    Args:
        samples: a samples file, a `condgan.samples.Samples`, or in-memory images: uint8
            N×H×W×C (numpy) or float N×C×H×W in [-1, 1] (torch), with `labels` when conditional.
        real: a dataset name (its test split is the reference) or a `LabelledData` (the test set);
            None with `real_stats` (then only is, fid and intra_fid run).
        metrics: names from `condgan.evaluation.metrics.EVAL_METRICS`; None: the defaults for
            the samples' labels.
        label_kind: what `labels` are, "class" (default when labels are given) or "cluster".
        judge: the judge's safetensors file; None: the cached judge of the dataset.
        inception_weights: FID Inception weights for is/fid/kid/prdc/intra_fid; None: the judge.
        out: folder for metrics.json, report.html and figures; None writes nothing.
        real_stats: a statistics .npz (`condgan stats`, pytorch-fid, clean-fid) that fid and
            intra_fid use instead of the real images; `real_stats_from` says who wrote a foreign
            file (`condgan.metrics.stats.CONVENTIONS` or an extractor id).

    Returns:
        the suite's result (`condgan.evaluation.suite.evaluate`).
    """
    from condgan.evaluation.suite import EvalOptions, default_metrics
    from condgan.evaluation.suite import evaluate as run_suite
    from condgan.metrics.classifier import default_judge_path, load_judge
    from condgan.metrics.features import inception_extractor
    from condgan.metrics.stats import load_stats
    from condgan.report.html import write_report
    from condgan.samples import check_against

    s = _as_samples(samples, labels, label_kind)
    stats = load_stats(real_stats, foreign=real_stats_from) if real_stats is not None else None
    if real is None and stats is None:
        raise ConfigError("evaluate: expected real (a dataset name or LabelledData) or real_stats, found neither")
    real_name = real if isinstance(real, str) else None
    real_set = load_dataset(real, "test", data_dir=data_dir) if isinstance(real, str) else real
    names = list(metrics) if metrics else default_metrics(s.label_kind, real_images=real_set is not None)
    if real_set is not None:
        check_against(s, real_set, "samples", pairs if "diversity" in names else None)
    dev = resolve_device(device)
    features = inception_extractor(inception_weights, dev) if inception_weights else None
    h, w, c = s.data.shape[1:]
    dataset = real_set.name if real_set is not None else stats.dataset
    judge_model = (None if judge is None and (features is not None and real_set is None) else
                   load_judge(judge or default_judge_path(dataset, (c, h, w)), dev))
    train_data = (lambda: load_dataset(real_name, "train", data_dir=data_dir)) if real_name else None
    result = run_suite(s.float_images(), s.labels, real_set, label_kind=s.label_kind, judge=judge_model,
                       features=features, metrics=names, train_data=train_data, real_stats=stats,
                       options=EvalOptions(pairs=pairs, seed=seed, out_dir=Path(out) if out else None,
                                           progress=progress))
    if out is not None:
        write_report(result, out)
    return result


def stats(data: str, out: str | Path, *, split: str = "test", data_dir: str | None = None,
          judge: str | Path | None = None, inception_weights: str | Path | None = None,
          per_class: bool = True, device: str = "cpu", progress: bool = False) -> "FeatureStats":
    """Feature statistics (mean, covariance, per class) of a real split, written to `out` (.npz that
    pytorch-fid and clean-fid read; what `condgan stats` writes, docs/evaluation.md).

    The features are the judge's (`judge`, default: the dataset's cached judge), or the FID
    Inception's with `inception_weights`; `condgan.evaluate(..., real_stats=out)` compares with them.
    """
    from condgan.metrics.classifier import default_judge_path, load_judge
    from condgan.metrics.features import inception_extractor, judge_extractor
    from condgan.metrics.stats import dataset_stats, save_stats

    out = Path(out)
    if out.suffix != ".npz":
        raise ConfigError(f"--out {out}: expected a file name ending in .npz")
    if judge is not None and inception_weights is not None:
        raise ConfigError("stats: give a judge or Inception weights, not both")
    real = load_dataset(data, split, data_dir=data_dir)
    if not real.is_image:
        raise ConfigError(f"--data {data}: holds 2D points; statistics are of image features")
    dev = resolve_device(device)
    if inception_weights is not None:
        extractor = inception_extractor(inception_weights, device=dev)
    else:
        model = load_judge(judge or default_judge_path(real.name, real.sample_shape), device=dev)
        extractor = judge_extractor(model, device=dev)
    result = dataset_stats(real, split, extractor, progress=progress, per_class=per_class)
    save_stats(result, out)
    return result
