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
- of a sample set of N rows: its centred samples, C^T / sqrt(N - 1), without forming the D×D
  covariance. `fid` uses these when one set has fewer rows than dimensions (so per class in
  intra-FID): F_1^T F_2 is then the N_1×N_2 matrix C_1 C_2^T / sqrt((N_1 - 1)(N_2 - 1)).

At 2048 dimensions and 10k samples a side the cost is the two covariances (one symmetric rank-k
update each), two Cholesky factorisations, one D×D product and one singular-value solve. Singular
values carry an absolute error of eps·sigma_max, so singular and near-singular covariances are
handled without the sqrt(eps·lambda_max) error per zero eigenvalue that the square roots of computed
eigenvalues of Sigma_1 Sigma_2 would add, and no eps is added to the diagonals (pytorch-fid's
fallback when sqrtm fails). tests/test_metrics_fid.py checks every route against scipy's sqrtm
and pytorch-fid's function, also on rank-deficient covariances.

Intra-class FID (Miyato & Koyama 2018, "cGANs with projection discriminator") is the FID
computed within each class, averaged over classes.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.linalg import lapack

from condgan.errors import SamplesError
from condgan.metrics import _checks
from condgan.metrics._checks import ArrayLike

# Two sample sets go through the nuclear norm of their n_1×n_2 cross product when one set has fewer
# rows than dimensions and the product has at most this many entries (256 MiB in float64);
# otherwise through covariances.
MAX_CROSS_ENTRIES = 1 << 25


def _centred(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), centred float64 copy (N, D)) of a finite float64 matrix."""
    mu = feats.mean(axis=0)
    return mu, feats - mu


def feature_statistics(feats: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of `feats` (N, D), N >= 2, in float64 (= np.cov)."""
    a = _checks.features(feats, "feats", min_rows=2)
    mu, c = _centred(a)
    return mu, (c.T @ c) / (a.shape[0] - 1)  # numpy computes c.T @ c as one symmetric rank-k update


def covariance_factor(sigma: np.ndarray) -> np.ndarray:
    """F (D×r) with F F^T = sigma for a symmetric positive semi-definite float64 (D, D) matrix.

    The lower Cholesky factor (r = D) when sigma is numerically positive definite, else the pivoted
    Cholesky factor P L_r of its numerical rank r (LAPACK dpstrf with its default tolerance).
    """
    try:
        return scipy.linalg.cholesky(sigma, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        pass
    low, piv, rank, info = lapack.dpstrf(sigma, lower=1)
    if info < 0:
        raise SamplesError(f"sigma: pivoted Cholesky rejected argument {-info}")
    factor = np.empty((sigma.shape[0], rank))
    factor[piv - 1] = np.tril(low)[:, :rank]  # P^T sigma P = L L^T, piv is 1-based
    return factor


def _nuclear_norm(m: np.ndarray) -> float:
    """Sum of the singular values of m."""
    return float(scipy.linalg.svdvals(m, check_finite=False).sum())


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((sigma1 sigma2)^{1/2}) for symmetric positive semi-definite float64 (D, D) matrices:
    the nuclear norm of F_1^T F_2 with F_i = `covariance_factor(sigma_i)` (module docstring)."""
    return _nuclear_norm(covariance_factor(sigma1).T @ covariance_factor(sigma2))


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
    b = _checks.features(feats, "feats", min_rows=2)
    m1, s1 = _as_gaussian(mu1, sigma1, "mu1", "sigma1", b.shape[1])
    n, d = b.shape
    if n >= d:
        return frechet_distance(m1, s1, *feature_statistics(b))
    m2, c = _centred(b)
    diff = m1 - m2
    tr_sqrt = _nuclear_norm(c @ covariance_factor(s1)) / np.sqrt(n - 1)  # F_2 = c^T / sqrt(n - 1)
    return float(diff @ diff + np.trace(s1) + (c * c).sum() / (n - 1) - 2.0 * tr_sqrt)


def _fid_from_samples(a: np.ndarray, b: np.ndarray) -> float:
    """FID of two float64 sample sets through the nuclear norm of their centred cross product."""
    mu1, ca = _centred(a)
    mu2, cb = _centred(b)
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
    a = _checks.features(feats_a, "feats_a", min_rows=2)
    b = _checks.features(feats_b, "feats_b", min_rows=2)
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
    a = _checks.features(feats_a, "feats_a", min_rows=2)
    b = _checks.features(feats_b, "feats_b", min_rows=2)
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
