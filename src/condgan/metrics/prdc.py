"""Precision, recall, density and coverage (Naeem et al. 2020, "Reliable fidelity and diversity
metrics for generative models"; reference code clovaai/generative-evaluation-prdc).

With B(x, r) the Euclidean ball around x and NND_k(x) the distance from x to its k-th nearest
neighbour within its own set (itself excluded), for real X_1..X_N and generated Y_1..Y_M:

    precision = 1/M sum_j 1[exists i: Y_j in B(X_i, NND_k(X_i))]
    recall    = 1/N sum_i 1[exists j: X_i in B(Y_j, NND_k(Y_j))]
    density   = 1/(kM) sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))]
    coverage  = 1/N sum_i 1[exists j: Y_j in B(X_i, NND_k(X_i))]

"In the ball" is strict (distance < radius), as in the reference code. Distances are compared
squared, in float64, a block of real rows at a time, so that only a (batch_size x max(N, M))
block of distances is in memory: 10k x 10k features need ~80 MB per block of 1024 rows.
"""

from __future__ import annotations

import torch

from condgan.errors import SamplesError
from condgan.metrics import _checks
from condgan.metrics._checks import ArrayLike


def _squared_distances(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    """||a_i - b_j||^2 for all i, j, clamped at 0 against rounding (a, b float64)."""
    return ((a * a).sum(1, keepdim=True) + b_sq[None, :] - 2.0 * a @ b.T).clamp_min_(0.0)


def kth_neighbour_sq_radii(x: torch.Tensor, k: int, batch_size: int = 1024) -> torch.Tensor:
    """Squared distance from each row of x (float64) to its k-th nearest other row."""
    x_sq = (x * x).sum(1)
    return torch.cat([
        _squared_distances(x[s:s + batch_size], x, x_sq).topk(k + 1, dim=1, largest=False).values[:, k]
        for s in range(0, x.shape[0], batch_size)
    ])


def prdc(real_feats: ArrayLike, gen_feats: ArrayLike, k: int = 5, batch_size: int = 1024) -> dict[str, float]:
    """Precision, recall, density and coverage of generated features against real ones.

    Args:
        real_feats: (N, D) real features, N > k.
        gen_feats: (M, D) generated features, M > k.
        k: the neighbour that sets each ball's radius (Naeem et al. use 5).
        batch_size: real rows per distance block; changes memory, not results.

    Returns:
        {"precision", "recall", "density", "coverage"}; all but density lie in [0, 1].
    """
    k = _checks.positive_int(k, "k")
    batch_size = _checks.positive_int(batch_size, "batch_size")
    real = _checks.features_tensor(real_feats, "real_feats")
    gen = _checks.features_tensor(gen_feats, "gen_feats").to(real.device)
    _checks.same_width(real, gen, "real_feats", "gen_feats")
    for name, t in (("real_feats", real), ("gen_feats", gen)):
        if t.shape[0] <= k:
            raise SamplesError(f"{name}: expected more than k={k} rows for k-nearest-neighbour balls, "
                               f"found {t.shape[0]}")
    real_r = kth_neighbour_sq_radii(real, k, batch_size)
    gen_r = kth_neighbour_sq_radii(gen, k, batch_size)
    gen_sq = (gen * gen).sum(1)

    balls_per_gen = torch.zeros(gen.shape[0], dtype=torch.int64, device=real.device)
    recalled = torch.empty(real.shape[0], dtype=torch.bool, device=real.device)
    covered = torch.empty(real.shape[0], dtype=torch.bool, device=real.device)
    for s in range(0, real.shape[0], batch_size):
        d = _squared_distances(real[s:s + batch_size], gen, gen_sq)  # (B, M)
        r = real_r[s:s + batch_size, None]
        balls_per_gen += (d < r).sum(0)
        recalled[s:s + batch_size] = (d < gen_r[None, :]).any(1)
        covered[s:s + batch_size] = d.min(1).values < r[:, 0]
    return {
        "precision": (balls_per_gen > 0).double().mean().item(),
        "recall": recalled.double().mean().item(),
        "density": balls_per_gen.double().mean().item() / k,
        "coverage": covered.double().mean().item(),
    }
