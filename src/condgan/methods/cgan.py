"""Conditional GAN (Mirza & Osindero 2014, "Conditional Generative Adversarial Nets").

Both players see the class y (here c): min_G max_D V = E_{x,c}[log D(x|c)] + E_{z,c}[log(1 − D(G(z|c)|c))]
(paper eq. 2). As minimised losses, with s(x, c) the logit of D(x|c):
    D:                  BCE(s(x_real, c_real), 1) + BCE(s(G(z, c), c), 0)
    G (minimax):       −BCE(s(G(z, c), c), 0)     # = E[log(1 − D(G(z|c)|c))]
    G (non_saturating): BCE(s(G(z, c), c), 1)     # = −E[log D(G(z|c)|c)]
How D reads c is `method.cgan_variant`: "concat" (one-hot appended to the input, the paper's
construction) or "projection" (Miyato & Koyama 2018); see `condgan.nets.conditional`.
The source terms follow `method.d_source_loss`/`g_source_loss` (hinge: methods/gan.py); every image D
sees passes through the recipe's DiffAugment, and D's loss gains its R1 term (methods/recipe.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from condgan.config import Config, register_method_config, setting
from condgan.methods.base import AdversarialPair, Phase, StepInputs
from condgan.methods.class_splits import ClassSplitConfig
from condgan.methods.gan import SourceLossConfig, d_source_loss, g_source_loss


@register_method_config
@dataclass(frozen=True)
class CGANConfig(SourceLossConfig, ClassSplitConfig):
    name: str = "cgan"
    # "concat" feeds D the one-hot class (as extra input channels for images); "projection" is
    # D(x, c) = ψ(φ(x)) + ⟨embed(c), φ(x)⟩ (Miyato & Koyama 2018, eq. 3).
    cgan_variant: str = setting("concat", choices=("concat", "projection"))


class CGAN(AdversarialPair):
    conditional = True

    def __init__(self, G: nn.Module, D: nn.Module, cfg: Config, num_classes: int) -> None:
        super().__init__(G, D, num_classes, cfg.model.z_dim, cfg.method.g_source_loss, cfg.optim.d_lr, cfg.optim.g_lr,
                         cfg.method.d_source_loss)

    def loss(self, phase: Phase, step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        gen_x, aug = self.generated(step), self.d_terms.augment
        if phase.role == "D":
            real_x = self.d_terms.real(step.real_x, step.step)
            s_real = self.D(aug(real_x), step.real_c)
            s_fake = self.D(aug(gen_x.detach()), step.gen_c)
            return self.d_terms.with_r1(d_source_loss(s_real, s_fake, self.d_source_loss), {
                "D/p_real": torch.sigmoid(s_real).mean().detach(),
                "D/p_fake": torch.sigmoid(s_fake).mean().detach(),
            }, s_real, real_x, step.step)
        return self.with_mode_seeking(g_source_loss(self.D(aug(gen_x), step.gen_c), self.g_source_loss), {}, step)
