"""The AC-GAN paper's evaluation suite as one function, shared by `condgan eval`, training's
collapse monitor and the benchmarks (STYLE #4).

`evaluate(gen_x, gen_y, real, judge=..., metrics=[...])` runs the named metrics of
`condgan.evaluation.metrics.EVAL_METRICS` over one set of samples and returns

    {"metrics": {flat stable key: float}, "extractors": {metric name: extractor id},
     "keys": {metric name: its keys}, "skipped": {metric name: reason}, "figures": {name: file},
     "inputs": {...}, "seconds": {metric name: s}, "cache_hits": {...},
     "judges": [{"id", "test_accuracy", "seed", "metrics"?}, ...]}

Features are extracted once per input set and shared by every metric that needs them (STYLE #3):
the generated set passes once through the judge (and once through Inception when
`features=inception_extractor(...)` is given); the real test (and, for memorisation, training)
features come from the on-disk cache of `condgan.metrics.features`. Metrics that do not apply to
the samples' labels (`label_kind`, condgan.samples) are skipped with the reason.

Several judges (`extra_judges`, e.g. the same recipe trained with other seeds): the numbers of the
first judge stay under their usual keys; every metric whose numbers come from the judge
(`EvalMetric.uses_judge`: accuracy, the sweep, correlation, memorisation's judge part, and
is/fid/kid/prdc/intra_fid when they run in judge features) is computed again with each further
judge, and its keys gain `{key}_judges_{mean,std,min,max}` over all judges (a per-class key
`name/class_k` becomes `name_judges_mean/class_k`, ...; std with ddof 1). `judges[i]["metrics"]`
holds judge i's own values of those keys. Pixel-only metrics and CAS are computed once, and keys
of a judge-based metric that do not depend on the judge (`EvalMetric.judge_free`: memorisation's
pixel part) get no spread.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from condgan.data import LabelledData
from condgan.errors import ConfigError
from condgan.evaluation.context import EvalContext, EvalOptions
from condgan.evaluation.metrics import EVAL_METRICS
from condgan.metrics.features import Extractor, judge_extractor
from condgan.metrics.stats import FeatureStats

DEFAULT_METRICS = ("is", "fid", "kid", "prdc", "intra_fid", "accuracy", "cas", "resolution_sweep", "diversity",
                   "correlation", "memorization")


def default_metrics(label_kind: str, with_run: bool = False, real_images: bool = True) -> list[str]:
    """The suite's default metrics for samples labelled `label_kind`: `DEFAULT_METRICS`, plus
    interpolation when a run is evaluated and cluster_agreement for cluster-labelled samples.
    Without real images (only their statistics, `real_images=False`): those that run without them."""
    names = (list(DEFAULT_METRICS) + (["interpolation"] if with_run else [])
             + (["cluster_agreement"] if label_kind == "cluster" else []))
    return names if real_images else [n for n in names if EVAL_METRICS.get(n).without_real]


def evaluate(
    gen_x: torch.Tensor,
    gen_y: np.ndarray | None,
    real: LabelledData | None,
    *,
    label_kind: str = "class",
    judge=None,
    extra_judges: Sequence = (),
    features: Extractor | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    train_data: Callable[[], LabelledData] | None = None,
    run: object | None = None,
    options: EvalOptions = EvalOptions(),
    real_stats: FeatureStats | None = None,
) -> dict:
    """Run `metrics` (names of `EVAL_METRICS`) on samples against a real (test) set.

    Args:
        gen_x: (N, C, H, W) samples in [-1, 1]; gen_y: (N,) the labels they were conditioned on
            (None for unconditional samples).
        real: the real reference set (the test split), same image shape and classes; None when
            only `real_stats` are given (then only metrics with `EvalMetric.without_real` run).
        label_kind: what `gen_y` holds: "class" (dataset classes), "cluster" (cluster ids), "none".
        judge: the domain judge (`condgan.metrics.classifier.Judge`); None is allowed when only
            metrics that need no network are asked for (diversity, interpolation).
        extra_judges: further judges (independently trained); the judge-based metrics are
            computed with each and their spread reported (module docstring).
        features: extractor for is/fid/kid/prdc/intra_fid; None uses the judge.
        train_data: loads the real training set (memorisation only).
        run: a `condgan.sampling.LoadedRun` (interpolation only).
        real_stats: statistics of the real set in the features' extractor (`condgan stats`,
            pytorch-fid, clean-fid); fid and intra_fid compare with them instead of the real
            images' features (intra_fid is skipped when they hold no per-class statistics).

    Returns:
        the dict described in the module docstring.
    """
    if (gen_y is None) != (label_kind == "none"):
        raise ConfigError(f"evaluate: label_kind {label_kind!r} with {'no' if gen_y is None else ''} labels")
    names = list(dict.fromkeys(metrics))
    entries = {name: EVAL_METRICS.get(name) for name in names}  # unknown names fail before any work
    skipped = {name: why for name, m in entries.items() if (why := m.skip_reason(label_kind)) is not None}
    if real_stats is not None and not real_stats.has_classes and "intra_fid" in entries:
        skipped.setdefault("intra_fid", "the real statistics hold no per-class statistics (written with "
                                        "--no-class-stats, or a foreign file)")
    names = [name for name in names if name not in skipped]
    if real is None:
        if real_stats is None:
            raise ConfigError("evaluate: expected real images (real=...) or their statistics (real_stats=...), "
                              "found neither")
        need_images = [name for name in names if not entries[name].without_real]
        if need_images:
            raise ConfigError(f"metric(s) {', '.join(need_images)}: need the real images (--real NAME); with "
                              f"only --real-stats: {', '.join(n for n in EVAL_METRICS if EVAL_METRICS.get(n).without_real)}")
    if extra_judges and judge is None:
        raise ConfigError("evaluate: extra_judges given without a first judge (judge=...)")
    device = next(judge.model.parameters()).device if judge is not None else None
    judge_ex = judge_extractor(judge, device) if judge is not None else None
    available = {"judge": judge_ex, "features": features or judge_ex}
    for name in names:
        for need in entries[name].needs:
            if available[need] is None:
                raise ConfigError(f"metric {name}: expected a judge (judge=...), found none")
    for j in ([judge] if judge is not None else []) + list(extra_judges):
        if real is None:
            if tuple(j.sample_shape) != tuple(gen_x.shape[1:]):
                raise ConfigError(f"judge {j.id}: expected samples of shape {tuple(j.sample_shape)}, "
                                  f"found {tuple(gen_x.shape[1:])}")
        elif tuple(j.sample_shape) != real.sample_shape or len(j.class_names) != real.num_classes:
            raise ConfigError(f"judge {j.id}: expected {real.num_classes} classes of shape "
                              f"{real.sample_shape} like {real.name}, found {len(j.class_names)} classes "
                              f"of shape {tuple(j.sample_shape)}")
    if real_stats is not None and available["features"] is not None:
        real_stats.check_extractor(available["features"].id, "real statistics")
    if isinstance(options.cas_epochs, bool) or not isinstance(options.cas_epochs, int) or options.cas_epochs < 1:
        raise ConfigError(f"--cas-epochs: expected a positive number of epochs, found {options.cas_epochs!r}")
    labels = None if gen_y is None else np.asarray(gen_y, dtype=np.int64)

    def context(ex: Extractor | None, opts: EvalOptions) -> EvalContext:
        return EvalContext(gen_x, labels, label_kind, real, ex, features or ex, train_data, run, opts,
                           real_stats=real_stats, registry=EVAL_METRICS)

    ctx = context(judge_ex, options)
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
    judges = [] if judge is None else [_judge_entry(judge)]
    if extra_judges:
        judged = [name for name in names if entries[name].uses_judge(features is None)]
        spread_keys = {name: [k for k in keys[name] if not entries[name].judge_free(k)] for name in judged}
        judges[0]["metrics"] = {k: values[k] for name in judged for k in spread_keys[name]}
        for j in extra_judges:
            jctx = context(judge_extractor(j, next(j.model.parameters()).device), replace(options, out_dir=None))
            jctx.adopt_judge_free(ctx, judged)
            entry = _judge_entry(j)
            entry["metrics"] = {}
            for name in judged:
                t0 = time.perf_counter()
                part = jctx.result(name)
                entry["metrics"].update({k: part[k] for k in spread_keys[name]})
                seconds[name] += time.perf_counter() - t0
            ctx.cache_hits.update(jctx.cache_hits)
            judges.append(entry)
        for name in judged:
            spread = judge_spread([j["metrics"] for j in judges], spread_keys[name])
            values.update(spread)
            keys[name] += list(spread)
    inputs = {"num_samples": int(len(gen_x)), "sample_shape": list(gen_x.shape[1:]), "label_kind": label_kind,
              "pairs": options.pairs, "seed": options.seed}
    if real is not None:
        inputs.update({"real": real.name, "real_split": "test", "num_real": len(real),
                       "num_classes": real.num_classes, "class_names": list(real.class_names)})
    if real_stats is not None:
        inputs["real_stats"] = {"extractor_id": real_stats.extractor_id, "source": real_stats.source,
                                "num_samples": real_stats.num_samples, "dataset": real_stats.dataset,
                                "split": real_stats.split, "per_class": real_stats.has_classes}
        if real is None:
            inputs.update({"real": real_stats.dataset or f"statistics ({real_stats.source})",
                           "real_split": real_stats.split or None, "num_real": real_stats.num_samples})
    return {"metrics": values, "extractors": extractors, "keys": keys, "skipped": skipped,
            "figures": dict(ctx.figures), "inputs": inputs, "seconds": seconds, "cache_hits": dict(ctx.cache_hits),
            "judges": judges}


def _judge_entry(judge) -> dict:
    return {"id": judge.id, "test_accuracy": judge.test_accuracy, "seed": getattr(judge, "seed", None)}


def spread_key(key: str, stat: str) -> str:
    """`accuracy` → `accuracy_judges_{stat}`; `accuracy/class_3` → `accuracy_judges_{stat}/class_3`."""
    head, sep, tail = key.partition("/")
    return f"{head}_judges_{stat}{sep}{tail}"


def judge_spread(per_judge: Sequence[dict[str, float]], keys: Sequence[str]) -> dict[str, float]:
    """Mean, sample std (ddof 1), min and max of each key over judges (at least two)."""
    out: dict[str, float] = {}
    for key in keys:
        v = np.array([m[key] for m in per_judge], dtype=np.float64)
        out.update({spread_key(key, "mean"): float(v.mean()), spread_key(key, "std"): float(v.std(ddof=1)),
                    spread_key(key, "min"): float(v.min()), spread_key(key, "max"): float(v.max())})
    return out


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
