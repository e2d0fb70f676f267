"""Reference feature statistics: written once per real set, read back for FID and intra-FID.

A statistics file is an `.npz` of plain arrays (read with `np.load(allow_pickle=False)`, written
atomically). Its first two keys are the ones pytorch-fid (`fid_score.py`: `f['mu'][:],
f['sigma'][:]`) and clean-fid (`fid.py`: `stats["mu"], stats["sigma"]`) read, so those tools can
use condgan's files; condgan adds metadata and per-class statistics:

    mu                     (D,) float64     mean of the features
    sigma                  (D, D) float64   unbiased covariance (N - 1), as np.cov
    condgan_stats_version  () int64         FORMAT_VERSION
    extractor_id           () str           `Extractor.id` of the features (weights hash included)
    feature_dim            () int64         D
    num_samples            () int64         N
    dataset, split         () str           where the features came from ("" when unknown)
    classes                (K,) int64       class labels, ascending           } only when labels
    class_counts           (K,) int64       samples per class                 } were given;
    class_mu               (K, D) float64   per-class means                   } intra-FID needs
    class_sigma_triu       (K, D(D+1)/2) float64  per-class unbiased          } them
                                            covariances, upper triangles row by row (np.triu_indices)

Memory: full per-class covariances would take K·D²·8 bytes, 335 MB for 10 classes at D = 2048. Only
their upper triangles are stored, which halves that (168 MB) without rounding. float32 would halve
it too but is not used: per-class covariances are singular whenever a class has fewer samples than
dimensions (1,000 test images per class at D = 2048), and float32 rounding turns their ~D - N zero
eigenvalues into noise of ~1e-7·lambda_max whose square roots enter Tr((Sigma_1 Sigma_2)^{1/2})
(4e-5 relative error at D = 64 in the tests, more at D = 2048). One class at a time is expanded to
a full matrix when used (`FeatureStats.class_sigma`).

Foreign files (pytorch-fid's `--save-stats`, clean-fid's custom statistics) hold `mu` and `sigma`
only: nothing says which network computed them, and numbers from different extractors are never
compared (docs/design.md). Reading one therefore needs the user's statement `foreign=`: either a
convention name from `CONVENTIONS` or an extractor id. "pytorch-fid" (and clean-fid's
"legacy_pytorch" mode, which runs pytorch-fid's network) means condgan's FID Inception with the
published weights `pt_inception-2015-12-05-6726825d.pth`, so it matches an extractor whose id
starts with `inception-v3-fid:6726825d` (the first hex digits of that file's sha256). clean-fid's
default "clean" mode (and "legacy_tensorflow") resizes with PIL bicubic filtering (resp. TF's
resize) in front of the TF graph; no condgan extractor computes those features, so such files can be
read but are refused for condgan features.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from condgan.errors import SamplesError, StatsError
from condgan.metrics import _checks
from condgan.metrics.fid import feature_statistics, frechet_distance_to_features
from condgan.metrics._checks import ArrayLike
from condgan.io import atomic_write

FORMAT_VERSION = 1
POOLED_KEYS = ("mu", "sigma")
CLASS_KEYS = ("classes", "class_counts", "class_mu", "class_sigma_triu")


@dataclass(frozen=True)
class Convention:
    """A foreign statistics format: which extractor ids it is valid for, and why."""

    extractor_prefix: str
    description: str


_PYTORCH_FID = Convention(
    "inception-v3-fid:6726825d",
    "pytorch-fid's InceptionV3 pool3 with pt_inception-2015-12-05-6726825d.pth, bilinear resize",
)
CONVENTIONS: dict[str, Convention] = {
    "pytorch-fid": _PYTORCH_FID,
    "clean-fid-legacy-pytorch": _PYTORCH_FID,
    "clean-fid": Convention("clean-fid:clean", "clean-fid mode 'clean': PIL bicubic resize, TF Inception graph"),
    "clean-fid-legacy-tensorflow": Convention("clean-fid:legacy_tensorflow",
                                              "clean-fid mode 'legacy_tensorflow': TF resize and graph"),
}


@dataclass(frozen=True)
class FeatureStats:
    """Gaussian statistics of one feature set, pooled and (optionally) per class.

    Attributes:
        mu, sigma: float64 mean (D,) and unbiased covariance (D, D).
        extractor_id: the extractor the features came from; for a foreign file, what the user stated.
        source: "condgan" for condgan's own files and freshly computed statistics, else the
            `CONVENTIONS` name or "declared" (an extractor id the user gave for a foreign file).
        num_samples: N, or None when a foreign file does not say.
        dataset, split: provenance ("" when unknown).
        classes, class_counts, class_mu, class_sigma_triu: per-class statistics (see the module
            docstring), or None; `class_sigma(i)` is the full covariance of the i-th class.
    """

    mu: np.ndarray
    sigma: np.ndarray
    extractor_id: str
    source: str = "condgan"
    num_samples: int | None = None
    dataset: str = ""
    split: str = ""
    classes: np.ndarray | None = None
    class_counts: np.ndarray | None = None
    class_mu: np.ndarray | None = None
    class_sigma_triu: np.ndarray | None = None

    @property
    def feature_dim(self) -> int:
        return int(self.mu.shape[0])

    @property
    def has_classes(self) -> bool:
        return self.classes is not None

    def class_sigma(self, i: int) -> np.ndarray:
        """Full float64 (D, D) covariance of the i-th class (of `classes`)."""
        return unpack_symmetric(self.class_sigma_triu[i], self.feature_dim)

    def matches(self, extractor_id: str) -> bool:
        """Whether features of `extractor_id` may be compared with these statistics."""
        if self.source in CONVENTIONS:
            return extractor_id.startswith(CONVENTIONS[self.source].extractor_prefix)
        return extractor_id == self.extractor_id

    def check_extractor(self, extractor_id: str, where: str) -> None:
        """Raise `StatsError` naming `where` unless `matches(extractor_id)`."""
        if not self.matches(extractor_id):
            stated = f" ({self.source}: {CONVENTIONS[self.source].description})" if self.source in CONVENTIONS else ""
            raise StatsError(
                f"{where}: statistics of extractor {self.extractor_id!r}{stated}, expected {extractor_id!r} "
                f"(the extractor in use); numbers from different extractors are not comparable"
            )


def pack_symmetric(s: np.ndarray) -> np.ndarray:
    """Upper triangle of a symmetric (D, D) matrix, row by row: D(D+1)/2 values."""
    return s[np.triu_indices(s.shape[0])]


def unpack_symmetric(packed: np.ndarray, d: int) -> np.ndarray:
    """The symmetric (D, D) float64 matrix whose upper triangle `pack_symmetric` gave."""
    s = np.empty((d, d))
    rows, cols = np.triu_indices(d)
    s[rows, cols] = packed
    s[cols, rows] = packed
    return s


def compute_stats(feats: ArrayLike, labels: ArrayLike | None = None, *, extractor_id: str, dataset: str = "",
                  split: str = "") -> FeatureStats:
    """Statistics of features (N, D) and, when `labels` (N,) are given, of each class (>= 2 samples each)."""
    a = _checks.features(feats, "feats", min_rows=2, keep_float32=True)
    mu, sigma = feature_statistics(a)
    per_class: dict[str, np.ndarray | None] = dict.fromkeys(CLASS_KEYS)
    if labels is not None:
        y = _checks.labels(labels, a.shape[0], "labels")
        classes, counts = np.unique(y, return_counts=True)
        if counts.min() < 2:
            k = classes[counts.argmin()]
            raise SamplesError(f"labels: class {k} needs at least 2 samples for a covariance, found {counts.min()}")
        class_mu = np.empty((len(classes), a.shape[1]))
        class_sigma = np.empty((len(classes), a.shape[1] * (a.shape[1] + 1) // 2))
        for i, k in enumerate(classes):
            class_mu[i], sigma_k = feature_statistics(a[y == k])
            class_sigma[i] = pack_symmetric(sigma_k)
        per_class = dict(classes=classes, class_counts=counts, class_mu=class_mu, class_sigma_triu=class_sigma)
    return FeatureStats(mu, sigma, extractor_id, "condgan", a.shape[0], dataset, split, **per_class)


def dataset_stats(data, split: str, extractor, *, cache_dir: Path | None = None, use_cache: bool = True,
                  progress: bool = True, per_class: bool = True) -> FeatureStats:
    """Statistics of a real set (`condgan.data.LabelledData`) through `extractor`, with per-class
    statistics of its labels unless `per_class=False`. Features come from (and go to) the feature
    cache of `condgan.metrics.features`."""
    from condgan.metrics.features import real_features

    feats, _, _ = real_features(data, split, extractor, cache_dir=cache_dir, use_cache=use_cache, progress=progress)
    return compute_stats(feats, data.y.numpy() if per_class else None, extractor_id=extractor.id,
                         dataset=data.name, split=split)


def save_stats(stats: FeatureStats, path: str | Path) -> Path:
    """Write `stats` to `path` (.npz, see the module docstring), atomically; returns the path."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {
        "mu": np.asarray(stats.mu, dtype=np.float64),
        "sigma": np.asarray(stats.sigma, dtype=np.float64),
        "condgan_stats_version": np.int64(FORMAT_VERSION),
        "extractor_id": np.str_(stats.extractor_id),
        "feature_dim": np.int64(stats.feature_dim),
        "num_samples": np.int64(-1 if stats.num_samples is None else stats.num_samples),
        "dataset": np.str_(stats.dataset),
        "split": np.str_(stats.split),
    }
    if stats.has_classes:
        arrays.update(classes=stats.classes.astype(np.int64), class_counts=stats.class_counts.astype(np.int64),
                      class_mu=stats.class_mu.astype(np.float64),
                      class_sigma_triu=stats.class_sigma_triu.astype(np.float64))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a path
            np.savez(fh, **arrays)

    atomic_write(path, write)
    return path


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an .npz, or StatsError in one line for anything that is not a readable, pickle-free .npz."""
    if not path.is_file():
        raise StatsError(f"{path}: no such statistics file")
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise StatsError(f"{path}: expected an .npz archive of arrays, found a single .npy array")
        with f:
            return {key: f[key] for key in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise StatsError(f"{path}: not a readable .npz statistics file ({reason})") from None


def _scalar(arrays: dict[str, np.ndarray], key: str, path: Path, kind: str):
    value = arrays[key]
    if value.shape != () or value.dtype.kind not in kind:
        raise StatsError(f"{path}: {key}: expected a scalar of kind {kind!r}, found dtype {value.dtype} "
                         f"shape {value.shape}")
    return value.item()


def _check_array(value: np.ndarray, key: str, shape: tuple[int, ...], path: Path) -> np.ndarray:
    if value.shape != shape or value.dtype.kind not in "fiu":
        raise StatsError(f"{path}: {key}: expected a numeric array of shape {shape}, found dtype {value.dtype} "
                         f"shape {value.shape}")
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        raise StatsError(f"{path}: {key}: expected finite values, found NaN or infinity")
    return value


def load_stats(path: str | Path, *, extractor_id: str | None = None, feature_dim: int | None = None,
               foreign: str | None = None) -> FeatureStats:
    """Read a statistics file: condgan's own, pytorch-fid's or clean-fid's (`mu`, `sigma`).

    Args:
        path: the .npz file.
        extractor_id: the extractor whose features will be compared with these statistics; a file
            of another extractor is refused. None reads without that check.
        feature_dim: expected D (e.g. 2048); None skips the check.
        foreign: for a file without condgan metadata, which extractor computed it: a name from
            `CONVENTIONS` ("pytorch-fid", "clean-fid", ...) or an extractor id. Ignored for
            condgan's own files, which carry their extractor id.

    Raises:
        StatsError: in one line naming the file: unreadable or not an .npz, pickled arrays, missing
            or malformed keys, unknown format version, foreign file without `foreign`, extractor
            or feature size other than expected.
    """
    path = Path(path)
    arrays = _read_arrays(path)
    missing = [k for k in POOLED_KEYS if k not in arrays]
    if missing:
        raise StatsError(f"{path}: expected keys mu and sigma (pytorch-fid/clean-fid statistics), "
                         f"found {sorted(arrays) or 'no arrays'}")
    mu = arrays["mu"]
    if mu.ndim != 1:
        raise StatsError(f"{path}: mu: expected a vector (D,), found shape {mu.shape}")
    d = mu.shape[0]
    mu = _check_array(mu, "mu", (d,), path).astype(np.float64)
    sigma = _check_array(arrays["sigma"], "sigma", (d, d), path).astype(np.float64)

    if "condgan_stats_version" in arrays:
        version = _scalar(arrays, "condgan_stats_version", path, "iu")
        if version != FORMAT_VERSION:
            raise StatsError(f"{path}: condgan statistics format version {FORMAT_VERSION} expected, found {version}")
        for key in ("extractor_id", "feature_dim", "num_samples", "dataset", "split"):
            if key not in arrays:
                raise StatsError(f"{path}: condgan statistics without key {key!r}")
        if _scalar(arrays, "feature_dim", path, "iu") != d:
            raise StatsError(f"{path}: feature_dim says {arrays['feature_dim'].item()}, mu has {d} entries")
        n = _scalar(arrays, "num_samples", path, "iu")
        per_class: dict[str, np.ndarray | None] = dict.fromkeys(CLASS_KEYS)
        if "classes" in arrays:
            k = arrays["classes"].shape[0] if arrays["classes"].ndim == 1 else -1
            shapes = {"classes": (k,), "class_counts": (k,), "class_mu": (k, d),
                      "class_sigma_triu": (k, d * (d + 1) // 2)}
            for key, shape in shapes.items():
                if key not in arrays:
                    raise StatsError(f"{path}: per-class statistics without key {key!r}")
                per_class[key] = _check_array(arrays[key], key, shape, path)
            per_class["classes"] = per_class["classes"].astype(np.int64)
            per_class["class_counts"] = per_class["class_counts"].astype(np.int64)
        stats = FeatureStats(mu, sigma, _scalar(arrays, "extractor_id", path, "U"), "condgan",
                             None if n < 0 else int(n), _scalar(arrays, "dataset", path, "U"),
                             _scalar(arrays, "split", path, "U"), **per_class)
    else:
        if foreign is None:
            raise StatsError(
                f"{path}: a foreign statistics file (mu and sigma, no extractor id): say which extractor computed "
                f"it, one of {', '.join(CONVENTIONS)} or an extractor id"
            )
        if foreign in CONVENTIONS:
            stats = FeatureStats(mu, sigma, CONVENTIONS[foreign].extractor_prefix, foreign)
        else:
            stats = FeatureStats(mu, sigma, foreign, "declared")
    if feature_dim is not None and d != feature_dim:
        raise StatsError(f"{path}: statistics of {d}-d features, expected {feature_dim}-d "
                         f"(extractor {extractor_id or 'in use'})")
    if extractor_id is not None:
        stats.check_extractor(extractor_id, str(path))
    return stats


def fid_from_stats(stats: FeatureStats, gen_feats: ArrayLike, extractor_id: str) -> dict[str, float]:
    """FID between stored statistics and generated features (N, D) of `extractor_id`.

    Equals `condgan.metrics.fid.fid(real_feats, gen_feats)` for statistics of `real_feats`.

    Raises:
        StatsError: the statistics belong to another extractor or feature size.
    """
    stats.check_extractor(extractor_id, "fid_from_stats")
    b = _checks.features(gen_feats, "gen_feats", min_rows=2, keep_float32=True)
    if b.shape[1] != stats.feature_dim:
        raise StatsError(f"fid_from_stats: statistics of {stats.feature_dim}-d features, "
                         f"gen_feats has {b.shape[1]}")
    return {"fid": frechet_distance_to_features(stats.mu, stats.sigma, b)}


def intra_fid_from_stats(stats: FeatureStats, gen_feats: ArrayLike, gen_labels: ArrayLike,
                         extractor_id: str) -> dict[str, float]:
    """Intra-class FID between stored per-class statistics and labelled generated features.

    Same keys as `condgan.metrics.fid.intra_class_fid`; every class of the statistics needs at
    least 2 generated samples, and generated labels outside those classes are an error.

    Raises:
        StatsError: no per-class statistics, another extractor or feature size.
        SamplesError: a class without enough generated samples, or unknown labels.
    """
    stats.check_extractor(extractor_id, "intra_fid_from_stats")
    if not stats.has_classes:
        raise StatsError("intra_fid_from_stats: the statistics hold no per-class statistics "
                         "(written without labels, or a foreign file)")
    b = _checks.features(gen_feats, "gen_feats", min_rows=2, keep_float32=True)
    if b.shape[1] != stats.feature_dim:
        raise StatsError(f"intra_fid_from_stats: statistics of {stats.feature_dim}-d features, "
                         f"gen_feats has {b.shape[1]}")
    y = _checks.labels(gen_labels, b.shape[0], "gen_labels")
    unknown = np.setdiff1d(y, stats.classes)
    if unknown.size:
        raise SamplesError(f"gen_labels: expected classes {stats.classes.tolist()} of the statistics, "
                           f"found {unknown.tolist()}")
    out: dict[str, float] = {}
    for i, k in enumerate(stats.classes):
        rows = b[y == k]
        if len(rows) < 2:
            raise SamplesError(f"gen_labels: class {k} needs at least 2 samples for a covariance, found {len(rows)}")
        out[f"intra_fid/class_{k}"] = frechet_distance_to_features(
            stats.class_mu[i], stats.class_sigma(i), rows)
    return {"intra_fid_mean": float(np.mean(list(out.values()))), **out}
