"""One evaluation's inputs and the features already extracted from them (each computed once)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from condgan.data import LabelledData
from condgan.errors import ConfigError
from condgan.metrics.cas import CAS_EPOCHS
from condgan.metrics.features import Extractor, real_features
from condgan.metrics.stats import FeatureStats
from condgan.registry import Registry


@dataclass(frozen=True)
class EvalOptions:
    """How the suite runs (not what it evaluates).

    Attributes:
        pairs: MS-SSIM pairs per class (diversity).
        seed: seeds every random choice of the suite (pairs, subsets, queries).
        out_dir: where figure PNGs go; None writes none.
        progress: progress bars on stderr.
        cache_dir, use_cache: the real-feature cache (condgan.metrics.features).
        cas_epochs: passes over the samples when training the CAS classifier (condgan.metrics.cas).
    """

    pairs: int = 100
    seed: int = 0
    cas_epochs: int = CAS_EPOCHS
    out_dir: Path | None = None
    progress: bool = True
    cache_dir: Path | None = None
    use_cache: bool = True


@dataclass
class EvalContext:
    """Inputs of one evaluation and the features already extracted from them (computed once)."""

    gen_x: torch.Tensor
    gen_y: np.ndarray | None  # the labels the samples were conditioned on (None: unconditional)
    label_kind: str  # "class" | "cluster" | "none" (condgan.samples)
    real: LabelledData | None  # None: only statistics of the real set (`real_stats`) are given
    judge: Extractor | None
    features: Extractor | None
    train_data: Callable[[], LabelledData] | None = None
    run: object | None = None  # condgan.sampling.LoadedRun, for interpolation
    options: EvalOptions = EvalOptions()
    real_stats: FeatureStats | None = None  # fid / intra_fid use these instead of the real images' features
    cache_hits: dict[str, bool] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    registry: Registry | None = None  # the metric registry `result` computes from
    _memo: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return self.real.num_classes

    def memo(self, key: str, make: Callable[[], object]):
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def gen(self, ex: Extractor) -> tuple[np.ndarray, np.ndarray]:
        """(features, logits) of the generated set through `ex`."""
        return self.memo(f"gen:{ex.id}", lambda: ex.extract(self.gen_x, desc="samples", progress=self.options.progress))

    def cached_real(self, data: LabelledData, split: str, ex: Extractor) -> tuple[np.ndarray, np.ndarray]:
        """(features, logits) of a real set through `ex`, from the on-disk cache when present."""
        def make():
            feats, logits, hit = real_features(data, split, ex, cache_dir=self.options.cache_dir, use_cache=self.options.use_cache,
                                               progress=self.options.progress)
            self.cache_hits[f"{data.name}/{split}/{ex.id}"] = hit
            return feats, logits
        return self.memo(f"{split}:{ex.id}", make)

    def real_test(self, ex: Extractor) -> tuple[np.ndarray, np.ndarray]:
        return self.cached_real(self.real, "test", ex)

    def train(self) -> LabelledData:
        if self.train_data is None:
            raise ConfigError("metric memorization needs the real training set; none was given")
        return self.memo("train_data", self.train_data)

    def real_train(self, ex: Extractor) -> tuple[np.ndarray, np.ndarray]:
        return self.cached_real(self.train(), "train", ex)

    def result(self, name: str) -> dict[str, float]:
        """A metric's result, computed once (correlation reuses accuracy and diversity)."""
        assert self.registry is not None  # set by condgan.evaluation.suite.evaluate
        return self.memo(f"metric:{name}", lambda: self.registry.get(name).fn(self))

    def adopt_judge_free(self, other: "EvalContext", judge_metrics: list[str]) -> None:
        """Take over what `other` computed that does not depend on its judge (the training set,
        "pixel:" memos, results of metrics not in `judge_metrics`), so another judge's context
        recomputes only what that judge changes."""
        self._memo.update({k: v for k, v in other._memo.items()
                           if k == "train_data" or k.startswith("pixel:")
                           or (k.startswith("metric:") and k[len("metric:"):] not in judge_metrics)})

    def figure(self, name: str) -> Path | None:
        """Path for figure `name` (PNG) when figures are written, else None."""
        if self.options.out_dir is None:
            return None
        path = Path(self.options.out_dir) / f"{name}.png"
        self.figures[name] = path.name
        return path


