"""Fréchet distance between Gaussian fits of two feature sets: FID and intra-class FID.

FID (Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local Nash
equilibrium", eq. 6) fits a Gaussian N(mu, Sigma) to each feature set and returns

    d^2 = ||mu_1 - mu_2||^2 + Tr(Sigma_1) + Tr(Sigma_2) - 2 Tr((Sigma_1 Sigma_2)^{1/2}).

Covariances are unbiased (N - 1), float64, as `np.cov` in pytorch-fid's `calculate_frechet_distance`
(mseitzer/pytorch-fid, `src/pytorch_fid/fid_score.py`), whose value this module reproduces.

The trace of the square root is not computed with a matrix square root (pytorch-fid's
`scipy.linalg.sqrtm`, ~20 s at 2048 dimensions on 2 cores) but exactly from a factorisation. With
Sigma_1 = F_1 F_1^T and Sigma_2 = F_2 F_2^T for any factors F_1 (D×r_1), F_2 (D×r_2), the non-zero
eigenvalues of Sigma_1 Sigma_2 = F_1 (F_1^T F_2 F_2^T) equal those of (F_1^T F_2)(F_1^T F_2)^T (XY
and YX share their non-zero eigenvalues), so they are real and >= 0 and

    Tr((Sigma_1 Sigma_2)^{1/2}) = sum of the singular values of F_1^T F_2  (its nuclear norm).

The factors used:

- of a covariance matrix (`covariance_factor`): its Cholesky factor L (lower, D×D), or, when the
  matrix is not numerically positive definite (fewer samples than dimensions), LAPACK's pivoted
  Cholesky factor P L_r of its numerical rank r (`dpstrf`, which stops at pivots below D·eps·max
  diagonal);
- of a sample set of N rows: its centred samples C^T / sqrt(N - 1), without forming the D×D
  covariance, reduced to N - 1 rows by one Householder reflection (`_sample_factor_rows`) because
  centring leaves C with rank N - 1. `fid` uses these when one set has fewer rows than dimensions
  (so per class in intra-FID): F_1^T F_2 is then an (N_1 - 1)×(N_2 - 1) matrix.

The singular values of K = F_1^T F_2 (r_1×r_2) are taken as the square roots of the eigenvalues
of its Gram matrix on the smaller side (K K^T if r_1 <= r_2, else K^T K), a symmetric eigenvalue
solve that LAPACK does ~3× faster than a singular value decomposition at D = 2048. The smaller side
has no zero eigenvalues by construction: factors of singular covariances have only as many columns
as the covariance's numerical rank, and a set of fewer samples than dimensions enters through its
samples. Rounding can still leave an eigenvalue slightly negative; it is clamped to 0.

At 2048 dimensions and 10k samples a side the cost is two covariances (one symmetric rank-k update
each), two Cholesky factorisations, one triangular product, one Gram matrix and one symmetric
eigenvalue solve. No eps is added to the diagonals (pytorch-fid's fallback when sqrtm fails):
nothing here fails on singular matrices. tests/test_metrics_fid.py checks every route against
scipy's sqrtm, pytorch-fid's function and a 40-digit computation, also on rank-deficient
covariances.

Intra-class FID (Miyato & Koyama 2018, "cGANs with projection discriminator") is the FID
computed within each class, averaged over classes.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.linalg import blas, lapack

from condgan.errors import SamplesError
from condgan.metrics import _checks
from condgan.metrics._checks import ArrayLike

# Two sample sets go through the nuclear norm of their n_1×n_2 cross product when one set has fewer
# rows than dimensions and the product has at most this many entries (256 MiB in float64);
# otherwise through covariances.
MAX_CROSS_ENTRIES = 1 << 25


def _centred(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), centred float64 copy (N, D)) of a finite float32 or float64 matrix, in one pass
    (float32 input is converted while subtracting; the mean is accumulated in float64)."""
    mu = feats.mean(axis=0, dtype=np.float64)
    return mu, np.subtract(feats, mu, dtype=np.float64)


def _sample_factor_rows(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), Y (N-1, D)) with Y^T Y = C^T C for the centred samples C: Y^T / sqrt(N - 1) is a
    factor of the covariance with N - 1 columns, its rank, so no Gram matrix built from it has the
    structural zero eigenvalue that centring puts into C (C's N rows sum to 0).

    With u = 1/sqrt(N) and the Householder reflection H (H u = e_0), C^T C = (H C)[1:]^T (H C)[1:]
    because u^T C = 0; row by row (H C)_i = C_i + C_0 / (sqrt(N) - 1), i >= 1.
    """
    mu, c = _centred(feats)
    return mu, c[1:] + c[0] / (np.sqrt(c.shape[0]) - 1.0)


def feature_statistics(feats: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of `feats` (N, D), N >= 2, in float64 (= np.cov)."""
    a = _checks.features(feats, "feats", min_rows=2, keep_float32=True)
    mu, c = _centred(a)
    return mu, (c.T @ c) / (a.shape[0] - 1)  # numpy computes c.T @ c as one symmetric rank-k update


def _cholesky(sigma: np.ndarray) -> np.ndarray | None:
    """Lower Cholesky factor, or None when sigma is not numerically positive definite."""
    try:
        return scipy.linalg.cholesky(sigma, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return None


def _pivoted_factor(sigma: np.ndarray) -> np.ndarray:
    """P L_r (D×r) of LAPACK's pivoted Cholesky P^T sigma P = L L^T, r the numerical rank."""
    low, piv, rank, info = lapack.dpstrf(sigma, lower=1)
    if info < 0:
        raise SamplesError(f"sigma: pivoted Cholesky rejected argument {-info}")
    factor = np.empty((sigma.shape[0], rank))
    factor[piv - 1] = np.tril(low)[:, :rank]  # piv is 1-based
    return factor


def covariance_factor(sigma: np.ndarray) -> np.ndarray:
    """F (D×r) with F F^T = sigma for a symmetric positive semi-definite float64 (D, D) matrix.

    The lower Cholesky factor (r = D) when sigma is numerically positive definite, else the pivoted
    Cholesky factor of its numerical rank r (LAPACK dpstrf, default tolerance D·eps·max diagonal).
    """
    low = _cholesky(sigma)
    return low if low is not None else _pivoted_factor(sigma)


def _nuclear_norm(k: np.ndarray) -> float:
    """Sum of the singular values of k: square roots of the eigenvalues of its smaller Gram matrix."""
    gram = k @ k.T if k.shape[0] <= k.shape[1] else k.T @ k  # numpy: one symmetric rank-k update
    w = scipy.linalg.eigvalsh(gram, check_finite=False)
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((sigma1 sigma2)^{1/2}) for symmetric positive semi-definite float64 (D, D) matrices:
    the nuclear norm of F_1^T F_2 with F_i = `covariance_factor(sigma_i)` (module docstring)."""
    l1, l2 = _cholesky(sigma1), _cholesky(sigma2)
    if l1 is not None and l2 is not None:
        return _nuclear_norm(blas.dtrmm(1.0, l1, l2, lower=1, trans_a=1))  # L_1^T L_2, triangular
    f1 = l1 if l1 is not None else _pivoted_factor(sigma1)
    f2 = l2 if l2 is not None else _pivoted_factor(sigma2)
    return _nuclear_norm(f1.T @ f2)


def _as_gaussian(mu: ArrayLike, sigma: ArrayLike, name_mu: str, name_sigma: str,
                 d: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    m = np.atleast_1d(_checks.to_numpy(mu, name_mu)).astype(np.float64)
    s = np.atleast_2d(_checks.to_numpy(sigma, name_sigma)).astype(np.float64)
    d = m.shape[0] if d is None else d
    for name, shape, expected in ((name_mu, m.shape, (d,)), (name_sigma, s.shape, (d, d))):
        if shape != expected:
            raise SamplesError(f"{name}: expected shape {expected}, found {shape}")
    if not (np.isfinite(m).all() and np.isfinite(s).all()):
        raise SamplesError(f"{name_mu}, {name_sigma}: expected finite values, found NaN or infinity")
    return m, s


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017, eq. 6).

    Args:
        mu1, mu2: means, shape (D,).
        sigma1, sigma2: covariances, shape (D, D), symmetric positive semi-definite (singular is fine).

    Raises:
        SamplesError: shapes disagree or values are not finite.
    """
    m1, s1 = _as_gaussian(mu1, sigma1, "mu1", "sigma1")
    m2, s2 = _as_gaussian(mu2, sigma2, "mu2", "sigma2", m1.shape[0])
    diff = m1 - m2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2))


def frechet_distance_to_features(mu1: ArrayLike, sigma1: ArrayLike, feats: ArrayLike) -> float:
    """Fréchet distance between N(mu1, sigma1) (e.g. stored reference statistics) and the Gaussian fit
    of `feats` (N, D), N >= 2: from feats' covariance when N >= D, else from its centred samples as
    the factor (module docstring), never forming a singular D×D covariance."""
    b = _checks.features(feats, "feats", min_rows=2, keep_float32=True)
    m1, s1 = _as_gaussian(mu1, sigma1, "mu1", "sigma1", b.shape[1])
    n, d = b.shape
    if n >= d:
        return frechet_distance(m1, s1, *feature_statistics(b))
    m2, y = _sample_factor_rows(b)
    diff = m1 - m2
    tr_sqrt = _nuclear_norm(y @ covariance_factor(s1)) / np.sqrt(n - 1)  # F_2 = y^T / sqrt(n - 1)
    return float(diff @ diff + np.trace(s1) + (y * y).sum() / (n - 1) - 2.0 * tr_sqrt)


def _fid_from_samples(a: np.ndarray, b: np.ndarray) -> float:
    """FID of two sample sets through the nuclear norm of their centred cross product."""
    mu1, ca = _sample_factor_rows(a)
    mu2, cb = _sample_factor_rows(b)
    scale = np.sqrt((a.shape[0] - 1) * (b.shape[0] - 1))
    tr_sqrt = _nuclear_norm(ca @ cb.T) / scale
    diff = mu1 - mu2
    return float(diff @ diff + (ca * ca).sum() / (a.shape[0] - 1) + (cb * cb).sum() / (b.shape[0] - 1)
                 - 2.0 * tr_sqrt)


def fid(feats_a: ArrayLike, feats_b: ArrayLike) -> dict[str, float]:
    """FID between two feature sets (N_a, D) and (N_b, D), each with at least 2 rows.

    Returns:
        {"fid": d^2} with d^2 as in `frechet_distance`; sets with fewer rows than dimensions go
        through their samples (module docstring), others through their covariances.
    """
    a = _checks.features(feats_a, "feats_a", min_rows=2, keep_float32=True)
    b = _checks.features(feats_b, "feats_b", min_rows=2, keep_float32=True)
    _checks.same_width(a, b, "feats_a", "feats_b")
    (na, d), nb = a.shape, b.shape[0]
    if min(na, nb) < d and na * nb <= MAX_CROSS_ENTRIES:
        return {"fid": _fid_from_samples(a, b)}
    if na < d:
        return {"fid": frechet_distance_to_features(*feature_statistics(b), a)}
    if nb < d:
        return {"fid": frechet_distance_to_features(*feature_statistics(a), b)}
    return {"fid": frechet_distance(*feature_statistics(a), *feature_statistics(b))}


def intra_class_fid(
    feats_a: ArrayLike, labels_a: ArrayLike, feats_b: ArrayLike, labels_b: ArrayLike
) -> dict[str, float]:
    """FID within each class (Miyato & Koyama 2018), and its mean over classes.

    The classes are the union of the labels of both sets; every class needs at least 2 samples in
    each set.

    Returns:
        {"intra_fid_mean": mean over classes, "intra_fid/class_{k}": FID of class k, ...}.
    """
    a = _checks.features(feats_a, "feats_a", min_rows=2, keep_float32=True)
    b = _checks.features(feats_b, "feats_b", min_rows=2, keep_float32=True)
    _checks.same_width(a, b, "feats_a", "feats_b")
    ya = _checks.labels(labels_a, a.shape[0], "labels_a")
    yb = _checks.labels(labels_b, b.shape[0], "labels_b")
    out: dict[str, float] = {}
    for k in np.union1d(ya, yb):
        for name, y in (("labels_a", ya), ("labels_b", yb)):
            count = int((y == k).sum())
            if count < 2:
                raise SamplesError(f"{name}: class {k} needs at least 2 samples for a covariance, found {count}")
        out[f"intra_fid/class_{k}"] = fid(a[ya == k], b[yb == k])["fid"]
    return {"intra_fid_mean": float(np.mean(list(out.values()))), **out}
