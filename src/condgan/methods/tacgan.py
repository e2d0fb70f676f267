"""TAC-GAN (Gong, Xu, Li, Zhang, Batmanghelich 2019, "Twin Auxiliary Classifiers GAN", NeurIPS;
authors' code: batmanlab/twin-auxiliary-classifiers-gan, TAC-BigGAN/train_fns.py).

AC-GAN's G minimises E_Q[−log C(c|x)] for a classifier C of the real data, which is
KL(Q(c|x) ‖ P(c|x)) + H_Q(c|x): besides matching the true conditional it lowers the conditional
entropy of its own samples, pushing each class away from the others (the loss of diversity the
paper analyses). TAC-GAN adds a twin classifier C_mi, trained on generated samples, so that
E_Q[−log C_mi(c|x)] estimates H_Q(c|x), and G subtracts it: at the optimum of D, C and C_mi, G
minimises JSD(P_X, Q_X) + λ·E_{Q_X}[KL(Q(c|x) ‖ P(c|x))], which is zero only when Q_XC = P_XC.

With s the source logit, k the logits of C and t those of C_mi (all from one D forward), as
minimised losses (BCE/CE = batch means of negative log-likelihoods, λ = `method.class_weight`):
    D, C, C_mi: BCE(s_real, 1) + BCE(s_fake, 0) + λ·[CE(k_real, c_real) + CE(t_fake, c_fake)]
    G (non_saturating): BCE(s_fake, 1) + λ·[CE(k_fake, c_fake) − CE(t_fake, c_fake)]
    G (minimax):       −BCE(s_fake, 0) + λ·[CE(k_fake, c_fake) − CE(t_fake, c_fake)]
As in the authors' code, C learns from real samples only (AC-GAN here trains it on both) and
C_mi from generated ones only; both are linear heads on D's shared features, here the two
K-way halves of one linear layer of 2K outputs (`D.classes`, built with 2K classes: the same
parameters as two separate heads), and λ = 1 (their `AC_weight`) weighs every class term.
The source terms follow `method.d_source_loss`/`g_source_loss` (hinge: methods/gan.py); every image D
sees passes through the recipe's DiffAugment, and D's loss gains its R1 term (methods/recipe.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from condgan.config import register_method_config, setting
from condgan.methods.acgan import AuxiliaryClassifierPair
from condgan.methods.base import StepInputs
from condgan.methods.class_splits import ClassSplitConfig
from condgan.methods.gan import SourceLossConfig


@register_method_config
@dataclass(frozen=True)
class TACGANConfig(SourceLossConfig, ClassSplitConfig):
    name: str = "tacgan"
    # λ: weight of the classifier terms (C and its twin) relative to the source term (authors: 1)
    class_weight: float = setting(1.0, at_least=0)


def split_heads(logits: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """D's 2K class logits → (C's K logits, C_mi's K logits)."""
    return logits[:, :num_classes], logits[:, num_classes:]


def tac_g_class_loss(k_fake: torch.Tensor, t_fake: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """G's class term CE(C(x), c) − CE(C_mi(x), c): zero when the twin agrees with C."""
    return F.cross_entropy(k_fake, c) - F.cross_entropy(t_fake, c)


class TACGAN(AuxiliaryClassifierPair):
    def d_class_terms(self, logits_real: torch.Tensor, logits_fake: torch.Tensor,
                      step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        k_real, _ = split_heads(logits_real, self.num_classes)
        _, t_fake = split_heads(logits_fake, self.num_classes)
        loss_c = F.cross_entropy(k_real, step.real_c)
        loss_twin = F.cross_entropy(t_fake, step.gen_c)
        return loss_c + loss_twin, {
            "D/loss_class": loss_c.detach(),
            "D/loss_twin": loss_twin.detach(),
            "D/acc_real_class": (k_real.argmax(1) == step.real_c).float().mean(),
            "D/acc_twin_fake_class": (t_fake.argmax(1) == step.gen_c).float().mean(),
        }

    def g_class_terms(self, logits_fake: torch.Tensor,
                      step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        k_fake, t_fake = split_heads(logits_fake, self.num_classes)
        loss_c = tac_g_class_loss(k_fake, t_fake, step.gen_c)
        return loss_c, {"G/loss_class": loss_c.detach(),
                        "G/acc_fake_class": (k_fake.argmax(1) == step.gen_c).float().mean()}
