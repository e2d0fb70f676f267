"""Smoothness of a latent interpolation. Odena, Olah & Shlens 2017 interpolate between latent codes
as a check against memorisation: a model that has memorised training images tends to jump
discretely from one to the next, while one that has learnt the data manifold changes
gradually.

For frames f_0 .. f_{T-1} along one interpolation, the step sizes are
d_t = dist(f_t, f_{t+1}), per element so that they do not depend on resolution:
"l2" is the root mean square difference, "l1" the mean absolute difference. A discrete jump shows
as one step much larger than the typical one, so the score is max_t d_t / median_t d_t
(1 for perfectly even steps; 1 as well when nothing changes at all, infinite when all but
a few steps are zero).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from condgan.errors import ConfigError, SamplesError
from condgan.metrics import _checks
from condgan.metrics._checks import ArrayLike


def jump_score(frames: ArrayLike, distance: Literal["l2", "l1"] = "l2") -> dict[str, float]:
    """Largest and median step along a sequence of frames, and their ratio.

    Args:
        frames: (T, ...) images (T, C, H, W) or features (T, D) in interpolation order, T >= 3.
        distance: "l2" (root mean square difference) or "l1" (mean absolute difference).

    Returns:
        {"max_step", "median_step", "jump_ratio": max_step / median_step}.
    """
    f = _checks.to_numpy(frames, "frames")
    if f.ndim < 2 or f.shape[0] < 3:
        raise SamplesError(f"frames: expected a sequence (T, ...) of at least 3 frames, found shape {f.shape}")
    f = _checks.features(f.reshape(f.shape[0], -1), "frames")
    if distance not in ("l2", "l1"):
        raise ConfigError(f"distance: expected 'l2' or 'l1', found {distance!r}")
    diff = np.diff(f, axis=0)
    steps = np.sqrt((diff**2).mean(1)) if distance == "l2" else np.abs(diff).mean(1)
    largest, median = float(steps.max()), float(np.median(steps))
    ratio = 1.0 if largest == 0.0 else (largest / median if median > 0.0 else float("inf"))
    return {"max_step": largest, "median_step": median, "jump_ratio": ratio}
