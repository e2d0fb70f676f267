"""Correlation between per-class discriminability and per-class diversity: Odena, Olah & Shlens
2017 ("Conditional image synthesis with auxiliary classifier GANs") relate each class's
classifier accuracy to its MS-SSIM across classes, to ask whether the model trades diversity for
discriminability.

Pearson's r over classes and its two-sided p-value under the null of independent normal samples:
t = r sqrt((n - 2) / (1 - r^2)) has Student's t distribution with n - 2 degrees of freedom, which
is the exact test `scipy.stats.pearsonr` reports.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import scipy.special

from condgan.errors import SamplesError
from condgan.metrics import _checks
from condgan.metrics._checks import ArrayLike


def per_class_values(metrics: Mapping[str, float], prefix: str) -> np.ndarray:
    """The values of keys "{prefix}/class_0" ... "{prefix}/class_{K-1}" of a metric dict, in order.

    E.g. `per_class_values(accuracy(...), "accuracy")` or
    `per_class_values(diversity_report(...), "msssim_gen")`.
    """
    head = f"{prefix}/class_"
    found = {key[len(head):]: value for key, value in metrics.items() if key.startswith(head)}
    expected = [str(k) for k in range(len(found))]
    if not found or sorted(found) != sorted(expected):
        raise SamplesError(f"metrics: expected keys {head}0 ... {head}<K-1> without gaps, "
                           f"found {sorted(head + k for k in found) or 'none'}")
    return np.array([found[k] for k in expected], dtype=np.float64)


def pearson(x: ArrayLike, y: ArrayLike) -> dict[str, float]:
    """Pearson's correlation between two equally long vectors (n >= 3), with its p-value.

    Returns:
        {"pearson_r": r in [-1, 1], "pearson_p": two-sided p-value of r = 0}.
    """
    a = _checks.features(np.reshape(_checks.to_numpy(x, "x"), (-1, 1)), "x", min_rows=3)[:, 0]
    b = _checks.features(np.reshape(_checks.to_numpy(y, "y"), (-1, 1)), "y", min_rows=3)[:, 0]
    if a.shape != b.shape:
        raise SamplesError(f"y: expected {a.shape[0]} values like x, found {b.shape[0]}")
    da, db = a - a.mean(), b - b.mean()
    norm = np.sqrt((da @ da) * (db @ db))
    if norm == 0.0:
        raise SamplesError("x, y: expected values that vary, found a constant vector (r undefined)")
    r = float(np.clip(da @ db / norm, -1.0, 1.0))
    n = a.shape[0]
    if abs(r) == 1.0:
        return {"pearson_r": r, "pearson_p": 0.0}
    t = r * np.sqrt((n - 2) / (1.0 - r * r))
    return {"pearson_r": r, "pearson_p": float(2.0 * scipy.special.stdtr(n - 2, -abs(t)))}
