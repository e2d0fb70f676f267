"""Pearson correlation against scipy, and reading per-class values out of metric dicts."""

import numpy as np
import pytest
import scipy.stats

from condgan.errors import SamplesError
from condgan.metrics.correlation import pearson, per_class_values


@pytest.mark.parametrize("n,slope", [(3, 1.0), (10, -0.5), (1000, 0.05)])
def test_pearson_matches_scipy(n, slope):
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    y = slope * x + rng.normal(size=n)
    expected = scipy.stats.pearsonr(x, y)
    out = pearson(x, y)
    assert out["pearson_r"] == pytest.approx(expected.statistic, rel=1e-10)
    assert out["pearson_p"] == pytest.approx(expected.pvalue, rel=1e-6)


def test_perfect_and_undefined_correlation():
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == {"pearson_r": 1.0, "pearson_p": 0.0}
    with pytest.raises(SamplesError, match="constant"):
        pearson([1, 2, 3], [5, 5, 5])
    with pytest.raises(SamplesError, match="y: expected 3 values"):
        pearson([1, 2, 3], [1, 2, 3, 4])


def test_per_class_values_reads_keys_in_class_order():
    metrics = {"accuracy": 0.5, "accuracy/class_1": 0.2, "accuracy/class_0": 0.8, "msssim_gen/class_0": 0.1}
    np.testing.assert_array_equal(per_class_values(metrics, "accuracy"), [0.8, 0.2])
    with pytest.raises(SamplesError, match="without gaps"):
        per_class_values({"accuracy/class_0": 1.0, "accuracy/class_2": 0.0}, "accuracy")
