"""Agreement between a partition (cluster ids) and class labels.

For Self-Conditioned GAN samples (Liu et al. 2020) the conditioning labels are cluster ids, which
carry no dataset meaning; what can be measured is how well the clusters line up with the classes
that an independent classifier (the judge) sees in the samples:

- `agreement`: the share of samples whose cluster maps to their predicted class under the best
  one-to-one matching of clusters to classes (Hungarian algorithm on the cluster × class counts,
  scipy's linear_sum_assignment; with more clusters than classes the extra clusters match nothing);
- `purity`: (1/N) Σ_clusters max_class |cluster ∩ class| (Manning et al., IR book §16.3), the
  many-to-one version (several clusters may map to the same class);
- `nmi`: normalised mutual information (sklearn's, arithmetic normalisation).
"""

from __future__ import annotations

import numpy as np

from condgan.errors import SamplesError


def _counts(clusters: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The clusters × classes contingency table of two non-negative int label arrays."""
    table = np.zeros((int(clusters.max()) + 1, int(classes.max()) + 1), dtype=np.int64)
    np.add.at(table, (clusters, classes), 1)
    return table


def cluster_purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Purity of `clusters` with respect to `labels` (both int arrays of length N)."""
    return float(_counts(np.asarray(clusters), np.asarray(labels)).max(axis=1).sum() / len(labels))


def cluster_nmi(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Normalised mutual information of two partitions (sklearn, imported here: it is slow to import)."""
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(labels, clusters))


def cluster_agreement(clusters: np.ndarray, classes: np.ndarray, num_classes: int) -> dict[str, float]:
    """Agreement, purity and NMI of cluster ids against (predicted) classes, and each cluster's class.

    Keys: cluster_agreement, cluster_purity, cluster_nmi, clusters_used, and per cluster k
    "cluster/cluster_k_class" (its matched class, -1 if unmatched) and "cluster/cluster_k_share"
    (its share of the samples).
    """
    from scipy.optimize import linear_sum_assignment  # slow to import: only when matching

    clusters, classes = np.asarray(clusters, dtype=np.int64), np.asarray(classes, dtype=np.int64)
    if clusters.shape != classes.shape or clusters.ndim != 1 or len(clusters) == 0:
        raise SamplesError(f"cluster agreement: expected two label arrays of one length N >= 1, "
                           f"found shapes {clusters.shape} and {classes.shape}")
    k = int(clusters.max()) + 1
    counts = np.zeros((k, num_classes), dtype=np.int64)
    counts[:, :classes.max() + 1] = _counts(clusters, classes)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    matched = np.full(k, -1)
    matched[rows] = cols
    out = {"cluster_agreement": float(counts[rows, cols].sum() / len(clusters)),
           "cluster_purity": cluster_purity(classes, clusters),
           "cluster_nmi": cluster_nmi(classes, clusters),
           "clusters_used": float((counts.sum(1) > 0).sum())}
    for c in range(k):
        out[f"cluster/cluster_{c}_class"] = float(matched[c])
        out[f"cluster/cluster_{c}_share"] = float(counts[c].sum() / len(clusters))
    return out
