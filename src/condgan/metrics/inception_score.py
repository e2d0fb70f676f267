"""Inception Score from classifier logits (Salimans et al. 2016, "Improved techniques for training
GANs", sec. 4):

    IS = exp( E_x KL( p(y|x) || p(y) ) ),  p(y|x) = softmax(logits(x)),  p(y) = E_x p(y|x),

computed separately on `splits` chunks of the samples, with p(y) the marginal of that chunk; the
result is the mean and population std (ddof 0) over chunks, as in the original
`inception_score.py` (openai/improved-gan) and torch-fidelity's `metric_isc.py`.

Before splitting, the rows are shuffled with `numpy.random.RandomState(2020).permutation(N)`, as
torch-fidelity does (`isc_features_to_metric(..., shuffle=True, rng_seed=2020)`). Without the
shuffle each chunk's marginal p(y) depends on the order of the file: a samples file sorted by
class gives chunks that hold one or two classes each, whose p(y) is nearly as peaked as p(y|x),
and an IS near 1 for images that score far higher in random order. With it, any order of the
same samples gives the same score. Chunk i then holds the shuffled rows [i N / splits,
(i+1) N / splits).

Over Inception-v3, IS is defined on the 1008 logits *without* the final layer's bias (the TF
graph's "softmax/logits/MatMul" that the original code reads; torch-fidelity's
"logits_unbiased"); `condgan.metrics.features.inception_extractor` provides those. Computed in
float64 with log-softmax, so p log p of a zero probability is 0, not NaN.
"""

from __future__ import annotations

import numpy as np
import torch

from condgan.errors import ConfigError
from condgan.metrics import _checks
from condgan.metrics._checks import ArrayLike

SHUFFLE_SEED = 2020  # torch-fidelity's rng_seed default, used for its ISC shuffle


def inception_score(logits: ArrayLike, splits: int = 10, shuffle_seed: int | None = SHUFFLE_SEED) -> dict[str, float]:
    """Inception Score of (N, num_classes) logits, N >= splits.

    Args:
        logits: unnormalised class scores; softmax gives p(y|x). Over Inception, the unbiased
            logits (see the module docstring).
        splits: number of chunks the score is computed on.
        shuffle_seed: rows are permuted with `numpy.random.RandomState(shuffle_seed).permutation(N)`
            before splitting (default 2020, torch-fidelity's), so that the order of the samples
            does not change the score; None keeps the given order.

    Returns:
        {"is_mean": mean over chunks, "is_std": population std over chunks}. Uniform predictions
        give 1; confident predictions spread evenly over C classes give C.
    """
    x = _checks.features_tensor(logits, "logits")
    n = x.shape[0]
    splits = _checks.positive_int(splits, "splits")
    if n < splits:
        raise ConfigError(f"splits: expected at most the number of samples ({n}), found {splits}")
    if shuffle_seed is not None:
        x = x[torch.from_numpy(np.random.RandomState(shuffle_seed).permutation(n)).to(x.device)]
    log_p = torch.log_softmax(x, dim=1)
    scores = []
    for i in range(splits):
        chunk = log_p[i * n // splits:(i + 1) * n // splits]
        log_marginal = torch.logsumexp(chunk, dim=0) - np.log(chunk.shape[0])  # log mean_x p(y|x)
        kl = (chunk.exp() * (chunk - log_marginal)).sum(1)
        scores.append(kl.mean().exp().item())
    return {"is_mean": float(np.mean(scores)), "is_std": float(np.std(scores))}
