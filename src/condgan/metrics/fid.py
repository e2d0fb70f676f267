"""Fréchet distance between Gaussian fits of two feature sets: FID and intra-class FID.

FID (Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local Nash
equilibrium") fits a Gaussian N(mu, Sigma) to each feature set and returns

    d^2 = ||mu_1 - mu_2||^2 + Tr(Sigma_1 + Sigma_2 - 2 (Sigma_1 Sigma_2)^{1/2}).

Numerics follow pytorch-fid's `calculate_frechet_distance` (mseitzer/pytorch-fid,
`src/pytorch_fid/fid_score.py`): float64, `scipy.linalg.sqrtm` of the product; when the product is
so close to singular that the square root is not finite, `eps` is added to both diagonals and the
root is taken again; an imaginary part of the root is dropped when its diagonal is within 1e-3 of
zero and is an error otherwise. Covariances are unbiased (N - 1), as `np.cov` there.

Intra-class FID (Miyato & Koyama 2018, "cGANs with projection discriminator") is the FID
computed within each class, averaged over classes.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

from condgan.errors import ConfigError, SamplesError
from condgan.metrics import _checks
from condgan.metrics._checks import ArrayLike


def feature_statistics(feats: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of `feats` (N, D), N >= 2, in float64."""
    a = _checks.features(feats, "feats", min_rows=2)
    return a.mean(axis=0), np.cov(a, rowvar=False).reshape(a.shape[1], a.shape[1])


def frechet_distance(
    mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike, eps: float = 1e-6
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017, eq. 6).

    Args:
        mu1, mu2: means, shape (D,).
        sigma1, sigma2: covariances, shape (D, D), symmetric positive semi-definite.
        eps: added to both diagonals when sqrtm(sigma1 @ sigma2) is not finite (pytorch-fid).

    Raises:
        SamplesError: shapes disagree, or the root has a large imaginary part (the matrices are
            not covariance matrices).
    """
    m1 = np.atleast_1d(_checks.to_numpy(mu1, "mu1")).astype(np.float64)
    m2 = np.atleast_1d(_checks.to_numpy(mu2, "mu2")).astype(np.float64)
    s1 = np.atleast_2d(_checks.to_numpy(sigma1, "sigma1")).astype(np.float64)
    s2 = np.atleast_2d(_checks.to_numpy(sigma2, "sigma2")).astype(np.float64)
    d = m1.shape[0]
    for name, shape, expected in (("mu1", m1.shape, (d,)), ("mu2", m2.shape, (d,)),
                                  ("sigma1", s1.shape, (d, d)), ("sigma2", s2.shape, (d, d))):
        if shape != expected:
            raise SamplesError(f"{name}: expected shape {expected}, found {shape}")
    if eps < 0:
        raise ConfigError(f"eps: expected a value >= 0, found {eps}")

    covmean = _sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(d) * eps
        covmean = _sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise SamplesError(
                f"sigma1, sigma2: expected covariance matrices, found sqrtm(sigma1 @ sigma2) with imaginary "
                f"component {np.max(np.abs(covmean.imag)):.3g}"
            )
        covmean = covmean.real
    diff = m1 - m2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def _sqrtm(a: np.ndarray) -> np.ndarray:
    """scipy's Schur-method square root; singularity is handled by the caller, as in pytorch-fid."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        return scipy.linalg.sqrtm(a)


def fid(feats_a: ArrayLike, feats_b: ArrayLike) -> dict[str, float]:
    """FID between two feature sets (N_a, D) and (N_b, D), each with at least 2 rows.

    Returns:
        {"fid": d^2} with d^2 as in `frechet_distance`.
    """
    a = _checks.features(feats_a, "feats_a", min_rows=2)
    b = _checks.features(feats_b, "feats_b", min_rows=2)
    _checks.same_width(a, b, "feats_a", "feats_b")
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
