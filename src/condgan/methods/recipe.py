"""The method-side parts of the modern GAN recipe (config section `recipe`, docs/quality.md).

`condgan.methods.build_method` applies them to every method, whatever its name:
- `apply_spectral_norm`: spectral normalisation of the layers of D (and G) (`recipe.spectral_norm`);
- `DiscriminatorTerms`: DiffAugment of every image D sees and the R1 penalty on real images
  (`recipe.diffaugment`, `recipe.r1_gamma`, `recipe.r1_interval`). Each method's loss calls
  `self.d_terms.augment(x)` wherever it feeds D an image, and in D's phase reads the real batch
  through `self.d_terms.real(...)` and returns `self.d_terms.with_r1(...)`; the default terms do
  nothing, so a method that does not call them trains as before;
- `GeneratorTerms`: the mode-seeking term of G's loss (`recipe.mode_seeking`). Each method's G loss
  returns through `self.g_terms.of_batch(...)` (pairs of its samples of one class) or
  `self.g_terms.with_mode_seeking(...)` (pairs it draws itself).
The others live where they act: the hinge loss in methods/gan.py (`d_source_loss`/`g_source_loss`),
n_dis as phase intervals (`methods.base.every_n_dis`), per-player Adam settings in the loop
(`OptimConfig.betas`), G-EMA in condgan/training/ema.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from condgan.methods.diffaugment import diff_augment

# Layers whose `weight` spectral normalisation divides by its largest singular value.
SN_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
             nn.ConvTranspose3d, nn.Embedding)


def apply_spectral_norm(module: nn.Module) -> int:
    """Spectral normalisation (Miyato, Kataoka, Koyama, Yoshida 2018, "Spectral Normalization for
    Generative Adversarial Networks", ICLR, §2.1): every `SN_LAYERS` weight W under `module`
    becomes W / σ(W), σ(W) its largest singular value (of W reshaped to out × rest; dim 1 for
    transposed convolutions), estimated by one power iteration per forward in training mode
    (torch.nn.utils.parametrizations.spectral_norm; its u, v are buffers, so checkpoints carry
    them). Returns the number of layers normalised; a layer already normalised is left alone."""
    count = 0
    for layer in list(module.modules()):
        if isinstance(layer, SN_LAYERS) and not parametrize.is_parametrized(layer, "weight"):
            spectral_norm(layer)
            count += 1
    return count


def r1_penalty(s_real: torch.Tensor, real_x: torch.Tensor) -> torch.Tensor:
    """E[‖∇_x s(x)‖²] over the real batch (Mescheder, Geiger, Nowozin 2018, "Which Training Methods
    for GANs do actually Converge?", ICML, §4.1, without its γ/2), s the source logit D gives `real_x`
    (a leaf that requires grad). The graph is kept so the penalty trains D (double backward). With
    BatchNorm in D the samples of a batch interact, and the gradient of Σ s is not exactly each
    sample's own; the recipe's usual D (SN, no BN) has no such coupling."""
    (grad,) = torch.autograd.grad(s_real.sum(), real_x, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()


@dataclass(frozen=True)
class DiscriminatorTerms:
    """What the recipe adds where a method runs D: augmentation of its inputs and the R1 penalty.

    `policy`: DiffAugment transforms (condgan.methods.diffaugment), () = none. `r1_gamma` γ > 0
    adds γ/2 · E[‖∇_x D(x_real)‖²] to D's loss; with `r1_interval` k > 1 it is added every k-th
    step as (k·γ)/2 · E[...] ("lazy regularisation", Karras et al. 2020, "Analyzing and Improving
    the Image Quality of StyleGAN", §3.1), the same penalty per step on average at 1/k of the cost.
    """

    policy: tuple[str, ...] = ()
    r1_gamma: float = 0.0
    r1_interval: int = 1

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """T(x): the image D sees (real or generated, D's phase or G's); `x` itself without a policy."""
        return diff_augment(x, self.policy) if self.policy else x

    def r1_due(self, step: int) -> bool:
        return self.r1_gamma > 0 and step % self.r1_interval == 0

    def real(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """The real batch as D's phase reads it: when R1 is due, a leaf that requires its gradient."""
        return x.detach().requires_grad_(True) if self.r1_due(step) else x

    def with_r1(self, loss: torch.Tensor, stats: dict[str, torch.Tensor], s_real: torch.Tensor,
                real_x: torch.Tensor, step: int, name: str = "D/r1") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(`loss` + (k·γ)/2 · R1, stats + {name: R1}) when R1 is due at `step`, else (loss, stats)
        unchanged. `s_real` is D's source logit of `self.augment(real_x)`, `real_x` from `real`."""
        if not self.r1_due(step):
            return loss, stats
        penalty = r1_penalty(s_real, real_x)
        return loss + (self.r1_gamma * self.r1_interval / 2) * penalty, {**stats, name: penalty.detach()}


# The authors' code adds this to the ratio before inverting it, so a G that ignores z gets a large
# but finite loss.
MODE_SEEKING_EPS = 1e-5


def mode_seeking_ratio(x1: torch.Tensor, x2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """mean|x1 − x2| / mean|z1 − z2| over pairs (x1[i], x2[i]) made from noise (z1[i], z2[i]) under one
    condition: how far G's samples move per unit of noise (Mao et al. 2019, eq. 3, with the L1
    distances of the authors' code)."""
    return (x1 - x2).abs().mean() / (z1 - z2).abs().mean()


def same_condition_pairs(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (i, j) of the pairs of a batch's samples that share their condition `c` (integer
    classes or clusters): each sample with the next one of its condition in the batch, so a batch of
    n samples in k conditions gives n − k pairs (a condition with one sample gives none)."""
    order = torch.argsort(c, stable=True)
    same = c[order][:-1] == c[order][1:]
    return order[:-1][same], order[1:][same]


@dataclass(frozen=True)
class GeneratorTerms:
    """What the recipe adds where a method computes G's loss: the mode-seeking term.

    Mode seeking (Mao, Lee, Tseng, Ma, Yang 2019, "Mode Seeking Generative Adversarial Networks for
    Diverse Image Synthesis", CVPR, §3.2): G maximises the ratio r = d(G(c, z1), G(c, z2)) / d(z1, z2),
    so two noise vectors under one condition c give samples as far apart as the noise is. A conditional
    G that ignores its noise (one sample per class, one refinement per LAPGAN level's input) has r ≈ 0;
    as in the authors' code, G minimises `mode_seeking` · 1 / (r + 1e-5).

    The authors draw a second batch under the same conditions. Where conditions are classes, a batch
    already holds such pairs, its samples of one class (`of_batch`), so here the term costs no G
    forward; a method whose conditions are one per sample (LAPGAN's low-pass images) makes the second
    draws itself and calls `with_mode_seeking`.
    """

    mode_seeking: float = 0.0

    def with_mode_seeking(self, loss: torch.Tensor, stats: dict[str, torch.Tensor], x1: torch.Tensor,
                          x2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor,
                          name: str = "G/mode_seeking") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(`loss` + λ / (r + ε), stats + {name: r}), r = `mode_seeking_ratio` of the pairs, λ =
        `mode_seeking`; (loss, stats) unchanged when λ is 0 or there are no pairs."""
        if self.mode_seeking == 0 or len(x1) == 0:
            return loss, stats
        ratio = mode_seeking_ratio(x1, x2, z1, z2)
        return loss + self.mode_seeking / (ratio + MODE_SEEKING_EPS), {**stats, name: ratio.detach()}

    def of_batch(self, loss: torch.Tensor, stats: dict[str, torch.Tensor], fake: torch.Tensor, z: torch.Tensor,
                 c: torch.Tensor | None, name: str = "G/mode_seeking") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`with_mode_seeking` over the pairs of `fake` (made from noise `z`) that share their class
        `c` (`same_condition_pairs`; `c` None: unconditional, every sample shares the condition)."""
        if self.mode_seeking == 0:
            return loss, stats
        i, j = same_condition_pairs(torch.zeros(len(z), dtype=torch.long, device=z.device) if c is None else c)
        return self.with_mode_seeking(loss, stats, fake[i], fake[j], z[i], z[j], name)
