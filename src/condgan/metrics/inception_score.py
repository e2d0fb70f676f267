"""Inception Score from classifier logits (Salimans et al. 2016, "Improved techniques for training
GANs", sec. 4):

    IS = exp( E_x KL( p(y|x) || p(y) ) ),  p(y|x) = softmax(logits(x)),  p(y) = E_x p(y|x),

computed separately on `splits` consecutive chunks of the samples (chunk i holds rows
[i N / splits, (i+1) N / splits)), with p(y) the marginal of that chunk; the result is the mean and
population std (ddof 0) over chunks, as in the original `inception_score.py` and torch-fidelity's
`metric_isc.py`. torch-fidelity shuffles the rows first (`RandomState(2020).permutation`); pass
`seed=2020` to reproduce that, `seed=None` keeps the given order. Computed in float64 with
log-softmax, so p log p of a zero probability is 0, not NaN.
"""

from __future__ import annotations

import numpy as np
import torch

from condgan.errors import ConfigError
from condgan.metrics import _checks
from condgan.metrics._checks import ArrayLike


def inception_score(logits: ArrayLike, splits: int = 10, seed: int | None = None) -> dict[str, float]:
    """Inception Score of (N, num_classes) logits, N >= splits.

    Args:
        logits: unnormalised class scores; softmax gives p(y|x).
        splits: number of chunks the score is computed on.
        seed: if given, rows are permuted with `numpy.random.RandomState(seed)` before splitting.

    Returns:
        {"is_mean": mean over chunks, "is_std": population std over chunks}. Uniform predictions
        give 1; confident predictions spread evenly over C classes give C.
    """
    x = _checks.features_tensor(logits, "logits")
    n = x.shape[0]
    splits = _checks.positive_int(splits, "splits")
    if n < splits:
        raise ConfigError(f"splits: expected at most the number of samples ({n}), found {splits}")
    if seed is not None:
        x = x[torch.from_numpy(np.random.RandomState(seed).permutation(n)).to(x.device)]
    log_p = torch.log_softmax(x, dim=1)
    scores = []
    for i in range(splits):
        chunk = log_p[i * n // splits:(i + 1) * n // splits]
        log_marginal = torch.logsumexp(chunk, dim=0) - np.log(chunk.shape[0])  # log mean_x p(y|x)
        kl = (chunk.exp() * (chunk - log_marginal)).sum(1)
        scores.append(kl.mean().exp().item())
    return {"is_mean": float(np.mean(scores)), "is_std": float(np.std(scores))}
