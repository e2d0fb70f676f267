"""FID and intra-class FID against closed forms, a direct eigenvalue computation, scipy's sqrtm
(pytorch-fid's route, kept here only as the reference) and pytorch-fid's own function."""

import warnings

import numpy as np
import pytest
import scipy.linalg

from condgan.errors import SamplesError
from condgan.metrics import fid as fid_module
from condgan.metrics.fid import (
    feature_statistics,
    fid,
    frechet_distance,
    frechet_distance_to_features,
    intra_class_fid,
    trace_sqrt_product,
)


def _sqrtm_frechet(mu1, s1, mu2, s2, eps=1e-6) -> float:
    """pytorch-fid's numerics (fid_score.calculate_frechet_distance): sqrtm of the product, eps on the
    diagonals when the root is not finite, real part."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = scipy.linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(s1)) * eps
            covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


def _features(n: int, d: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    """Non-negative, correlated features like pool3 activations (ReLU of mixed Gaussians)."""
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(99).normal(size=(d, d)) / np.sqrt(d)
    return np.abs(rng.normal(size=(n, d)) @ mix) * scale + shift


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


@pytest.mark.parametrize("na, nb, d", [
    (300, 400, 64),  # both covariances full rank: Cholesky route
    (40, 300, 64),  # fewer samples than dimensions in one set
    (30, 50, 128),  # both rank-deficient
])
def test_all_routes_match_scipy_sqrtm(na, nb, d):
    a, b = _features(na, d, 1), _features(nb, d, 2, scale=1.2, shift=0.1)
    s_a, s_b = feature_statistics(a), feature_statistics(b)
    reference = _sqrtm_frechet(*s_a, *s_b)
    assert fid(a, b)["fid"] == pytest.approx(reference, rel=1e-6)
    assert frechet_distance(*s_a, *s_b) == pytest.approx(reference, rel=1e-6)
    assert frechet_distance(*s_b, *s_a) == pytest.approx(reference, rel=1e-6)
    assert frechet_distance_to_features(*s_a, b) == pytest.approx(reference, rel=1e-6)
    assert frechet_distance_to_features(*s_b, a) == pytest.approx(reference, rel=1e-6)


def test_large_sets_with_fewer_rows_than_dimensions_use_one_covariance(monkeypatch):
    a, b = _features(20, 64, 3), _features(500, 64, 4, shift=0.3)
    direct = fid(a, b)["fid"]  # nuclear norm of the 20×500 cross product
    monkeypatch.setattr(fid_module, "MAX_CROSS_ENTRIES", 0)  # as if 20 × N_b were too large
    assert fid(a, b)["fid"] == pytest.approx(direct, rel=1e-9)
    assert fid(b, a)["fid"] == pytest.approx(direct, rel=1e-9)


def test_trace_sqrt_product_on_singular_and_semidefinite_matrices():
    # Diagonal cases with known roots; zeros on both sides, so neither matrix is positive definite.
    s1, s2 = np.diag([4.0, 0.0, 1.0, 0.0]), np.diag([9.0, 5.0, 0.0, 0.0])
    assert trace_sqrt_product(s1, s2) == pytest.approx(6.0, abs=1e-12)
    rot = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))[0]
    assert trace_sqrt_product(rot @ s1 @ rot.T, rot @ s2 @ rot.T) == pytest.approx(6.0, abs=1e-7)
    # A rank-1 matrix against a positive definite one: Tr sqrt(v v^T S) = sqrt(v^T S v).
    v, s = np.array([1.0, 2.0, 0.0, -1.0]), np.diag([1.0, 2.0, 3.0, 4.0])
    assert trace_sqrt_product(np.outer(v, v), s) == pytest.approx(np.sqrt(v @ s @ v), rel=1e-10)


def test_matches_pytorch_fid_calculate_frechet_distance():
    fid_score = pytest.importorskip("pytorch_fid.fid_score", reason="pytorch-fid is a test extra: pip install -e .[test]")
    for na, nb, d in ((500, 600, 96), (60, 80, 96)):
        a, b = _features(na, d, 5), _features(nb, d, 6, scale=0.8, shift=0.05)
        mu1, mu2 = a.mean(0), b.mean(0)
        s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = fid_score.calculate_frechet_distance(mu1, s1, mu2, s2)
        assert fid(a, b)["fid"] == pytest.approx(reference, rel=1e-6)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-6)


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


def test_rank_deficient_case_equals_a_40_digit_computation():
    """The truth by mpmath (40 digits, nuclear norm of the centred cross product): every route is within
    1e-12 of it on covariances of rank 19 and 29 in 48 dimensions; sqrtm is off by 1.6e-8 here."""
    mpmath = pytest.importorskip("mpmath")
    a, b = _features(20, 48, 7), _features(30, 48, 8, scale=1.1, shift=0.2)
    mpmath.mp.dps = 40
    ma, mb = (mpmath.matrix(x.tolist()) for x in (a, b))
    mean = [[mpmath.fsum(m[i, j] for i in range(m.rows)) / m.rows for j in range(48)] for m in (ma, mb)]
    for m, mu in zip((ma, mb), mean):
        for i in range(m.rows):
            for j in range(48):
                m[i, j] -= mu[j]
    cross = mpmath.fsum(mpmath.svd_r(ma * mb.T, compute_uv=False)) / mpmath.sqrt(19 * 29)
    traces = [mpmath.fsum(x ** 2 for x in m) / (m.rows - 1) for m in (ma, mb)]
    truth = float(mpmath.fsum((p - q) ** 2 for p, q in zip(*mean)) + traces[0] + traces[1] - 2 * cross)
    s_a, s_b = feature_statistics(a), feature_statistics(b)
    for value in (fid(a, b)["fid"], frechet_distance(*s_a, *s_b), frechet_distance_to_features(*s_a, b)):
        assert value == pytest.approx(truth, rel=1e-12)
    assert _sqrtm_frechet(*s_a, *s_b) == pytest.approx(truth, rel=1e-6)


def test_float32_features_give_the_float64_result():
    """float32 features are converted while centring (no float64 copy first); the value is unchanged."""
    a, b = _features(300, 64, 11).astype(np.float32), _features(40, 64, 12, shift=0.3).astype(np.float32)
    for x, y in ((a, b), (a, a[:250] * 1.1)):
        assert fid(x, y)["fid"] == pytest.approx(fid(x.astype(np.float64), y.astype(np.float64))["fid"], rel=1e-12)
    mu, sigma = feature_statistics(a)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(sigma, np.cov(a.astype(np.float64), rowvar=False), rtol=1e-12, atol=1e-14)
