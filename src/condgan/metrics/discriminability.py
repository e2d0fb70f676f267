"""Class discriminability of samples: classifier accuracy on the conditioned class, overall and per
class, and its dependence on resolution (Odena, Olah & Shlens 2017, "Conditional image synthesis
with auxiliary classifier GANs", sec. 4.1 and fig. 2).

The paper measures how much class information a generator puts into its output resolution by
shrinking samples to r x r and enlarging them back to full size with bilinear interpolation
before classifying them: if accuracy keeps rising up to the full resolution, the extra pixels
carry class information. `resolution_sweep` does that resizing with
`torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`: plain bilinear
interpolation without an anti-aliasing low-pass filter (the paper names only "bilinear").
`share_classes_full_beats_lowest` gives the paper's per-class comparison of two resolutions
(its 128 x 128 vs 64 x 64 ImageNet analysis).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from condgan.errors import ConfigError, SamplesError
from condgan.metrics import _checks
from condgan.metrics._checks import ArrayLike


def accuracy(logits_or_pred: ArrayLike, labels: ArrayLike, num_classes: int) -> dict[str, float]:
    """Share of samples classified as their label, overall and per class.

    Args:
        logits_or_pred: (N, num_classes) scores (the argmax is the prediction) or (N,) predictions.
        labels: (N,) ints in [0, num_classes); every class needs at least one sample.

    Returns:
        {"accuracy": over all samples, "accuracy/class_{k}": over the samples labelled k}.
    """
    num_classes = _checks.positive_int(num_classes, "num_classes")
    scores = _checks.to_numpy(logits_or_pred, "logits_or_pred")
    if scores.ndim == 2:
        if scores.shape[1] != num_classes:
            raise SamplesError(f"logits_or_pred: expected {num_classes} scores per sample, found {scores.shape[1]}")
        pred = scores.argmax(1)
    elif scores.ndim == 1:
        pred = _checks.labels(scores, scores.shape[0], "logits_or_pred", num_classes)
    else:
        raise SamplesError(f"logits_or_pred: expected shape (N, {num_classes}) or (N,), found {scores.shape}")
    y = _checks.labels(labels, pred.shape[0], "labels", num_classes)
    counts = np.bincount(y, minlength=num_classes)
    if (counts == 0).any():
        raise SamplesError(f"labels: expected at least one sample per class, found none for classes "
                           f"{np.flatnonzero(counts == 0).tolist()}")
    correct = pred == y
    per_class = np.bincount(y, weights=correct, minlength=num_classes) / counts
    return {"accuracy": float(correct.mean()), **{f"accuracy/class_{k}": float(a) for k, a in enumerate(per_class)}}


def resize_down_up(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) images to resolution x resolution and back to H x W."""
    small = F.interpolate(images, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return F.interpolate(small, size=images.shape[2:], mode="bilinear", align_corners=False)


@torch.no_grad()
def resolution_sweep(
    images: torch.Tensor,
    labels: ArrayLike,
    classify: Callable[[torch.Tensor], torch.Tensor],
    resolutions: Sequence[int],
    num_classes: int,
    batch_size: int = 256,
) -> dict[str, float]:
    """Accuracy of `classify` on images resized to each resolution and back (paper fig. 2).

    Args:
        images: (N, C, H, W) in [-1, 1].
        labels: (N,) the class each image should show.
        classify: maps a (B, C, H, W) batch to (B, num_classes) logits.
        resolutions: side lengths r, 1 <= r <= min(H, W); r equal to H = W classifies the
            images unchanged.
        batch_size: images per `classify` call; changes memory, not results.

    Returns:
        {"accuracy_{r}px": accuracy at r, "accuracy_{r}px/class_{k}": per class, ...} for each r.
    """
    images = _checks.images(images, "images")
    batch_size = _checks.positive_int(batch_size, "batch_size")
    height, width = images.shape[2:]
    out: dict[str, float] = {}
    for r in resolutions:
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 1 <= r <= min(height, width):
            raise ConfigError(f"resolutions: expected integers in [1, {min(height, width)}], found {r!r}")
        logits = torch.cat([
            classify(batch if (r, r) == (height, width) else resize_down_up(batch, int(r))).float().cpu()
            for batch in images.split(batch_size)
        ])
        out.update({key.replace("accuracy", f"accuracy_{r}px", 1): value
                    for key, value in accuracy(logits, labels, num_classes).items()})
    return out


def share_classes_full_beats_lowest(per_class_acc_full: ArrayLike, per_class_acc_lowest: ArrayLike) -> dict[str, float]:
    """Share of classes whose accuracy at full resolution is strictly above that at the lowest.

    Args:
        per_class_acc_full, per_class_acc_lowest: (num_classes,) accuracies, e.g.
            `per_class_values(sweep, "accuracy_64px")` and `per_class_values(sweep, "accuracy_32px")`.

    Returns:
        {"share_classes_full_beats_lowest": share in [0, 1]}.
    """
    full = _checks.to_numpy(per_class_acc_full, "per_class_acc_full").astype(np.float64).ravel()
    low = _checks.to_numpy(per_class_acc_lowest, "per_class_acc_lowest").astype(np.float64).ravel()
    if full.shape != low.shape or full.size == 0:
        raise SamplesError(f"per_class_acc_lowest: expected {full.size} class accuracies like per_class_acc_full "
                           f"(at least one), found {low.size}")
    return {"share_classes_full_beats_lowest": float((full > low).mean())}
