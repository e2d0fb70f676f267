"""FID and intra-class FID against closed forms and a direct eigenvalue computation."""

import numpy as np
import pytest

from condgan.errors import SamplesError
from condgan.metrics import fid as fid_module
from condgan.metrics.fid import feature_statistics, fid, frechet_distance, intra_class_fid


def _direct_fid(a: np.ndarray, b: np.ndarray) -> float:
    """Tr((S1 S2)^1/2) as the sum of square roots of the eigenvalues of S1^1/2 S2 S1^1/2 (symmetric)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(inner, 0, None)).sum())


def test_fid_matches_direct_eigenvalue_computation():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 16)) @ rng.normal(size=(16, 16))
    b = rng.normal(size=(300, 16)) @ rng.normal(size=(16, 16)) + 0.5
    assert fid(a, b)["fid"] == pytest.approx(_direct_fid(a, b), rel=1e-6)


def test_frechet_distance_closed_form_1d_and_diagonal():
    # N(m1, s1^2) vs N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2, summed over independent dimensions.
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]])) == pytest.approx(
        9.0 + 1.0, rel=1e-12)
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 0.25])
    expected = ((m1 - m2) ** 2).sum() + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    assert frechet_distance(m1, np.diag(s1), m2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)


def test_feature_statistics_are_mean_and_unbiased_covariance():
    x = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])
    mu, sigma = feature_statistics(x)
    np.testing.assert_allclose(mu, [2.0, 4.0])
    np.testing.assert_allclose(sigma, np.cov(x.T, ddof=1))


def test_fid_of_a_set_with_itself_is_zero_and_rank_deficient_covariances_work():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(10, 32))  # fewer samples than features: singular covariances
    assert abs(fid(a, a)["fid"]) < 1e-6
    assert fid(a, rng.normal(size=(12, 32)))["fid"] > 0


def test_singular_product_falls_back_to_eps_offset(monkeypatch):
    calls = []
    real_sqrtm = fid_module._sqrtm

    def fake(m):
        calls.append(m)
        return np.full_like(m, np.inf) if len(calls) == 1 else real_sqrtm(m)

    monkeypatch.setattr(fid_module, "_sqrtm", fake)
    s1, s2 = np.diag([1.0, 0.0]), np.diag([0.0, 1.0])
    value = frechet_distance(np.zeros(2), s1, np.zeros(2), s2, eps=1e-6)
    np.testing.assert_allclose(calls[1], (s1 + 1e-6 * np.eye(2)) @ (s2 + 1e-6 * np.eye(2)))
    assert value == pytest.approx(2.0 - 2 * 2 * np.sqrt(1e-6 * (1 + 1e-6)), rel=1e-9)


def test_intra_class_fid_is_per_class_fid_and_its_mean():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(60, 4)), rng.normal(size=(45, 4)) + 0.3
    ya, yb = np.repeat([0, 1, 2], 20), np.repeat([0, 1, 2], 15)
    out = intra_class_fid(a, ya, b, yb)
    per_class = [fid(a[ya == k], b[yb == k])["fid"] for k in range(3)]
    assert list(out) == ["intra_fid_mean", "intra_fid/class_0", "intra_fid/class_1", "intra_fid/class_2"]
    assert out["intra_fid_mean"] == pytest.approx(np.mean(per_class))
    assert [out[f"intra_fid/class_{k}"] for k in range(3)] == pytest.approx(per_class)


def test_bad_inputs_name_the_argument():
    with pytest.raises(SamplesError, match="feats_b"):
        fid(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(SamplesError, match="class 1"):
        intra_class_fid(np.zeros((4, 2)), np.array([0, 0, 1, 1]), np.zeros((3, 2)), np.array([0, 0, 1]))
    with pytest.raises(SamplesError, match="sigma2"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(3))
