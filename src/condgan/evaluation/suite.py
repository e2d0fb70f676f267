"""The AC-GAN paper's evaluation suite as one function, shared by `condgan eval`, training's
collapse monitor and the benchmarks (STYLE #4).

`evaluate(gen_x, gen_y, real, judge=..., metrics=[...])` runs the named metrics of
`condgan.evaluation.metrics.EVAL_METRICS` over one set of samples and returns

    {"metrics": {flat stable key: float}, "extractors": {metric name: extractor id},
     "keys": {metric name: its keys}, "skipped": {metric name: reason}, "figures": {name: file},
     "inputs": {...}, "seconds": {metric name: s}, "cache_hits": {...}}

Features are extracted once per input set and shared by every metric that needs them (STYLE #3):
the generated set passes once through the judge (and once through Inception when
`features=inception_extractor(...)` is given); the real test (and, for memorisation, training)
features come from the on-disk cache of `condgan.metrics.features`. Metrics that do not apply to
the samples' labels (`label_kind`, condgan.samples) are skipped with the reason.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from condgan.data import LabelledData
from condgan.errors import ConfigError
from condgan.evaluation.context import EvalContext, EvalOptions
from condgan.evaluation.metrics import EVAL_METRICS
from condgan.metrics.features import Extractor, judge_extractor

DEFAULT_METRICS = ("is", "fid", "kid", "prdc", "intra_fid", "accuracy", "resolution_sweep", "diversity",
                   "correlation", "memorization")


def default_metrics(label_kind: str, with_run: bool = False) -> list[str]:
    """The suite's default metrics for samples labelled `label_kind`: `DEFAULT_METRICS`, plus
    interpolation when a run is evaluated and cluster_agreement for cluster-labelled samples."""
    return (list(DEFAULT_METRICS) + (["interpolation"] if with_run else [])
            + (["cluster_agreement"] if label_kind == "cluster" else []))


def evaluate(
    gen_x: torch.Tensor,
    gen_y: np.ndarray | None,
    real: LabelledData,
    *,
    label_kind: str = "class",
    judge=None,
    features: Extractor | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    train_data: Callable[[], LabelledData] | None = None,
    run: object | None = None,
    options: EvalOptions = EvalOptions(),
) -> dict:
    """Run `metrics` (names of `EVAL_METRICS`) on samples against a real (test) set.

    Args:
        gen_x: (N, C, H, W) samples in [-1, 1]; gen_y: (N,) the labels they were conditioned on
            (None for unconditional samples).
        real: the real reference set (the test split), same image shape and classes.
        label_kind: what `gen_y` holds: "class" (dataset classes), "cluster" (cluster ids), "none".
        judge: the domain judge (`condgan.metrics.classifier.Judge`); None is allowed when only
            metrics that need no network are asked for (diversity, interpolation).
        features: extractor for is/fid/kid/prdc/intra_fid; None uses the judge.
        train_data: loads the real training set (memorisation only).
        run: a `condgan.sampling.LoadedRun` (interpolation only).

    Returns:
        the dict described in the module docstring.
    """
    if (gen_y is None) != (label_kind == "none"):
        raise ConfigError(f"evaluate: label_kind {label_kind!r} with {'no' if gen_y is None else ''} labels")
    names = list(dict.fromkeys(metrics))
    entries = {name: EVAL_METRICS.get(name) for name in names}  # unknown names fail before any work
    skipped = {name: why for name, m in entries.items() if (why := m.skip_reason(label_kind)) is not None}
    names = [name for name in names if name not in skipped]
    judge_ex = judge_extractor(judge, next(judge.model.parameters()).device) if judge is not None else None
    available = {"judge": judge_ex, "features": features or judge_ex}
    for name in names:
        for need in entries[name].needs:
            if available[need] is None:
                raise ConfigError(f"metric {name}: expected a judge (judge=...), found none")
    if judge is not None and (tuple(judge.sample_shape) != tuple(real.x.shape[1:])
                              or len(judge.class_names) != real.num_classes):
        raise ConfigError(f"judge {judge.id}: expected {real.num_classes} classes of shape "
                          f"{tuple(real.x.shape[1:])} like {real.name}, found {len(judge.class_names)} classes "
                          f"of shape {tuple(judge.sample_shape)}")
    ctx = EvalContext(gen_x, None if gen_y is None else np.asarray(gen_y, dtype=np.int64), label_kind, real,
                      judge_ex, features or judge_ex, train_data, run, options, registry=EVAL_METRICS)
    if options.out_dir is not None:
        Path(options.out_dir).mkdir(parents=True, exist_ok=True)
    values: dict[str, float] = {}
    extractors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    keys: dict[str, list[str]] = {}
    for name in names:
        t0 = time.perf_counter()
        part = ctx.result(name)
        values.update(part)
        keys[name] = list(part)
        seconds[name] = time.perf_counter() - t0
        extractors[name] = entries[name].extractor(ctx)
    inputs = {"num_samples": int(len(gen_x)), "sample_shape": list(gen_x.shape[1:]), "label_kind": label_kind,
              "real": real.name, "real_split": "test", "num_real": int(len(real.x)), "num_classes": real.num_classes,
              "pairs": options.pairs, "seed": options.seed}
    return {"metrics": values, "extractors": extractors, "keys": keys, "skipped": skipped,
            "figures": dict(ctx.figures), "inputs": inputs, "seconds": seconds, "cache_hits": dict(ctx.cache_hits)}


def parse_metrics(text: str | None) -> list[str] | None:
    """`--metrics a,b,c` → names checked against `EVAL_METRICS`; None/empty → None (the defaults)."""
    if not text:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        if name not in EVAL_METRICS:
            raise ConfigError(f"--metrics: unknown metric {name!r}; expected some of: "
                              f"{', '.join(EVAL_METRICS.names())}")
    return names
