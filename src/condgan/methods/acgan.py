"""AC-GAN (Odena, Olah, Shlens 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs").

D(x) gives P(S|x) (real/fake) and P(C|x) (class). With
    L_S = E[log P(S=real | x_real)] + E[log P(S=fake | x_fake)]
    L_C = E[log P(C=c | x_real)] + E[log P(C=c | x_fake)]
D maximises L_S + L_C and G maximises L_C − L_S (paper eq. 2–3). As minimised losses:
    D: BCE(s_real, 1) + BCE(s_fake, 0) + w·[CE(k_real, c_real) + CE(k_fake, c_fake)]
    G (minimax, as written):  −BCE(s_fake, 0) + w·CE(k_fake, c_fake)   # = log P(S=fake|x_fake) − log P(C=c|x_fake)
    G (non_saturating):        BCE(s_fake, 1) + w·CE(k_fake, c_fake)
where s are source logits, k class logits, and BCE/CE are batch means of negative log-likelihoods.
One G forward per step is shared by both phases: D sees it detached, G's phase reuses its graph.
The source terms follow `method.d_source_loss`/`g_source_loss` (hinge: methods/gan.py); every image D
sees passes through the recipe's DiffAugment, and D's loss gains its R1 term (methods/recipe.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from condgan.config import Config, register_method_config, setting
from condgan.methods.base import AdversarialPair, Phase, StepInputs
from condgan.methods.class_splits import ClassSplitConfig
from condgan.methods.gan import SourceLossConfig, d_source_loss, g_source_loss


@register_method_config
@dataclass(frozen=True)
class ACGANConfig(SourceLossConfig, ClassSplitConfig):
    name: str = "acgan"
    class_weight: float = setting(1.0, at_least=0)  # weight w of L_C relative to L_S (paper: 1)


class AuxiliaryClassifierPair(AdversarialPair):
    """D(x) → (source logit s, class logits k) from one forward; D minimises its source loss plus
    λ·(a class term on k_real, k_fake), G its source loss plus λ·(a class term on k_fake), λ =
    `method.class_weight`. AC-GAN and the successors that keep this shape (TAC-GAN, ADC-GAN) differ
    only in those two class terms (`d_class_terms`, `g_class_terms`, each with its statistics)."""

    conditional = True

    def __init__(self, G: nn.Module, D: nn.Module, cfg: Config, num_classes: int) -> None:
        super().__init__(G, D, num_classes, cfg.model.z_dim, cfg.method.g_source_loss, cfg.optim.d_lr, cfg.optim.g_lr,
                         cfg.method.d_source_loss)
        self.class_weight = cfg.method.class_weight

    def d_class_terms(self, k_real: torch.Tensor, k_fake: torch.Tensor,
                      step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def g_class_terms(self, k_fake: torch.Tensor, step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def loss(self, phase: Phase, step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        gen_x, aug = self.generated(step), self.d_terms.augment
        if phase.role == "D":
            real_x = self.d_terms.real(step.real_x, step.step)
            s_real, k_real = self.D(aug(real_x))
            s_fake, k_fake = self.D(aug(gen_x.detach()))
            loss_s = d_source_loss(s_real, s_fake, self.d_source_loss)
            loss_c, class_stats = self.d_class_terms(k_real, k_fake, step)
            stats = {
                "D/loss_source": loss_s.detach(),
                **class_stats,
                "D/p_real": torch.sigmoid(s_real).mean().detach(),
                "D/p_fake": torch.sigmoid(s_fake).mean().detach(),
            }
            return self.d_terms.with_r1(loss_s + self.class_weight * loss_c, stats, s_real, real_x, step.step)
        s_fake, k_fake = self.D(aug(gen_x))
        loss_s = g_source_loss(s_fake, self.g_source_loss)
        loss_c, class_stats = self.g_class_terms(k_fake, step)
        return self.with_mode_seeking(loss_s + self.class_weight * loss_c,
                                      {"G/loss_source": loss_s.detach(), **class_stats}, step)


class ACGAN(AuxiliaryClassifierPair):
    def d_class_terms(self, k_real: torch.Tensor, k_fake: torch.Tensor,
                      step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss_c = F.cross_entropy(k_real, step.real_c) + F.cross_entropy(k_fake, step.gen_c)
        return loss_c, {"D/loss_class": loss_c.detach(),
                        "D/acc_real_class": (k_real.argmax(1) == step.real_c).float().mean()}

    def g_class_terms(self, k_fake: torch.Tensor, step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss_c = F.cross_entropy(k_fake, step.gen_c)
        return loss_c, {"G/loss_class": loss_c.detach(),
                        "G/acc_fake_class": (k_fake.argmax(1) == step.gen_c).float().mean()}
