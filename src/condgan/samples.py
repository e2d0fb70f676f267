"""The samples file: the interchange format between `condgan sample` and `condgan eval`.

An `.npz` (no pickles) holding
    images      uint8 N×H×W×C            (image models), or
    points      float32 N×2              (2D models), and
    labels      int64 N                  when the samples were conditioned on labels, and
    label_kind  0-d str: "class" | "cluster" | "none"
where "class" means the labels are dataset classes, "cluster" that they are the model's own
pseudo-classes (Self-Conditioned GAN cluster ids, which carry no dataset meaning) and "none" that
the model is unconditional (no `labels`). Files written before `label_kind` existed read as
"class" when they hold labels and "none" otherwise. This module alone writes, reads and
validates the format.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from condgan.data import LabelledData
from condgan.data.base import images_to_unit_range
from condgan.errors import SamplesError
from condgan.io import atomic_write_bytes, load_npz

LABEL_KINDS = ("class", "cluster", "none")


@dataclass(frozen=True)
class Samples:
    """Generated samples as stored: `images` (uint8 NHWC) or `points` (float32 N×2), and labels."""

    data: np.ndarray
    labels: np.ndarray | None
    label_kind: str

    @property
    def is_image(self) -> bool:
        return self.data.ndim == 4

    def __len__(self) -> int:
        return len(self.data)

    def float_images(self) -> torch.Tensor:
        """Images as float N×C×H×W in [-1, 1] (the metrics' layout)."""
        return images_to_unit_range(self.data)


def _validate(arrays: dict[str, np.ndarray], source: str) -> Samples:
    """The format's own rules (independent of any dataset); raises SamplesError naming `source`."""
    kind = str(arrays["label_kind"]) if "label_kind" in arrays else ("class" if "labels" in arrays else "none")
    if kind not in LABEL_KINDS:
        raise SamplesError(f"{source}: label_kind: expected one of {', '.join(LABEL_KINDS)}, found {kind[:40]!r}")
    present = [k for k in ("images", "points") if k in arrays]
    if len(present) != 1:
        raise SamplesError(f"{source}: expected exactly one of the arrays 'images' or 'points', "
                           f"found {sorted(arrays) or 'none'}")
    data = arrays[present[0]]
    if present[0] == "images" and (data.dtype != np.uint8 or data.ndim != 4):
        raise SamplesError(f"{source}: images: expected uint8 N×H×W×C, found {data.dtype} of shape {data.shape}")
    if present[0] == "points" and (data.dtype.kind != "f" or data.ndim != 2):
        raise SamplesError(f"{source}: points: expected float N×D, found {data.dtype} of shape {data.shape}")
    labels = arrays.get("labels")
    if kind == "none":
        if labels is not None:
            raise SamplesError(f"{source}: label_kind is 'none' but the file holds labels")
        return Samples(data, None, kind)
    if labels is None:
        raise SamplesError(f"{source}: expected arrays '{present[0]}' and 'labels' (label_kind {kind!r}), "
                           f"found {sorted(arrays)}")
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise SamplesError(f"{source}: labels: expected {data.shape[0]} labels (one per sample), found shape "
                           f"{labels.shape}")
    if labels.dtype.kind not in "iu":
        raise SamplesError(f"{source}: labels: expected int64, found dtype {labels.dtype}")
    if len(labels) and labels.min() < 0:
        raise SamplesError(f"{source}: labels: expected values >= 0, found {labels.min()}")
    return Samples(data, labels.astype(np.int64), kind)


def make_samples(data: np.ndarray, labels: np.ndarray | torch.Tensor | None, label_kind: str,
                 source: str = "samples") -> Samples:
    """Samples from arrays (images uint8 NHWC or points float N×2), checked like a file."""
    arrays = {"images" if data.ndim == 4 else "points": data, "label_kind": np.asarray(label_kind)}
    if labels is not None:
        arrays["labels"] = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    return _validate(arrays, source)


def write_samples(path: str | Path, samples: Samples) -> Path:
    """Write `samples` as a compressed .npz, atomically."""
    path = Path(path)
    arrays = {"images" if samples.is_image else "points": samples.data, "label_kind": np.asarray(samples.label_kind)}
    if samples.labels is not None:
        arrays["labels"] = samples.labels.astype(np.int64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())  # a failed write is a WriteError naming the file


def read_samples(path: str | Path) -> Samples:
    """Read and validate a samples file; every problem is one SamplesError naming the file."""
    path = Path(path)
    source = f"samples file {path}"
    return _validate(load_npz(path, source, SamplesError), source)  # bounded, no pickles


def check_against(samples: Samples, real: LabelledData, source: str, pairs: int | None = None) -> None:
    """Refuse samples unlike the real data: image shape, class range, too few samples per class.

    Class counts are checked only for dataset-class labels; `pairs` asks for enough samples per
    class for that many MS-SSIM pairs (diversity).
    """
    if not samples.is_image:
        raise SamplesError(f"{source}: holds 2D points; the evaluation suite is for images")
    c, h, w = real.sample_shape
    if samples.data.shape[1:] != (h, w, c):
        raise SamplesError(f"{source}: images: expected N×{h}×{w}×{c} like {real.name}, "
                           f"found shape {samples.data.shape}")
    if samples.label_kind != "class":
        return
    labels, k = samples.labels, real.num_classes
    if len(labels) and labels.max() >= k:
        raise SamplesError(f"{source}: labels: expected values in [0, {k}) ({real.name} classes), "
                           f"found [{labels.min()}, {labels.max()}]")
    counts = np.bincount(labels, minlength=k)
    need = 2
    if pairs is not None:
        # n (n - 1) / 2 >= pairs distinct same-class pairs for the MS-SSIM diversity.
        need = max(need, int(np.ceil((1 + np.sqrt(1 + 8 * pairs)) / 2)))
    if counts.min() < need:
        why = f"{pairs} MS-SSIM pairs (--pairs)" if pairs is not None and need > 2 else "per-class statistics"
        raise SamplesError(f"{source}: labels: expected at least {need} samples per class for {why}, "
                           f"found {counts.min()} for class {int(counts.argmin())}")
