"""Self-Conditioned GAN (Liu, Wang, Torralba, Isola 2020, "Diverse Image Generation via
Self-Conditioned GANs", CVPR; official code: stevliu/self-conditioned-gan).

A conditional G and D over k pseudo-classes that come from the data itself (paper §3):
- the partition π of the real training set is k-means on D's feature layer, D.features(x);
- every `recluster_every` steps the partition is recomputed with the current D (§3.2), k-means
  starting from the centroids of the *previous* partition measured in the *new* feature space
  (the official clusterers/selfcondgan.py does the same; the first clustering uses k-means++);
- new clusters are matched to old ones by the Hungarian algorithm on their overlap (maximum
  total agreement), so cluster c keeps meaning the same mode for G and D across re-clusterings;
- fake samples are conditioned on clusters drawn in proportion to the cluster sizes (§3.1: p(c)
  is the empirical cluster distribution);
- the loss is the conditional GAN loss: D minimises BCE(D(x, π(x)), 1) + BCE(D(G(z, c), c), 0),
  G minimises −BCE(D(G(z, c), c), 0) (minimax) or BCE(D(G(z, c), c), 1) (non_saturating, the
  official code's "standard" loss).
True labels are never read for training: a real sample's condition is `assignment[real_idx]`.
They are only compared with the partition, for the purity/NMI diagnostics that are logged.
The source terms follow `method.d_source_loss`/`g_source_loss` (hinge: methods/gan.py); every image D
sees passes through the recipe's DiffAugment, and D's loss gains its R1 term (methods/recipe.py). The k-means
features of a re-clustering are those of unaugmented images.

Conditional D: the logit is D.source(h) + D.classes(h)[c] with h = D.features(x), i.e. a
projection discriminator (Miyato & Koyama 2018, eq. 3: ψ(h) + y·Vh, with V = the class head's
weights). The official code uses the class-specific logit alone ("mask" conditioning); the shared
term keeps all of D's parameters in use and gives a freshly re-clustered class a sensible start.

Deviations from the official code, for cost on small machines: k-means is fitted once per
re-clustering on a fixed random subset (`cluster_fit_size`; the official 2D code also clusters a
fixed set of 10,000 points) with one k-means++ initialisation rather than ten, and every training
point is then assigned to its nearest centre; the assignment of the whole training set is a
buffer (saved in checkpoints), looked up by index, rather than re-predicted for every batch.

State (all buffers, so checkpoints carry it and a resumed run equals an uninterrupted one):
`assignment` (cluster of each training sample, −1 before the first clustering) and
`cluster_sizes` (its histogram, the weights of `sample_classes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from condgan.config import Config, register_method_config, setting
from condgan.errors import ConfigError
from condgan.methods.base import Method, Phase, StepInputs
from condgan.methods.gan import SourceLossConfig, d_source_loss, g_source_loss
from condgan.metrics.clusters import cluster_nmi, cluster_purity

if TYPE_CHECKING:
    from sklearn.cluster import KMeans

FEATURE_BATCH = 1000  # samples per forward pass when extracting D's features for k-means
ASSIGN_CHUNK = 5000  # samples whose features are held at once when assigning the training set to clusters
_STREAM_CLUSTER = 4  # seed stream of the k-means draws (the loop uses 0–3)


@register_method_config
@dataclass(frozen=True)
class SelfCondConfig(SourceLossConfig):
    name: str = "selfcond"
    num_clusters: int = setting(10, at_least=2)  # k pseudo-classes
    recluster_every: int = setting(1000, positive=True)  # steps between re-clusterings
    # k-means is fitted on a fixed random subset of this many training points
    cluster_fit_size: int = setting(10000, positive=True)


def match_clusters(new: np.ndarray, old: np.ndarray, k: int) -> np.ndarray:
    """Permutation `perm` (perm[new label] = old label) maximising agreement between two partitions.

    Hungarian algorithm (scipy's linear_sum_assignment) on the k×k overlap counts
    M[i, j] = #{n : new_n = i, old_n = j}, maximised as in the official hungarian_match.
    """
    from scipy.optimize import linear_sum_assignment  # slow to import: only when matching

    overlap = np.zeros((k, k), dtype=np.int64)
    np.add.at(overlap, (new, old), 1)
    rows, cols = linear_sum_assignment(overlap, maximize=True)
    perm = np.empty(k, dtype=np.int64)
    perm[rows] = cols
    return perm



def kmeans(features: np.ndarray, k: int, seed: int, init_labels: np.ndarray | None = None) -> "KMeans":
    """k-means on `features` (N×F): k-means++ seeding, or the centroids of `init_labels`.

    A cluster of `init_labels` with no member in `features` is re-seeded at a random point (the
    official code does the same for starved clusters).
    """
    from sklearn.cluster import KMeans  # slow to import: only when clustering

    if init_labels is None:
        return KMeans(n_clusters=k, init="k-means++", n_init=1, random_state=seed).fit(features)
    rng = np.random.default_rng(seed)
    centres = np.empty((k, features.shape[1]), dtype=features.dtype)
    for c in range(k):
        members = features[init_labels == c]
        centres[c] = members.mean(axis=0) if len(members) else features[rng.integers(len(features))]
    return KMeans(n_clusters=k, init=centres, n_init=1, random_state=seed).fit(features)


class SelfCondGAN(Method):
    conditional = True
    label_kind = "cluster"  # type: ignore[assignment]  # cluster ids, not dataset classes

    def __init__(self, G: nn.Module, D: nn.Module, cfg: Config, num_samples: int) -> None:
        k = cfg.method.num_clusters
        super().__init__(k, cfg.model.z_dim)
        self.G, self.D = G, D
        self.recluster_every = cfg.method.recluster_every
        self.fit_size = cfg.method.cluster_fit_size
        self.seed = cfg.train.seed
        self.g_source_loss, self.d_source_loss = cfg.method.g_source_loss, cfg.method.d_source_loss
        self._lrs = (cfg.optim.d_lr, cfg.optim.g_lr)
        self.register_buffer("assignment", torch.full((num_samples,), -1, dtype=torch.long))
        self.register_buffer("cluster_sizes", torch.zeros(k, dtype=torch.long))

    # ------------------------------------------------------------------ conditioning

    def phases(self) -> list[Phase]:
        return [Phase("D", "D", self.D, self._lrs[0]), Phase("G", "G", self.G, self._lrs[1])]

    def generate(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """Samples of clusters `c` (cluster ids, not dataset classes)."""
        return self.G(z, c)

    def sample_classes(
        self, n: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Cluster ids drawn in proportion to the cluster sizes (uniform before the first clustering)."""
        sizes = self.cluster_sizes.float().cpu()
        weights = sizes if sizes.sum() > 0 else torch.ones(self.num_classes)
        return torch.multinomial(weights, n, replacement=True, generator=generator).to(device)

    def logit(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Projection-style conditional logit D.source(h) + D.classes(h)[c], h = D.features(x)."""
        h = self.D.features(x)
        return self.D.source(h).squeeze(1) + self.D.classes(h).gather(1, c[:, None]).squeeze(1)

    # ------------------------------------------------------------------ training

    def loss(self, phase: Phase, step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if "gen_x" not in step.cache:
            step.cache["gen_x"] = self.G(step.gen_z, step.gen_c)
        gen_x, aug = step.cache["gen_x"], self.d_terms.augment
        if phase.role == "D":
            real_c = self.assignment[step.real_idx]  # the pseudo-class; step.real_c is never read
            real_x = self.d_terms.real(step.real_x, step.step)
            s_real = self.logit(aug(real_x), real_c)
            s_fake = self.logit(aug(gen_x.detach()), step.gen_c)
            return self.d_terms.with_r1(d_source_loss(s_real, s_fake, self.d_source_loss),
                                        {"D/p_real": torch.sigmoid(s_real).mean().detach(),
                                         "D/p_fake": torch.sigmoid(s_fake).mean().detach()}, s_real, real_x, step.step)
        return self.g_terms.of_batch(g_source_loss(self.logit(aug(gen_x), step.gen_c), self.g_source_loss), {},
                                     gen_x, step.gen_z, step.gen_c)

    def prepare(self, data_x: torch.Tensor, data_y: torch.Tensor) -> dict[str, float]:
        """Check k against the data; cluster with the initial D unless a checkpoint brought a partition."""
        n, k = len(data_x), self.num_classes
        if k > n:
            raise ConfigError(f"config field method.num_clusters: expected at most the {n} training samples, found {k}")
        if self.fit_size < k:
            raise ConfigError(f"config field method.cluster_fit_size: expected >= method.num_clusters ({k}), "
                              f"found {self.fit_size}")
        if len(self.assignment) != n:
            raise ConfigError(f"data: this Self-Cond GAN was built for {len(self.assignment)} training samples "
                              f"(DataSpec.num_samples), found {n}")
        if bool((self.assignment >= 0).all()):  # resumed: the saved partition continues
            return {}
        return self.recluster(data_x, data_y, step=0)

    def on_step_end(self, step: int, data_x: torch.Tensor, data_y: torch.Tensor) -> dict[str, float]:
        if (step + 1) % self.recluster_every:
            return {}
        return self.recluster(data_x, data_y, step=step + 1)

    # ------------------------------------------------------------------ clustering

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> np.ndarray:
        """D's feature layer (float32 N×F) in eval mode: no dropout, BatchNorm running statistics."""
        was_training = self.D.training
        self.D.eval()
        out = [self.D.features(x[i:i + FEATURE_BATCH]).flatten(1).float().cpu() for i in range(0, len(x), FEATURE_BATCH)]
        self.D.train(was_training)
        return torch.cat(out).numpy()

    def recluster(self, data_x: torch.Tensor, data_y: torch.Tensor, step: int) -> dict[str, float]:
        """Partition the training set by k-means on D's features; match to the previous partition.

        Random draws (the fit subset, k-means++ seeding) come from (train.seed, step), so a resumed
        run re-clusters exactly as an uninterrupted one.
        """
        n, k = len(data_x), self.num_classes
        fit = np.random.default_rng([self.seed, _STREAM_CLUSTER]).permutation(n)[:min(n, self.fit_size)]
        fit.sort()  # a fixed subset for the whole run, drawn from the seed alone
        seed = int(np.random.SeedSequence([self.seed, _STREAM_CLUSTER, step]).generate_state(1)[0] >> 1)
        old = self.assignment.cpu().numpy()
        first = bool((old < 0).any())
        model = kmeans(self.features(data_x[torch.from_numpy(fit).to(data_x.device)]), k, seed,
                       None if first else old[fit])
        # Nearest centre for every training sample, a chunk at a time (N×F features never held at once).
        new = np.concatenate([model.predict(self.features(data_x[i:i + ASSIGN_CHUNK]))
                              for i in range(0, n, ASSIGN_CHUNK)]).astype(np.int64)
        stats: dict[str, float] = {}
        if not first:
            new = match_clusters(new, old, k)[new]
            stats["cluster/changed"] = float((new != old).mean())
        self.assignment.copy_(torch.from_numpy(new))
        self.cluster_sizes.copy_(torch.bincount(self.assignment, minlength=k))
        labels = data_y.cpu().numpy()
        if len(np.unique(labels)) > 1:  # diagnostics against the true labels, when there are any
            stats["cluster/purity"] = cluster_purity(labels, new)
            stats["cluster/nmi"] = cluster_nmi(labels, new)
        stats["cluster/nonempty"] = float((self.cluster_sizes > 0).sum())
        return stats
