"""Feature extraction, run once per input set, and an on-disk cache for the real data's features.

An `Extractor` maps [-1, 1] NCHW images to (features N×D, logits N×K) in one batched pass. Two
kinds exist: the domain judge (`condgan.metrics.classifier`, 256-d penultimate layer and its class
logits) and the FID Inception-v3 (2048-d pool features and the 1008 logits of the TF graph without
the fc bias, which the Inception Score is defined on). Every metric computed from them is tagged
with `Extractor.id` (STYLE #3, DESIGN "every metric states the feature extractor it used").

Cache: the real data's features and logits are stored as `.npz` (plain arrays, loaded with
`allow_pickle=False`) under `<user cache>/condgan/features/`, named by dataset, split,
resolution, channels and the extractor id (which holds the weights' sha256), so another
extractor or another data size never hits a stale entry. Writes are atomic (temp + rename).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from condgan.data import LabelledData
from condgan.data.paths import user_cache_dir
from condgan.train.checkpoint import atomic_write

ENV_INCEPTION = "CONDGAN_INCEPTION_WEIGHTS"
INCEPTION_LOGITS = "unbiased-logits"  # suffix of the Inception extractor's id: which logits it returns


@dataclass
class Extractor:
    """A feature network: `forward(batch) -> (features, logits)` and its id.

    Attributes:
        id: printed next to every number computed with it, e.g. "judge-cnn:fashion-mnist:ab12cd34ef56".
        forward: maps a (B, C, H, W) batch in [-1, 1] on `device` to ((B, D), (B, K)) tensors.
        device: where batches are sent.
    """

    id: str
    forward: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    device: torch.device

    @torch.no_grad()
    def extract(self, x: torch.Tensor, batch_size: int = 500, desc: str = "features",
                progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(features float32 N×D, logits float32 N×K) of images x, `batch_size` at a time."""
        feats, logits = [], []
        for start in tqdm(range(0, len(x), batch_size), desc=desc, unit="batch", disable=not progress,
                          leave=False):
            f, lg = self.forward(x[start:start + batch_size].to(self.device).float())
            feats.append(f.float().cpu())
            logits.append(lg.float().cpu())
        return torch.cat(feats).numpy(), torch.cat(logits).numpy()


def judge_extractor(judge, device: str | torch.device = "cpu") -> Extractor:
    """The domain judge (`condgan.metrics.classifier.Judge`) as an extractor."""
    model = judge.model.to(device).eval()

    def forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = model.features(x)
        return f, model.head(f)

    return Extractor(judge.id, forward, torch.device(device))


def inception_extractor(weights: str | Path | None, device: str | torch.device = "cpu") -> Extractor:
    """The FID Inception-v3 (`condgan.metrics.inception`): 2048-d pool3 features, 1008 unbiased logits.

    The logits are ``pool3 @ fc.weight.T`` without the fc bias: the Inception Score, the only
    metric that reads this extractor's logits, is defined on those (the original IS code and
    torch-fidelity's "logits_unbiased"; see `condgan.metrics.inception_score`). The id says so:
    ``inception-v3-fid:<12 hex of the weights' sha256>/unbiased-logits``; cached logits of the
    former biased extractor (id without the suffix) are therefore never reused. Gray images are
    repeated to 3 channels inside the network's input transform.
    """
    from condgan.metrics.inception import load_fid_inception

    net = load_fid_inception(weights, device=device).eval()

    def forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = net(x)
        return out["pool"], out["logits_unbiased"]

    return Extractor(f"{net.extractor_id}/{INCEPTION_LOGITS}", forward, torch.device(device))


def inception_weights_from_env(flag: str | None) -> str | None:
    """`--inception-weights` if given, else $CONDGAN_INCEPTION_WEIGHTS, else None (use the judge)."""
    return flag or os.environ.get(ENV_INCEPTION) or None


def features_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/condgan/features` (default ~/.cache/condgan/features)."""
    return user_cache_dir() / "features"


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def cache_path(dataset: str, split: str, sample_shape: tuple[int, ...], extractor_id: str,
               cache_dir: Path | None = None) -> Path:
    """Cache file of one (dataset, split, C×H×W, extractor) combination."""
    c, h, w = sample_shape
    name = f"{_safe(dataset)}-{split}-{h}x{w}x{c}-{_safe(extractor_id)}.npz"
    return (cache_dir or features_cache_dir()) / name


def real_features(data: LabelledData, split: str, extractor: Extractor, *, cache_dir: Path | None = None,
                  use_cache: bool = True, progress: bool = True) -> tuple[np.ndarray, np.ndarray, bool]:
    """Features and logits of a real dataset, from the cache when present.

    Returns:
        (features, logits, hit): `hit` tells whether they came from the cache. An entry whose
        row count differs from `data` (e.g. another subset size) is recomputed and replaced.
    """
    path = cache_path(data.name, split, tuple(data.x.shape[1:]), extractor.id, cache_dir)
    if use_cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                feats, logits = f["features"], f["logits"]
            if len(feats) == len(data.x):
                return feats, logits, True
        except (OSError, ValueError, KeyError):
            pass  # a damaged entry is recomputed below
    feats, logits = extractor.extract(data.x, desc=f"{data.name} {split}", progress=progress)
    if use_cache:
        buf = io.BytesIO()
        np.savez(buf, features=feats, logits=logits)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: tmp.write_bytes(buf.getvalue()))
    return feats, logits, False
