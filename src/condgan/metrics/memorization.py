"""Memorisation checks: nearest training images of samples (Odena, Olah & Shlens 2017 look for
signs of overfitting by showing samples next to their nearest training images in L1 pixel
distance), and the share of samples that sit closer to the training set than real held-out
images do.

Nearest neighbours are exhaustive (exact, no index), a block of queries against a block of
references at a time, keeping the k best per query. L1 distances are sums of absolute
differences; L2 distances are computed from differences as well, never through
||a||^2 + ||b||^2 - 2 a·b, whose cancellation would be worst exactly for near-copies; `nearest_l2`
uses that expansion for the share metric only, where distances are far from zero (see its docstring).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from condgan.errors import ConfigError, SamplesError
from condgan.metrics import _checks
from condgan.metrics._checks import ArrayLike


def _flat(x: ArrayLike, name: str) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.from_numpy(_checks.to_numpy(x, name))
    if t.dim() < 2 or t.shape[0] == 0:
        raise SamplesError(f"{name}: expected a batch (N, ...) with N >= 1, found shape {tuple(t.shape)}")
    t = t.reshape(t.shape[0], -1)
    return t if t.dtype == torch.float64 else t.float()


def nearest_neighbours(
    queries: ArrayLike,
    references: ArrayLike,
    k: int = 1,
    distance: Literal["l1", "l2"] = "l1",
    batch_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest references of each query, nearest first.

    Args:
        queries: (Q, ...) e.g. samples as images (Q, C, H, W) or features (Q, D).
        references: (R, ...) of the same per-item shape, e.g. the training images; R >= k.
        distance: "l1" (sum of absolute differences; the paper's pixel distance) or "l2".
        batch_size: queries and references per distance block; changes memory, not results.
            Computed in float64 if both inputs are float64, else float32, on the queries' device.

    Returns:
        (indices, distances), both (Q, k): int64 rows of `references` and float64 distances.
    """
    q = _flat(queries, "queries")
    r = _flat(references, "references").to(q.device)
    if q.shape[1] != r.shape[1]:
        raise SamplesError(f"references: expected {q.shape[1]} values per item like queries, found {r.shape[1]}")
    if q.dtype != r.dtype:
        q, r = q.float(), r.float()
    k = _checks.positive_int(k, "k")
    if k > r.shape[0]:
        raise ConfigError(f"k: expected at most the number of references ({r.shape[0]}), found {k}")
    if distance not in ("l1", "l2"):
        raise ConfigError(f"distance: expected 'l1' or 'l2', found {distance!r}")
    batch_size = _checks.positive_int(batch_size, "batch_size")
    p = 1.0 if distance == "l1" else 2.0
    indices, distances = [], []
    for qb in q.split(batch_size):
        best_d = qb.new_empty(qb.shape[0], 0)
        best_i = torch.empty(qb.shape[0], 0, dtype=torch.int64, device=q.device)
        for start in range(0, r.shape[0], batch_size):
            d = torch.cdist(qb, r[start:start + batch_size], p=p, compute_mode="donot_use_mm_for_euclid_dist")
            i = torch.arange(start, start + d.shape[1], device=q.device).expand(qb.shape[0], -1)
            d, i = torch.cat([best_d, d], 1), torch.cat([best_i, i], 1)
            best_d, pos = d.topk(min(k, d.shape[1]), dim=1, largest=False, sorted=True)
            best_i = i.gather(1, pos)
        indices.append(best_i.cpu())
        distances.append(best_d.double().cpu())
    return torch.cat(indices).numpy(), torch.cat(distances).numpy()


def memorization_share(sample_nn_dist: ArrayLike, test_nn_dist: ArrayLike, quantile: float = 0.05) -> dict[str, float]:
    """Share of samples closer to their nearest training image than real test images typically are.

    "Typically" is the `quantile` (default 5%) of the test images' nearest-training distances,
    tau. Test images are fresh draws from the data distribution that the generator never saw, so
    their distances show how close novel, realistic images come to the training set; by
    construction a share `quantile` of them lies below tau. A generator that samples the data
    distribution without copying therefore scores about `quantile`, and a share well above it
    means samples hug training images more closely than real data does. A low quantile rather
    than the minimum keeps tau from resting on one or two unusually close test images.
    Both distances must be measured against the same training set, in the same space.

    Args:
        sample_nn_dist: (S,) or (S, k) distances of samples to their nearest training images
            (column 0 is used), e.g. from `nearest_neighbours`.
        test_nn_dist: (T,) or (T, k) the same for real held-out images.
        quantile: in (0, 1).

    Returns:
        {"memorization_share": share of samples with distance < tau,
         "memorization_threshold": tau, "memorization_quantile": the expected share without copying}.
    """
    if not 0.0 < quantile < 1.0:
        raise ConfigError(f"quantile: expected a value in (0, 1), found {quantile}")
    nearest = []
    for name, x in (("sample_nn_dist", sample_nn_dist), ("test_nn_dist", test_nn_dist)):
        a = _checks.to_numpy(x, name)
        a = a.reshape(-1, 1) if a.ndim == 1 else a
        nearest.append(_checks.features(a, name)[:, 0])
    tau = float(np.quantile(nearest[1], quantile))
    return {"memorization_share": float((nearest[0] < tau).mean()), "memorization_threshold": tau,
            "memorization_quantile": float(quantile)}


def nearest_l2(queries: torch.Tensor, references: torch.Tensor, batch_size: int = 4096) -> np.ndarray:
    """Euclidean distance from each query row to its nearest reference row, exhaustively.

    Squared distances as ||q||^2 + ||r||^2 - 2 q·r through float32 matrix products (BLAS), clamped
    at 0: ~50x faster than `memorization.nearest_neighbours`' difference-based search, which the
    suite keeps for the displayed neighbours. The rounding error of the expansion, about
    1e-7 ||q||^2, is far below the distances that set the memorisation threshold (a test image's
    nearest training image is not a near-copy), so shares are unaffected.
    """
    q, r = queries.flatten(1).float(), references.flatten(1).float()
    r_sq = (r * r).sum(1)
    best = torch.full((q.shape[0],), float("inf"))
    for s in range(0, r.shape[0], batch_size):
        block = r_sq[None, s:s + batch_size] - 2.0 * q @ r[s:s + batch_size].T
        best = torch.minimum(best, block.min(1).values)
    return (best + (q * q).sum(1)).clamp_min(0.0).sqrt().double().numpy()
