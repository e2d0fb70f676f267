"""Mode-collapse metrics: true mixtures score perfectly, dropped modes and blur are caught, stacked counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from condgan.data import load_dataset
from condgan.data.stacked import stack_draws
from condgan.data.toy2d import grid_modes, ring_modes, sample_mixture
from condgan.errors import SamplesError
from condgan.metrics.modes import (classify_stacked, mode_metrics, reverse_kl, stacked_metrics,
                                   stacked_modes)

# P(‖x − μ‖ < 3σ) for a 2D isotropic Gaussian: r/σ is Rayleigh, CDF 1 − exp(−r²/2σ²).
P_L2_3SIGMA = 1 - math.exp(-4.5)  # ≈ 0.98889
# The official square test: both coordinates within 3σ, P = erf(3/√2)².
P_LINF_3SIGMA = math.erf(3 / math.sqrt(2)) ** 2  # ≈ 0.99461


def _draw(modes_fn, n: int, seed: int = 0, keep: list[int] | None = None, blur: float = 1.0) -> np.ndarray:
    means, std = modes_fn()
    if keep is not None:
        means = means[keep]
    x, _ = sample_mixture(means, std * blur, n, torch.Generator().manual_seed(seed))
    return x.numpy()


def test_constants() -> None:
    assert P_L2_3SIGMA == pytest.approx(0.98889, abs=1e-5)
    assert P_LINF_3SIGMA == pytest.approx(0.99461, abs=1e-5)


@pytest.mark.parametrize("modes_fn, k", [(ring_modes, 8), (grid_modes, 25)])
def test_true_mixture_is_perfect(modes_fn, k: int) -> None:
    points = _draw(modes_fn, 50_000)
    means, std = modes_fn()
    # Binomial std of the HQ share over 50,000 points is ≈ 0.05 percentage points: 0.3 is 6 sigma.
    l2 = mode_metrics(points, means.numpy(), std, rule="l2")
    assert l2["modes"] == k
    assert l2["hq_percent"] == pytest.approx(100 * P_L2_3SIGMA, abs=0.3)
    assert l2["reverse_kl"] < 0.002 and l2["reverse_kl_hq"] < 0.002
    linf = mode_metrics(points, means.numpy(), std, rule="linf")
    assert linf["modes"] == k
    assert linf["hq_percent"] == pytest.approx(100 * P_LINF_3SIGMA, abs=0.3)


def test_dropped_modes_are_detected() -> None:
    means, std = ring_modes()
    points = _draw(ring_modes, 40_000, keep=[0, 1, 2, 3, 4, 5])
    m = mode_metrics(points, means.numpy(), std)
    assert m["modes"] == 6
    # Uniform over 6 of 8 bins: KL = Σ (1/6) log(8/6) = log(4/3).
    assert m["reverse_kl"] == pytest.approx(math.log(8 / 6), abs=0.01)
    assert m["hq_percent"] == pytest.approx(100 * P_L2_3SIGMA, abs=0.4)  # what is drawn is still sharp


def test_blur_is_detected() -> None:
    means, std = grid_modes()
    points = _draw(grid_modes, 40_000, blur=3.0)
    m = mode_metrics(points, means.numpy(), std)
    # Within 3σ of a mode drawn with std 3σ: P(r < σ') = 1 − exp(−1/2) ≈ 39.3%.
    assert m["hq_percent"] == pytest.approx(100 * (1 - math.exp(-0.5)), abs=1.0)
    assert m["modes"] == 25  # blurred, but every mode still gets a few sharp samples


def test_far_points_score_nothing() -> None:
    means, std = ring_modes()
    m = mode_metrics(np.zeros((100, 2)), means.numpy(), std)  # all at the centre of the ring
    assert m["modes"] == 0 and m["hq_percent"] == 0
    assert math.isnan(m["reverse_kl_hq"])


def test_reverse_kl_values() -> None:
    assert reverse_kl(np.array([5, 5, 5, 5])) == pytest.approx(0.0)
    assert reverse_kl(np.array([7, 0, 0, 0])) == pytest.approx(math.log(4))  # empty bins add 0
    assert reverse_kl(np.array([7, 0, 0, 0]), base=10) == pytest.approx(math.log10(4))
    assert reverse_kl(np.array([3, 1])) == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))


def test_bad_input_is_refused() -> None:
    means, std = ring_modes()
    with pytest.raises(SamplesError, match="points"):
        mode_metrics(np.zeros((10, 3)), means.numpy(), std)
    with pytest.raises(SamplesError, match="finite"):
        mode_metrics(np.full((10, 2), np.nan), means.numpy(), std)
    with pytest.raises(ValueError, match="rule"):
        mode_metrics(np.zeros((10, 2)), means.numpy(), std, rule="l1")
    with pytest.raises(SamplesError, match="N×3"):
        stacked_modes(np.zeros((4, 2), dtype=int))


def test_stacked_modes_order_and_metrics() -> None:
    assert stacked_modes(np.array([[1, 2, 3], [9, 0, 0]])).tolist() == [123, 900]
    counts = stacked_metrics(np.array([0, 0, 999, 5]))
    assert counts["modes"] == 3
    assert counts["reverse_kl"] == pytest.approx(reverse_kl(np.bincount([0, 0, 999, 5], minlength=1000), base=10))


def test_stacked_counter_recovers_planted_histogram() -> None:
    """Real stacked Fashion-MNIST images, classified per channel by a perfect (lookup) judge."""
    base = load_dataset("fashion-mnist", "test", num_samples=3000, seed=0)
    # Plant a histogram: only classes 0–4 in the base, so exactly the 125 modes with digits < 5 exist.
    keep = base.y < 5
    sub = type(base)(base.x()[keep], base.y[keep], base.class_names, base.name)
    lookup = {}
    for img, label in zip(sub.x(), sub.y.tolist()):
        lookup.setdefault(img.numpy().tobytes(), label)

    def perfect_judge(x: torch.Tensor) -> torch.Tensor:
        classes = torch.tensor([lookup[img.numpy().tobytes()] for img in x])
        return torch.nn.functional.one_hot(classes, 10).float()

    stacked = stack_draws(sub, 4000, torch.Generator().manual_seed(1))
    found = classify_stacked(stacked.x(), perfect_judge, batch_size=512)
    assert found.tolist() == stacked.y.tolist()  # channel order: 100·c0 + 10·c1 + c2
    m = stacked_metrics(found)
    assert m["modes"] == len(set(stacked.y.tolist())) <= 125
    assert m["modes"] > 120  # 4000 draws over 125 modes leave almost none empty
    # 125 of 1000 modes, about uniform: KL ≈ log10(1000/125) = log10(8).
    assert m["reverse_kl"] == pytest.approx(math.log10(8), abs=0.02)


def test_stacked_data_is_seeded_and_labelled() -> None:
    a = load_dataset("stacked-fashion-mnist", "test", num_samples=500, seed=3)
    b = load_dataset("stacked-fashion-mnist", "test", num_samples=500, seed=3)
    c = load_dataset("stacked-fashion-mnist", "test", num_samples=500, seed=4)
    assert a.x().shape == (500, 3, 28, 28) and a.num_classes == 1000
    assert torch.equal(a.x(), b.x()) and torch.equal(a.y, b.y)
    assert not torch.equal(a.y, c.y)
    assert a.name == "stacked-fashion-mnist"
