"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs").

KID is the unbiased estimate of the squared maximum mean discrepancy (Gretton et al. 2012,
"A kernel two-sample test") between two feature sets under the cubic polynomial kernel

    k(x, y) = (gamma x·y + coef0)^degree,  gamma = 1/D, coef0 = 1, degree = 3,

    MMD^2_u = sum_{i!=j} k(x_i, x_j) / (m(m-1)) + sum_{i!=j} k(y_i, y_j) / (m(m-1))
              - 2 sum_{i,j} k(x_i, y_j) / m^2,

averaged over `num_subsets` random subsets of `subset_size` rows drawn without replacement from
each set. Conventions follow torch-fidelity (`torch_fidelity/metric_kid.py`, which adapts
Bińkowski's `compute_scores.py`): the cross term keeps its diagonal ("unbiased" there, not the
"u-statistic"), subsets come from `numpy.random.RandomState(seed).choice(n, m, replace=False)`
(first set, then second set, per subset), and the spread is the population std (ddof 0). Unlike
torch-fidelity, a subset size larger than a set is capped at the smaller set's size instead of
being an error. Kernels are computed in float64 on the features' device.
"""

from __future__ import annotations

import numpy as np
import torch

from condgan.errors import ConfigError
from condgan.metrics import _checks
from condgan.metrics._checks import ArrayLike


def polynomial_mmd2(x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None,
                    coef0: float = 1.0) -> float:
    """Unbiased MMD^2 between equally sized sets x, y (m, D) under the polynomial kernel (m >= 2)."""
    m = x.shape[0]
    g = 1.0 / x.shape[1] if gamma is None else gamma
    k_xx = (x @ x.T * g + coef0) ** degree
    k_yy = (y @ y.T * g + coef0) ** degree
    k_xy = (x @ y.T * g + coef0) ** degree
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kid(
    feats_a: ArrayLike,
    feats_b: ArrayLike,
    num_subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
) -> dict[str, float]:
    """KID between two feature sets (N_a, D) and (N_b, D): mean ± std of MMD^2_u over subsets.

    Args:
        num_subsets: number of random subset pairs.
        subset_size: rows per subset, capped at min(N_a, N_b); at least 2 rows are needed.
        degree, gamma, coef0: kernel (gamma x·y + coef0)^degree; gamma None means 1/D.
        seed: seeds the subset draws (torch-fidelity uses 2020); the same seed and inputs give the
            same result.

    Returns:
        {"kid_mean": mean MMD^2_u, "kid_std": population std over subsets, "kid_subset_size": rows
        per subset actually used (after the cap), "kid_num_subsets": number of subsets}. The last
        two are floats like every value of a metric dict; KID values are only comparable at the
        same subset size (MMD^2_u is unbiased, but its spread shrinks with the subset size).
    """
    a = _checks.features_tensor(feats_a, "feats_a", min_rows=2)
    b = _checks.features_tensor(feats_b, "feats_b", min_rows=2).to(a.device)
    _checks.same_width(a, b, "feats_a", "feats_b")
    num_subsets = _checks.positive_int(num_subsets, "num_subsets")
    m = min(_checks.positive_int(subset_size, "subset_size"), a.shape[0], b.shape[0])
    if m < 2:
        raise ConfigError(f"subset_size: expected at least 2 rows per subset, found {subset_size}")
    degree = _checks.positive_int(degree, "degree")
    rng = np.random.RandomState(seed)
    mmds = np.empty(num_subsets)
    for i in range(num_subsets):
        idx_a = torch.from_numpy(rng.choice(a.shape[0], m, replace=False)).to(a.device)
        idx_b = torch.from_numpy(rng.choice(b.shape[0], m, replace=False)).to(a.device)
        mmds[i] = polynomial_mmd2(a[idx_a], b[idx_b], degree, gamma, coef0)
    return {"kid_mean": float(mmds.mean()), "kid_std": float(mmds.std()), "kid_subset_size": float(m),
            "kid_num_subsets": float(num_subsets)}
