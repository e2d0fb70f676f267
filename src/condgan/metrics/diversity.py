"""Per-class sample diversity as mean MS-SSIM of random same-class pairs (Odena, Olah & Shlens
2017, "Conditional image synthesis with auxiliary classifier GANs", sec. 4.2).

Higher MS-SSIM means less diverse: a class whose generated images collapse onto one mode scores
near 1. The paper compares each class's generated MS-SSIM with the real data's and reports the
share of classes whose generated MS-SSIM lies below the highest per-class MS-SSIM of the real data
(84.7% of ImageNet classes), i.e. generated classes at least as diverse as the least diverse real
class.

Pairs: for class k with n_k images, `pairs_per_class` distinct unordered pairs {i, j}, i != j, are
drawn uniformly without replacement from the n_k (n_k - 1) / 2 possible ones, with the generator
`numpy.random.default_rng([seed, k])`, so a class's pairs depend only on the seed, k and that
class's images (in their order in `images`), not on the other classes.

Sampling error: a class's mean over 100 pairs has a standard error of about 0.015–0.02 on
Fashion-MNIST (the spread of pair values is wide), so two draws of the *same* real test images
differ by more than 0.02 in about a quarter of the classes (57 of 200 comparisons in
tests/test_metrics_diversity.py). `diversity_report` therefore gives each
class's standard error (the pairs' standard deviation / √pairs) beside its mean, and
`less_diverse_classes` calls a class less diverse than real only when its excess exceeds a margin
by more than twice the standard error of the difference.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from condgan.errors import SamplesError
from condgan.metrics import _checks
from condgan.metrics._checks import ArrayLike
from condgan.metrics.msssim import ms_ssim


def distinct_pairs(n: int) -> int:
    """How many distinct unordered pairs n images form: the most pairs a class of n can give."""
    return n * (n - 1) // 2


def _pairs(n: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` distinct pairs (i, j), i < j < n, uniformly without replacement."""
    t = rng.choice(distinct_pairs(n), size=count, replace=False)
    # Pair number t = j (j - 1) / 2 + i with 0 <= i < j: invert the triangular numbers.
    j = np.floor((1.0 + np.sqrt(1.0 + 8.0 * t)) / 2.0).astype(np.int64)
    j -= j * (j - 1) // 2 > t
    j += (j + 1) * j // 2 <= t
    return t - j * (j - 1) // 2, j


def class_msssim_pairs(
    images: torch.Tensor,
    labels: ArrayLike,
    num_classes: int,
    pairs_per_class: int = 100,
    seed: int = 0,
    win_size: int | None = None,
    weights: Sequence[float] | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """MS-SSIM of `pairs_per_class` random same-class pairs of distinct images, per class and pair.

    Args:
        images: (N, C, H, W) in [-1, 1].
        labels: (N,) ints in [0, num_classes).
        win_size, weights: MS-SSIM settings; None takes `msssim.default_settings` for the size.
        batch_size: pairs per MS-SSIM step; changes memory, not results.

    Returns:
        (num_classes, pairs_per_class) float64 array; row k holds class k's pairs.

    Raises:
        SamplesError: a class has too few images for `pairs_per_class` distinct pairs.
    """
    images = _checks.images(images, "images")
    num_classes = _checks.positive_int(num_classes, "num_classes")
    pairs_per_class = _checks.positive_int(pairs_per_class, "pairs_per_class")
    y = _checks.labels(labels, images.shape[0], "labels", num_classes)
    first, second = [], []
    for k in range(num_classes):
        members = np.flatnonzero(y == k)
        n = members.shape[0]
        if distinct_pairs(n) < pairs_per_class:
            raise SamplesError(
                f"labels: class {k} has {n} images, which form {distinct_pairs(n)} distinct pairs; "
                f"expected at least {pairs_per_class} pairs (pairs_per_class)"
            )
        i, j = _pairs(n, pairs_per_class, np.random.default_rng([seed, k]))
        first.append(members[i])
        second.append(members[j])
    index_a = torch.from_numpy(np.concatenate(first)).to(images.device)
    index_b = torch.from_numpy(np.concatenate(second)).to(images.device)
    values = torch.cat([
        ms_ssim(images[index_a[s:s + batch_size]], images[index_b[s:s + batch_size]],
                win_size=win_size, weights=weights, batch_size=batch_size)
        for s in range(0, index_a.shape[0], batch_size)
    ])
    return values.double().cpu().numpy().reshape(num_classes, pairs_per_class)


def _mean_and_se(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row mean and its standard error (sample std / √n; 0 for a single pair)."""
    n = pairs.shape[1]
    se = pairs.std(1, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(pairs.shape[0])
    return pairs.mean(1), se


def less_diverse_classes(gen: Sequence[float], real: Sequence[float], gen_se: Sequence[float] | None = None,
                         real_se: Sequence[float] | None = None, margin: float = 0.0) -> list[bool]:
    """Per class: are the samples less diverse than real, beyond `margin` and beyond sampling error?

    True where gen − real > margin + 2·√(gen_se² + real_se²) (MS-SSIM: higher is less diverse). Without
    standard errors (results of an older condgan) the test is gen − real > margin.
    """
    gen, real = np.asarray(gen, np.float64), np.asarray(real, np.float64)
    noise = np.zeros_like(gen) if gen_se is None or real_se is None else \
        2.0 * np.hypot(np.asarray(gen_se, np.float64), np.asarray(real_se, np.float64))
    return [bool(x) for x in gen - real > margin + noise]


def diversity_report(
    gen_images: torch.Tensor,
    gen_labels: ArrayLike,
    real_images: torch.Tensor,
    real_labels: ArrayLike,
    num_classes: int,
    pairs_per_class: int = 100,
    seed: int = 0,
    win_size: int | None = None,
    weights: Sequence[float] | None = None,
) -> dict[str, float]:
    """Per-class MS-SSIM of generated and real images and the paper's share of diverse classes.

    Returns:
        {"msssim_gen_mean", "msssim_real_mean": means over classes,
         "msssim_gen/class_{k}", "msssim_real/class_{k}": per class,
         "msssim_gen_se/class_{k}", "msssim_real_se/class_{k}": their standard errors over the pairs,
         "classes_less_diverse": the number of classes `less_diverse_classes` flags (margin 0),
         "share_classes_below_max_real": share of classes whose generated MS-SSIM is below
             the largest per-class real MS-SSIM (Odena et al. 2017: 84.7% of ImageNet classes)}.
    """
    gen, gen_se = _mean_and_se(class_msssim_pairs(gen_images, gen_labels, num_classes, pairs_per_class, seed,
                                                  win_size, weights))
    real, real_se = _mean_and_se(class_msssim_pairs(real_images, real_labels, num_classes, pairs_per_class, seed,
                                                    win_size, weights))
    return {
        "msssim_gen_mean": float(gen.mean()),
        "msssim_real_mean": float(real.mean()),
        **{f"msssim_gen/class_{k}": float(v) for k, v in enumerate(gen)},
        **{f"msssim_real/class_{k}": float(v) for k, v in enumerate(real)},
        **{f"msssim_gen_se/class_{k}": float(v) for k, v in enumerate(gen_se)},
        **{f"msssim_real_se/class_{k}": float(v) for k, v in enumerate(real_se)},
        "classes_less_diverse": float(sum(less_diverse_classes(gen, real, gen_se, real_se))),
        "share_classes_below_max_real": float((gen < real.max()).mean()),
    }
