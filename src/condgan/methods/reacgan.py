"""ReACGAN (Kang, Shin, Park 2021, "Rebooting ACGAN: Auxiliary Classifier GANs with Stable
Training", NeurIPS; reference implementation: POSTECH-CVLab/PyTorch-StudioGAN,
src/utils/losses.py `Data2DataCrossEntropyLoss`, config src/configs/CIFAR10/ReACGAN.yaml).

AC-GAN's softmax cross-entropy on unnormalised features lets D's class gradients grow large
early in training and only relates each sample to the class weights. ReACGAN projects D's
features onto the unit sphere, f = normalise(W h + b) (h = D.features(x)), gives each class a
learnt proxy v_k = normalise(V[k]), and replaces the cross-entropy by the data-to-data
cross-entropy (D2D-CE), which compares each sample with its proxy and with the samples of the
other classes in the batch, with margins so that easy positives and negatives stop contributing:

    ℓ_pos(i)  = min(f_i·v_{c_i} − m_p, 0) / τ
    ℓ_neg(ij) = max(f_i·f_j − m_n, 0) / τ
    D2D(f, c) = mean_i −log( exp ℓ_pos(i) / (exp ℓ_pos(i) + Σ_{j : c_j ≠ c_i} exp ℓ_neg(ij)) )

Only samples of another class are negatives: those of the same class (the sample itself
included) are masked as false negatives. As minimised losses (BCE = batch mean of the negative
log-likelihood, λ = `method.class_weight`):
    D:                  BCE(s_real, 1) + BCE(s_fake, 0) + λ·D2D(f(x_real), c_real)
    G (non_saturating): BCE(s_fake, 1) + λ·D2D(f(G(z, c)), c)
    G (minimax):       −BCE(s_fake, 0) + λ·D2D(f(G(z, c)), c)
D learns the embedding and the proxies from real samples only; G's negatives are the other
generated samples of the batch. Defaults are StudioGAN's CIFAR-10 ReACGAN settings: λ = 0.5,
τ = 0.5, m_p = 0.98, 512-d embeddings; StudioGAN ties m_n = 1 − m_p (0.02), kept here as its own
field. StudioGAN subtracts the detached row maximum from the negatives' logits alone (not from
the positive's), which rescales each row's negatives by a constant factor; here the loss is the
formula above, its log-sum-exp computed exactly.

Under DDP the negatives are the whole global batch (gathered with gradients, as StudioGAN does),
so a W-rank run computes the single-process loss; a class-split sub-model, whose routed batch
differs between ranks, takes its negatives from its own rank's samples.
The source terms follow `method.d_source_loss`/`g_source_loss` (hinge: methods/gan.py); every image D
sees passes through the recipe's DiffAugment, and D's loss gains its R1 term (methods/recipe.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from condgan.config import Config, register_method_config, setting
from condgan.dist import gather_with_grad
from condgan.methods.base import AdversarialPair, Phase, StepInputs
from condgan.methods.class_splits import ClassSplitConfig
from condgan.methods.gan import SourceLossConfig, d_source_loss, g_source_loss


@register_method_config
@dataclass(frozen=True)
class ReACGANConfig(SourceLossConfig, ClassSplitConfig):
    name: str = "reacgan"
    class_weight: float = setting(0.5, at_least=0)  # λ: weight of D2D-CE relative to the source term
    embed_dim: int = setting(512, positive=True)  # width of the normalised embedding f and the proxies
    temperature: float = setting(0.5, positive=True)  # τ
    # m_p: a positive stops being pulled once its cosine to its proxy reaches m_p (>= 1: always pulled)
    positive_margin: float = setting(0.98, at_least=-1.0)
    # m_n: a negative stops being pushed once its cosine falls to m_n (-1: always pushed)
    negative_margin: float = setting(0.02, at_least=-1.0)


def d2d_ce(f: torch.Tensor, v: torch.Tensor, c: torch.Tensor, f_neg: torch.Tensor, c_neg: torch.Tensor,
           temperature: float, positive_margin: float, negative_margin: float) -> torch.Tensor:
    """The data-to-data cross-entropy of the module docstring.

    `f` (N×d) unit embeddings of the anchors with classes `c`, `v` (N×d) the unit proxies of
    their classes, `f_neg`/`c_neg` (M×d, M) the samples that may serve as negatives (the batch
    itself, or the global batch under DDP): those of the anchor's class are masked out.
    """
    pos = torch.clamp((f * v).sum(dim=1) - positive_margin, max=0) / temperature
    neg = torch.clamp(f @ f_neg.T - negative_margin, min=0) / temperature
    neg = neg.masked_fill(c[:, None] == c_neg[None, :], float("-inf"))  # false negatives, self included
    return (torch.logsumexp(torch.cat([pos[:, None], neg], dim=1), dim=1) - pos).mean()


class EmbeddingDiscriminator(nn.Module):
    """ReACGAN's D: the architecture's D, whose class head (built with `embed_dim` outputs) is the
    embedding layer W h + b, and one learnt proxy per class. forward(x) → (source logit, unit f)."""

    def __init__(self, net: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.net = net
        self.proxies = nn.Embedding(num_classes, net.classes.out_features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, e = self.net(x)
        return s, F.normalize(e, dim=1)

    def proxy(self, c: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proxies(c), dim=1)


class ReACGAN(AdversarialPair):
    conditional = True

    def __init__(self, G: nn.Module, D: nn.Module, cfg: Config, num_classes: int) -> None:
        m = cfg.method
        super().__init__(G, EmbeddingDiscriminator(D, num_classes), num_classes, cfg.model.z_dim, m.g_source_loss,
                         cfg.optim.d_lr, cfg.optim.g_lr, m.d_source_loss)
        self.class_weight = m.class_weight
        self.d2d_settings = (m.temperature, m.positive_margin, m.negative_margin)
        self.gather_negatives = m.class_splits == 1  # see the module docstring

    def d2d(self, f: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """D2D-CE of unit embeddings `f` of samples of classes `c` (negatives gathered under DDP)."""
        f_neg, c_neg = (gather_with_grad(f), gather_with_grad(c)) if self.gather_negatives else (f, c)
        return d2d_ce(f, self.D.proxy(c), c, f_neg, c_neg, *self.d2d_settings)

    def loss(self, phase: Phase, step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        gen_x, aug = self.generated(step), self.d_terms.augment
        if phase.role == "D":
            real_x = self.d_terms.real(step.real_x, step.step)
            s_real, f_real = self.D(aug(real_x))
            s_fake, _ = self.D(aug(gen_x.detach()))
            loss_s = d_source_loss(s_real, s_fake, self.d_source_loss)
            loss_c = self.d2d(f_real, step.real_c)
            nearest = (f_real @ F.normalize(self.D.proxies.weight, dim=1).T).argmax(1)
            stats = {
                "D/loss_source": loss_s.detach(),
                "D/loss_class": loss_c.detach(),
                "D/acc_real_class": (nearest == step.real_c).float().mean(),  # nearest proxy = class
                "D/p_real": torch.sigmoid(s_real).mean().detach(),
                "D/p_fake": torch.sigmoid(s_fake).mean().detach(),
            }
            return self.d_terms.with_r1(loss_s + self.class_weight * loss_c, stats, s_real, real_x, step.step)
        s_fake, f_fake = self.D(aug(gen_x))
        loss_s = g_source_loss(s_fake, self.g_source_loss)
        loss_c = self.d2d(f_fake, step.gen_c)
        return self.with_mode_seeking(loss_s + self.class_weight * loss_c,
                                      {"G/loss_source": loss_s.detach(), "G/loss_class": loss_c.detach()}, step)
