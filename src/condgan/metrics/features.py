"""Feature extraction, run once per input set, and an on-disk cache for the real data's features.

An `Extractor` maps [-1, 1] NCHW images to (features N×D, logits N×K) in one batched pass. Two
kinds exist: the domain judge (`condgan.metrics.classifier`, 256-d penultimate layer and its class
logits) and the FID Inception-v3 (2048-d pool features and the 1008 logits of the TF graph without
the fc bias, which the Inception Score is defined on). Every metric computed from them is tagged
with `Extractor.id` (STYLE #3, DESIGN "every metric states the feature extractor it used").

Cache: the real data's features and logits are stored as `.npz` (plain arrays, read with
`condgan.io.load_npz`: no pickles, bounded work) under `<user cache>/condgan/features/`. An entry
is keyed by the content it was computed from (DESIGN: caches are keyed by content, never by a
name): `cache_key` hashes the images exactly as the extractor sees them (float32 N×C×H×W after
resizing and channel conversion, so resolution and channels are part of it) together with the
extractor id (which holds the weights' sha256). The key is part of the file name and stored in
the entry; an entry whose stored key, shapes, dtypes or values do not check out is recomputed
and rewritten, never trusted and never fatal. The dataset name, split and size in the file name
are only there for people. Writes are atomic (temp + rename).
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from condgan.data import LabelledData
from condgan.data.paths import user_cache_dir
from condgan.errors import CondganError
from condgan.io import atomic_write_bytes, load_npz
from condgan.metrics.classifier import for_inference

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
    batch_size: int = 500  # images per forward pass in `extract`

    @torch.no_grad()
    def extract(self, x: torch.Tensor, batch_size: int | None = None, desc: str = "features",
                progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(features float32 N×D, logits float32 N×K) of images x, `batch_size` (default: the
        extractor's) at a time."""
        batch_size = batch_size or self.batch_size
        feats, logits = [], []
        for start in tqdm(range(0, len(x), batch_size), desc=desc, unit="batch", disable=not progress,
                          leave=False):
            f, lg = self.forward(x[start:start + batch_size].to(self.device).float())
            feats.append(f.float().cpu())
            logits.append(lg.float().cpu())
        return torch.cat(feats).numpy(), torch.cat(logits).numpy()


def judge_extractor(judge, device: str | torch.device = "cpu") -> Extractor:
    """The domain judge (`condgan.metrics.classifier.Judge`) as an extractor.

    It runs an inference copy of the judge (`classifier.for_inference`: BatchNorm folded into the
    convolutions, channels-last memory) 256 images at a time: the same outputs to float32 rounding
    (tests/test_judges.py), 3× faster on a 2-core CPU than the module as trained.
    """
    model = for_inference(judge.model.to(device))

    def forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = model.features(x.contiguous(memory_format=torch.channels_last))
        return f, model.head(f)

    return Extractor(judge.id, forward, torch.device(device), batch_size=256)


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


CACHE_FORMAT = "condgan-features-v2"  # part of every key: a new layout never reads an old entry


def cache_key(x: torch.Tensor, extractor_id: str) -> str:
    """sha256 (hex) identifying features of images `x` under the extractor `extractor_id`.

    Hashes the format version, the extractor id, dtype and shape, and the bytes of `x` (the float
    images after preprocessing); 60000×1×28×28 floats take about 0.2 s.
    """
    array = np.ascontiguousarray(x.detach().cpu().numpy())
    digest = hashlib.sha256()
    for part in (CACHE_FORMAT, extractor_id, str(array.dtype), "x".join(map(str, array.shape))):
        digest.update(part.encode() + b"\0")
    digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def cache_path(dataset: str, split: str, sample_shape: tuple[int, ...], extractor_id: str, key: str,
               cache_dir: Path | None = None) -> Path:
    """Cache file of the entry `key` (`cache_key`); the other parts only make the name readable."""
    c, h, w = sample_shape
    name = f"{_safe(dataset)[:80]}-{split}-{h}x{w}x{c}-{_safe(extractor_id)[:80]}-{key[:16]}.npz"
    return (Path(cache_dir) if cache_dir else features_cache_dir()) / name


def _read_entry(path: Path, key: str, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(features, logits) of a cache entry, or None when it is absent, damaged or not for `key`."""
    if not path.is_file():
        return None
    try:
        arrays = load_npz(path, f"feature cache entry {path}", CondganError)
    except CondganError:
        return None
    feats, logits, stored = arrays.get("features"), arrays.get("logits"), arrays.get("key")
    if stored is None or stored.dtype.kind != "U" or stored.shape != () or str(stored) != key:
        return None
    for a in (feats, logits):
        if a is None or a.dtype != np.float32 or a.ndim != 2 or len(a) != n or not np.isfinite(a).all():
            return None
    return feats, logits


def real_features(data: LabelledData, split: str, extractor: Extractor, *, cache_dir: Path | None = None,
                  use_cache: bool = True, progress: bool = True) -> tuple[np.ndarray, np.ndarray, bool]:
    """Features and logits of a real dataset, from the cache when an entry for its content exists.

    Returns:
        (features, logits, hit): `hit` tells whether they came from the cache. A damaged entry,
        or one made from other images or another extractor, is never used: the features are
        computed and the entry (re)written. A cache that cannot be written is warned about and
        skipped.
    """
    x = data.x()  # float in [-1, 1]: what the extractor reads and the cache key hashes
    key = cache_key(x, extractor.id) if use_cache else ""
    path = cache_path(data.name, split, data.sample_shape, extractor.id, key, cache_dir) if use_cache else None
    if path is not None:
        found = _read_entry(path, key, len(data))
        if found is not None:
            return found[0], found[1], True
    feats, logits = extractor.extract(x, desc=f"{data.name} {split}", progress=progress)
    if path is not None:
        buf = io.BytesIO()
        np.savez(buf, features=feats, logits=logits, key=np.array(key))
        try:
            atomic_write_bytes(path, buf.getvalue())
        except CondganError as exc:  # a cache is an optimisation: the numbers are right without it
            warnings.warn(f"feature cache not written: {exc}", stacklevel=2)
    return feats, logits, False
