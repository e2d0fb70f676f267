"""KID against a naive double loop with the same subset draws, torchmetrics and torch-fidelity."""

import numpy as np
import pytest
import torch

from condgan.metrics.kid import kid


def _naive_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    m, d = x.shape
    k = lambda a, b: (float(a @ b) / d + 1.0) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_naive_loop_with_torch_fidelity_subset_draws():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 5)), rng.normal(size=(25, 5)) + 0.4
    subsets, size, seed = 4, 12, 7
    draws = np.random.RandomState(seed)
    mmds = []
    for _ in range(subsets):
        ia = draws.choice(30, size, replace=False)
        ib = draws.choice(25, size, replace=False)
        mmds.append(_naive_mmd2(a[ia], b[ib]))
    out = kid(a, b, num_subsets=subsets, subset_size=size, seed=seed)
    assert out["kid_mean"] == pytest.approx(np.mean(mmds), rel=1e-9)
    assert out["kid_std"] == pytest.approx(np.std(mmds), rel=1e-9)


def test_kid_matches_torchmetrics_on_the_full_set():
    from torchmetrics.image.kid import KernelInceptionDistance

    class Identity(torch.nn.Module):
        num_features = 6

        def forward(self, x):
            return x

    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(40, 6, generator=g, dtype=torch.float64), torch.randn(40, 6, generator=g, dtype=torch.float64)
    metric = KernelInceptionDistance(feature=Identity(), subsets=1, subset_size=40)
    metric.update(a, real=True)
    metric.update(b + 0.5, real=False)
    reference = metric.compute()[0].item()
    assert kid(a, b + 0.5, num_subsets=1, subset_size=40)["kid_mean"] == pytest.approx(reference, rel=1e-4)


def test_subset_size_is_capped_and_seed_fixes_the_result():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(50, 8)), rng.normal(size=(60, 8)) + 0.2
    capped = kid(a, b, num_subsets=3, subset_size=1000, seed=0)
    assert capped == kid(a, b, num_subsets=3, subset_size=50, seed=0)
    assert (capped["kid_subset_size"], capped["kid_num_subsets"]) == (50.0, 3.0)  # the size used, not asked
    assert kid(a, b, num_subsets=3, subset_size=20, seed=5) == kid(a, b, num_subsets=3, subset_size=20, seed=5)
    assert kid(a, b, num_subsets=3, subset_size=20, seed=5) != kid(a, b, num_subsets=3, subset_size=20, seed=6)


def test_kid_is_near_zero_for_one_distribution_and_grows_with_shift():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    same = kid(a, b, num_subsets=5, subset_size=200)["kid_mean"]
    shifted = kid(a, b + 1.0, num_subsets=5, subset_size=200)["kid_mean"]
    assert abs(same) < 0.1 < shifted


def test_kid_matches_torch_fidelity_with_its_seed():
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid", reason="torch-fidelity is a test extra: pip install -e .[test]")
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(120, 16, generator=g), torch.randn(150, 16, generator=g) + 0.3
    ref = metric_kid.kid_features_to_metric(a, b, kid_subsets=7, kid_subset_size=50, rng_seed=2020, verbose=False)
    out = kid(a, b, num_subsets=7, subset_size=50, seed=2020)
    assert out["kid_mean"] == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-5)
    assert out["kid_std"] == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-4)
    assert (out["kid_subset_size"], out["kid_num_subsets"]) == (50.0, 7.0)
