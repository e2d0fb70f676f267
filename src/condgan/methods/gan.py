"""Vanilla GAN (Goodfellow et al. 2014, "Generative Adversarial Nets"): unconditional G(z) and D(x).

Value function (paper eq. 1): min_G max_D V = E_x[log D(x)] + E_z[log(1 − D(G(z)))], with
D(x) = sigmoid(s(x)) for a source logit s. As minimised losses (BCE = batch mean of −log-likelihood):
    D:                 BCE(s_real, 1) + BCE(s_fake, 0)      # = −E[log D(x)] − E[log(1 − D(G(z)))]
    G (minimax):      −BCE(s_fake, 0)                        # = E[log(1 − D(G(z)))], as in eq. 1
    G (non_saturating): BCE(s_fake, 1)                       # = −E[log D(G(z))], the paper's §3 heuristic
(`method.g_source_loss`). The hinge loss (`method.d_source_loss: hinge`, `method.g_source_loss:
hinge`; Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, §4) replaces both sides:
    D:                 E[max(0, 1 − s_real)] + E[max(0, 1 + s_fake)]
    G:                −E[s_fake]
Every method's source term is `d_source_loss` / `g_source_loss` below. The networks are built with
num_classes = 0, so c is never read; the samples file of such a model has no labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from condgan.config import Config, MethodConfig, register_method_config, setting
from condgan.methods.base import AdversarialPair, Phase, StepInputs


@dataclass(frozen=True)
class SourceLossConfig(MethodConfig):
    """The key of every method with a GAN source term (all built-in ones)."""

    # "minimax": G minimises E[log(1 − D(G(z)))] as the value function is written (for AC-GAN:
    # G maximises L_C − L_S, paper eq. 2–3). "non_saturating": G minimises −E[log D(G(z))]
    # (Goodfellow et al. 2014, §3 heuristic). See `g_source_loss` below.
    # "hinge": G minimises −E[s_fake] (Lim & Ye 2017; Miyato et al. 2018), usually with D's hinge below.
    g_source_loss: str = setting("minimax", choices=("minimax", "non_saturating", "hinge"))
    # D's source term: "bce" (the GAN value function, eq. 1) or "hinge" (max-margin, Lim & Ye 2017).
    d_source_loss: str = setting("bce", choices=("bce", "hinge"))


@register_method_config
@dataclass(frozen=True)
class GANConfig(SourceLossConfig):
    name: str = "gan"


def d_source_loss(s_real: torch.Tensor, s_fake: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """D's loss on source logits: −E[log D(x_real)] − E[log(1 − D(x_fake))] ("bce", GAN eq. 1, D's side)
    or E[max(0, 1 − s_real)] + E[max(0, 1 + s_fake)] ("hinge", Lim & Ye 2017)."""
    if kind == "hinge":
        return F.relu(1 - s_real).mean() + F.relu(1 + s_fake).mean()
    return F.binary_cross_entropy_with_logits(s_real, torch.ones_like(s_real)) + \
        F.binary_cross_entropy_with_logits(s_fake, torch.zeros_like(s_fake))


def g_source_loss(s_fake: torch.Tensor, kind: str) -> torch.Tensor:
    """G's loss on source logits of its samples: E[log(1 − D)] ("minimax"), −E[log D] ("non_saturating")
    or −E[s_fake] ("hinge", Lim & Ye 2017)."""
    if kind == "minimax":
        return -F.binary_cross_entropy_with_logits(s_fake, torch.zeros_like(s_fake))
    if kind == "hinge":
        return -s_fake.mean()
    return F.binary_cross_entropy_with_logits(s_fake, torch.ones_like(s_fake))


class GAN(AdversarialPair):
    conditional = False

    def __init__(self, G: nn.Module, D: nn.Module, cfg: Config) -> None:
        super().__init__(G, D, 0, cfg.model.z_dim, cfg.method.g_source_loss, cfg.optim.d_lr, cfg.optim.g_lr,
                         cfg.method.d_source_loss)

    def generate(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.G(z)

    def loss(self, phase: Phase, step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        gen_x, aug = self.generated(step), self.d_terms.augment
        if phase.role == "D":
            real_x = self.d_terms.real(step.real_x, step.step)
            s_real, _ = self.D(aug(real_x))
            s_fake, _ = self.D(aug(gen_x.detach()))
            return self.d_terms.with_r1(d_source_loss(s_real, s_fake, self.d_source_loss), {
                "D/p_real": torch.sigmoid(s_real).mean().detach(),
                "D/p_fake": torch.sigmoid(s_fake).mean().detach(),
            }, s_real, real_x, step.step)
        s_fake, _ = self.D(aug(gen_x))
        return self.with_mode_seeking(g_source_loss(s_fake, self.g_source_loss), {}, step)
