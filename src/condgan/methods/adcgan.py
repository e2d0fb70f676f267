"""ADC-GAN (Hou, Cao, Shen, Pan, Li, Cheng 2022, "Conditional GANs with Auxiliary Discriminative
Classifier", ICML; authors' code: liang-hou/adcgan, BigGAN-PyTorch/train_fns.py).

D carries a discriminative classifier over 2K labels: "real, class k" (index k here) and
"generated, class k" (index K + k). It learns to tell real samples of class k from generated ones
of class k, so at its optimum C(real k | x) ∝ p(x, k) and C(generated k | x) ∝ q(x, k) with one
normaliser over the 2K labels; G's class term E_Q[log C(generated c | x) − log C(real c | x)] is
then E_Q[log q(x, c) / p(x, c)] = KL(Q_XC ‖ P_XC),
the divergence of the joint distributions (AC-GAN's classifier, blind to the source, cannot
tell G where its class c differs from the real class c).

With s the source logit and k the 2K class logits of one D forward, as minimised losses
(BCE/CE = batch means of negative log-likelihoods, λ = `method.class_weight`):
    D:                  BCE(s_real, 1) + BCE(s_fake, 0) + λ·[CE(k_real, c_real) + CE(k_fake, K + c_fake)]
    G (non_saturating): BCE(s_fake, 1) + λ·[CE(k_fake, c) − CE(k_fake, K + c)]
    G (minimax):       −BCE(s_fake, 0) + λ·[CE(k_fake, c) − CE(k_fake, K + c)]
G's class term pulls toward "real c" and away from "generated c"; the softmax normaliser
cancels in it, so it is the mean logit gap k[K + c] − k[c]. The classifier is a linear head of
2K outputs on D's shared features (`D.classes`, built with 2K classes), as in the authors'
code, which also uses λ = 1 for D and G (their `D_lambda`, `G_lambda`). Their code numbers the
labels 2k (real) and 2k + 1 (generated); the order of a linear head's outputs is immaterial.
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
class ADCGANConfig(SourceLossConfig, ClassSplitConfig):
    name: str = "adcgan"
    # λ: weight of the discriminative classifier's terms relative to the source term (authors: 1)
    class_weight: float = setting(1.0, at_least=0)


def adc_d_class_loss(k_real: torch.Tensor, c_real: torch.Tensor, k_fake: torch.Tensor,
                     c_fake: torch.Tensor) -> torch.Tensor:
    """CE(k_real, c_real) + CE(k_fake, K + c_fake) over the 2K labels (K = half the logits)."""
    K = k_real.shape[1] // 2
    return F.cross_entropy(k_real, c_real) + F.cross_entropy(k_fake, K + c_fake)


def adc_g_class_loss(k_fake: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """G's term CE(k_fake, c) − CE(k_fake, K + c) = mean(k[K + c] − k[c]) (the normaliser cancels)."""
    K = k_fake.shape[1] // 2
    return F.cross_entropy(k_fake, c) - F.cross_entropy(k_fake, K + c)


class ADCGAN(AuxiliaryClassifierPair):
    def d_class_terms(self, k_real: torch.Tensor, k_fake: torch.Tensor,
                      step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss_c = adc_d_class_loss(k_real, step.real_c, k_fake, step.gen_c)
        return loss_c, {
            "D/loss_class": loss_c.detach(),
            # share of samples given exactly their label among the 2K
            "D/acc_real_class": (k_real.argmax(1) == step.real_c).float().mean(),
            "D/acc_fake_class": (k_fake.argmax(1) == self.num_classes + step.gen_c).float().mean(),
        }

    def g_class_terms(self, k_fake: torch.Tensor, step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss_c = adc_g_class_loss(k_fake, step.gen_c)
        # share of generated samples the classifier takes for real samples of their class
        return loss_c, {"G/loss_class": loss_c.detach(),
                        "G/acc_fake_as_real_class": (k_fake.argmax(1) == step.gen_c).float().mean()}
