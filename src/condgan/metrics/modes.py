"""Mode-collapse metrics of the Self-Conditioned GAN paper (Liu et al., CVPR 2020, §4.1, Table 1).

2D mixtures (ring: 8 modes, grid: 25 modes), over generated points and the true means/std:
- a sample is *high quality* when it lies within 3σ of its nearest mode. `rule="l2"` (default)
  uses the Euclidean distance, ‖x − μ‖₂ < 3σ; for points drawn from the true 2D isotropic
  mixture the radius r/σ is Rayleigh distributed, so P(r < 3σ) = 1 − exp(−9/2) ≈ 0.9889, not the
  1D 99.73%. `rule="linf"` is the official code's test (2d_mix/evaluation.py, percent_good_pts):
  every coordinate within 3σ, a square of side 6σ, which holds P(|x| < 3σ)² = erf(3/√2)² ≈ 0.9946
  of the true mixture's points. The paper's numbers come from the square.
- a mode is *recovered* when at least one high-quality sample lies within 3σ of it (the official
  code's `visited` set).
- *reverse KL* KL(p_gen ‖ uniform) = Σ_k p_k log(K p_k) of the generated mode histogram, with empty
  bins contributing 0 (0·log 0 = 0, the official code skips them), so a generator that drops modes
  is not punished with infinity. Following the official code the histogram assigns *every*
  sample to its nearest mode (`reverse_kl`); `reverse_kl_hq` uses the high-quality samples only.
  Natural log, as in the official 2D code.

Stacked data (1000 modes): a generated image's mode is the judge's class of each channel,
100·c0 + 10·c1 + c2; a mode is covered when at least one sample falls in it, and the reverse KL
of that histogram against uniform is taken in log base 10, as the official
utils/get_empirical_distribution.py does ("log10 seems to reproduce pacgan results"). The
official metrics.py classifies N = 50,000 samples; PacGAN (Lin et al. 2018) and VEEGAN used 26,000.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from condgan.errors import SamplesError

RULES = ("l2", "linf")
# The official metrics.py draws N = 50000 samples for # modes / reverse KL; its 2D script uses
# test_batch_size = 50000 too (2d_mix/train.py).
NUM_EVAL_SAMPLES = 50_000
STACKED_MODES = 1000


def _check_points(points: np.ndarray, means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    points, means = np.asarray(points, dtype=np.float64), np.asarray(means, dtype=np.float64)
    if points.ndim != 2 or means.ndim != 2 or points.shape[1] != means.shape[1] or len(points) == 0:
        raise SamplesError(f"points: expected a non-empty N×{means.shape[-1]} array, found shape {points.shape}")
    if not np.isfinite(points).all():
        raise SamplesError("points: expected finite values, found NaN or infinity")
    return points, means


def reverse_kl(counts: np.ndarray, base: float = math.e) -> float:
    """KL(p ‖ uniform over len(counts) bins) = Σ_k p_k log(K p_k), empty bins contributing 0."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return math.nan  # no samples to form a histogram from
    p = counts[counts > 0] / total
    return float(np.sum(p * np.log(len(counts) * p)) / math.log(base))


def nearest_modes(points: np.ndarray, means: np.ndarray, batch: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """(index of the nearest mean in Euclidean distance, offset point − that mean) per point."""
    points, means = _check_points(points, means)
    idx = np.empty(len(points), dtype=np.int64)
    for i in range(0, len(points), batch):
        d2 = ((points[i:i + batch, None, :] - means[None]) ** 2).sum(-1)
        idx[i:i + batch] = d2.argmin(1)
    return idx, points - means[idx]


def mode_metrics(points: np.ndarray, means: np.ndarray, std: float, rule: str = "l2") -> dict[str, float]:
    """Modes recovered, % high-quality samples and reverse KL of 2D samples (see module docstring).

    Args:
        points: N×2 generated points.
        means: K×2 true mode centres.
        std: the modes' standard deviation σ (isotropic).
        rule: "l2" (‖x − μ‖₂ < 3σ) or "linf" (official code: |x_i − μ_i| < 3σ for each coordinate).

    Returns:
        modes (count out of K), hq_percent (0–100), reverse_kl (all samples to their nearest
        mode, nats), reverse_kl_hq (high-quality samples only; NaN when there are none).
    """
    if rule not in RULES:
        raise ValueError(f"rule: expected one of {', '.join(RULES)}, found {rule!r}")
    idx, offset = nearest_modes(points, means)
    # The nearest mode in L2 is also the only one that can hold the point in either test: modes
    # are ≥ 2 units apart and 3σ ≤ 0.15, so the 3σ regions never overlap.
    dist = np.linalg.norm(offset, axis=1) if rule == "l2" else np.abs(offset).max(axis=1)
    hq = dist < 3 * std
    k = len(means)
    return {
        "modes": float(len(np.unique(idx[hq]))),
        "hq_percent": 100.0 * float(hq.mean()),
        "reverse_kl": reverse_kl(np.bincount(idx, minlength=k)),
        "reverse_kl_hq": reverse_kl(np.bincount(idx[hq], minlength=k)),
    }


def stacked_modes(channel_classes: np.ndarray) -> np.ndarray:
    """Mode id 100·c0 + 10·c1 + c2 from the judge's class of each channel (N×3, classes 0–9)."""
    c = np.asarray(channel_classes)
    if c.ndim != 2 or c.shape[1] != 3 or c.min(initial=0) < 0 or c.max(initial=0) > 9:
        raise SamplesError(f"channel classes: expected N×3 integers in [0, 9], found shape {c.shape}")
    return (100 * c[:, 0] + 10 * c[:, 1] + c[:, 2]).astype(np.int64)


def stacked_metrics(modes: np.ndarray, num_modes: int = STACKED_MODES) -> dict[str, float]:
    """Modes covered (≥ 1 sample) and reverse KL (log10, official code) of a stacked mode histogram."""
    counts = np.bincount(np.asarray(modes, dtype=np.int64), minlength=num_modes)
    if len(counts) != num_modes:
        raise SamplesError(f"modes: expected ids in [0, {num_modes}), found {len(counts) - 1}")
    return {"modes": float((counts > 0).sum()), "reverse_kl": reverse_kl(counts, base=10.0)}


@torch.no_grad()
def classify_stacked(images: torch.Tensor, classify: Callable[[torch.Tensor], torch.Tensor],
                     batch_size: int = 1000) -> np.ndarray:
    """Stacked mode id of each N×3×H×W image in [-1, 1]: `classify` (N×1×H×W → N logits×10) per channel.

    With a `Judge`, pass `lambda x: judge.run(x)[1]`.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise SamplesError(f"stacked images: expected N×3×H×W, found shape {tuple(images.shape)}")
    classes = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        n = len(x)
        logits = classify(x.reshape(n * 3, 1, *x.shape[2:]))  # channel-major within each image
        classes.append(logits.argmax(1).reshape(n, 3).cpu().numpy())
    return stacked_modes(np.concatenate(classes))
