"""LAPGAN and CC-LAPGAN (Denton, Chintala, Szlam, Fergus 2015, "Deep Generative Image Models using
a Laplacian Pyramid of Adversarial Networks", §3.3 and §4).

One GAN per level of the Laplacian pyramid (`condgan.nets.pyramid`), each trained on the real
pyramid of the data, independently of the others:
- coarsest level K: a plain GAN on the low-pass images I_K, G_K(z_K) (CC: G_K(z_K, c));
- finer levels k < K: a conditional GAN on the band-pass images h_k = I_k − l_k with the
  low-pass image l_k = u(I_{k+1}) of the *real* image as condition: h̃_k = G_k(z_k, l_k)
  (CC: G_k(z_k, l_k, c) with c the real image's class), D_k(h, l_k) judges h + l_k (with
  `method.finer_d_sees_low`, beside l_k itself).
Per level the objective is the GAN value function (paper eq. 1; eq. 2 adds the condition):
    D_k minimises  BCE(D_k(real), 1) + BCE(D_k(fake), 0)
    G_k minimises  −BCE(D_k(fake), 0) = log(1 − D_k(fake))   (method.g_source_loss = minimax)
                or  BCE(D_k(fake), 1) = −log D_k(fake)        (non_saturating; the official code's)
with batch means; the paper's coin flip between a real and a generated h_k for each example is
replaced by a batch of each. Phases D0, G0, …, DK, GK are data (`phases()`), one optimiser each;
the finer D_k's rate is optim.d_lr × method.finer_d_lr_scale.
The source terms follow `method.d_source_loss`/`g_source_loss` (hinge: methods/gan.py); every image D
sees passes through the recipe's DiffAugment, and D's loss gains its R1 term (methods/recipe.py). DiffAugment
augments the image D_k judges: I_K, or h_k + l_k at the finer levels. The recipe's mode-seeking term acts on
G_K's output and noise z_K, and with `method.mode_seeking_levels: all` on every G_k's (`_with_mode_seeking`).

Sampling runs coarse to fine (paper eq. 4): Ĩ_K = G_K(z_K), Ĩ_k = u(Ĩ_{k+1}) + G_k(z_k, u(Ĩ_{k+1})).
The noise of all levels is one flat vector per sample (`latent`): z_K (model.z_dim) followed by one
Gaussian noise plane per finer level (the official code uses one uniform plane per level), or with
`method.finer_noise_dim` one short Gaussian vector per finer level, tiled over its image (with
`method.finer_noise_grid` g, a g×g grid of them, upsampled).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.func
from torch import nn

from condgan.config import Config, register_method_config, setting
from condgan.errors import ConfigError
from condgan.methods.base import Method, Phase, StepInputs
from condgan.methods.class_splits import ClassSplitConfig
from condgan.methods.gan import SourceLossConfig, d_source_loss, g_source_loss
from condgan.nets import DataSpec
from condgan.nets.pyramid import (CoarseDiscriminator, CoarseGenerator, LevelDiscriminator, LevelGenerator,
                                  gaussian_pyramid, level_sizes, upsample)

# The finer levels' mode-seeking term draws 1/MODE_SEEKING_SHARE of the batch again (`_with_mode_seeking`).
MODE_SEEKING_SHARE = 4
# The coarsest level's cVAE KL weight as a fraction of method.coarse_vae_weight: BicycleGAN's 0.01 beside 10.
COARSE_KL_RATIO = 1e-3


@register_method_config
@dataclass(frozen=True)
class LAPGANConfig(SourceLossConfig):
    name: str = "lapgan"
    # Levels of the Laplacian pyramid, e.g. 3: 28→14→7, 32→16→8.
    pyramid_levels: int = setting(3, positive=True)
    # Where the recipe's mode-seeking term acts: the coarsest level only, or every level. The finer
    # levels meet it by adding noise to their residuals (docs/quality.md, "Mode seeking"), so only
    # "all" puts it there.
    mode_seeking_levels: str = setting("coarsest", choices=("coarsest", "all"))
    # The finer levels' D_k train at this multiple of optim.d_lr (the coarsest D at optim.d_lr): each
    # level is its own GAN, and the convolutional D_k gain from a faster rate where the coarsest MLP
    # D loses class accuracy (docs/methods-lapgan-selfcond.md, "Per-class diversity").
    finer_d_lr_scale: float = setting(1.0, positive=True)
    # Group size of the minibatch standard-deviation feature in the finer D_k (nets.pyramid.MinibatchStd;
    # 4 in ProGAN and StyleGAN2), 0: none. Real and generated batches are judged apart, so each group
    # holds one kind.
    finer_d_minibatch_std: int = setting(0, at_least=0)
    # The finer D_k also see each class's spread over the batch (nets.pyramid.ClassStd; CC-LAPGAN only):
    # a class that G_k makes less varied than the real one shows it, whatever the other classes do.
    finer_d_class_std: bool = False
    # The finer D_k also see l_k beside h_k + l_k (nets.pyramid.LevelDiscriminator): the paper's D_k sees
    # only the sum, so G_k can redraw the coarse content it was given (G_1's residuals reach twice the
    # real band's RMS, with 2.3× its content below the band: docs/methods-lapgan-selfcond.md).
    finer_d_sees_low: bool = False
    # The finer G_k also add their noise plane to each hidden layer, scaled per feature map by a learnt
    # weight from zero (nets.pyramid.LevelGenerator): a G_k that ignores its input plane (std over z
    # 0.03, docs/methods-lapgan-selfcond.md) gets the noise where its texture is made.
    finer_g_layer_noise: bool = False
    # 0: each finer G_k draws one Gaussian plane of per-pixel noise (the paper's); d > 0: a Gaussian
    # vector of d values tiled over the image (nets.pyramid.LevelGenerator; 8 in BicycleGAN), which G_k
    # cannot pass through as pixel noise (mode seeking then inflates the residuals instead:
    # docs/methods-lapgan-selfcond.md, "A noise vector for the finer G_k").
    finer_noise_dim: int = setting(0, at_least=0)
    # g > 1: each finer z_k is a g×g grid of such vectors, bilinearly upsampled over the image, so a
    # region's code sets that region's texture (nets.pyramid.LevelGenerator; needs finer_noise_dim);
    # the cVAE encoder then returns one code per cell. 1: one tiled vector.
    finer_noise_grid: int = setting(1, positive=True)
    # λ of BicycleGAN's cVAE term on the finer levels (10 in its code; 0: off; needs finer_noise_dim):
    # an encoder E_k maps half the batch's real residuals to z_k, G_k must rebuild them from it (L1,
    # weight λ) and the posterior stays near N(0, I) (KL, weight λ·finer_kl_ratio, the code's 0.01
    # beside 10), so z_k has to carry what l_k does not say about h_k (`_with_reconstruction`).
    finer_vae_weight: float = setting(0.0, at_least=0)
    # The finer levels' KL weight as a fraction of finer_vae_weight (BicycleGAN's 0.01 beside 10: 1/1000).
    # A smaller one lets E_k put more of the real residual into z_k (KL 17–25 nats at 1e-4 against
    # 1–3 at 1e-3 with a 4×4 noise grid: docs/methods-lapgan-selfcond.md, "A grid of noise codes for
    # the finer G_k").
    finer_kl_ratio: float = setting(1e-3, at_least=0)
    # λ_z of BicycleGAN's latent regression (its cLR-GAN half; 0.5 in its code; 0: off; needs
    # finer_vae_weight for the encoder): E_k must read the z_k back from G_k(z_k, l_k) of drawn noise,
    # λ_z·mean|μ(E_k(h̃_k, l_k)) − z_k| (h̃_k of the clamped image), with the gradient to G_k only, so
    # G_k cannot ignore z_k (`_with_latent_regression`).
    finer_latent_weight: float = setting(0.0, at_least=0)
    # The same cVAE term at the coarsest level (an MLP encoder of I_K and the class; 0: off): G_K must
    # rebuild real coarse images from their encoded z_K, so every class's real variety has a z.
    coarse_vae_weight: float = setting(0.0, at_least=0)
    # The same latent regression at the coarsest level (0: off; needs coarse_vae_weight): E_K must read
    # z_K back from G_K(z_K, c), per sample, so G_K cannot map the prior's z of a class to a few images
    # while the cVAE term covers the class only from the encoder's codes.
    coarse_latent_weight: float = setting(0.0, at_least=0)
    # The class also scales and shifts G_K's hidden units (FiLM; nets.pyramid.CoarseGenerator; CC-LAPGAN
    # only): with the class only concatenated to z, every class's samples spread about alike.
    coarse_class_gain: bool = False


@register_method_config
@dataclass(frozen=True)
class CCLAPGANConfig(LAPGANConfig, ClassSplitConfig):
    name: str = "cclapgan"


class LAPGAN(Method):
    """LAPGAN (`class_conditional=False`) or CC-LAPGAN (`True`: the class enters every level)."""

    def __init__(self, cfg: Config, spec: DataSpec, class_conditional: bool) -> None:
        name = cfg.method.name
        if not spec.is_image:
            raise ConfigError(f"config field method.name: {name!r} models images, found samples of shape {spec.sample_shape}")
        if cfg.model.arch != "auto":
            raise ConfigError(f"config field model.arch: {name!r} uses its own per-level nets (condgan.nets.pyramid); "
                              f"expected auto, found {cfg.model.arch!r}")
        channels, height, width = spec.sample_shape
        if height != width:
            raise ConfigError(f"config field method.name: {name!r} expects square images, found {height}x{width}")
        num_classes = spec.num_classes if class_conditional else 0
        for field in ("finer_d_class_std", "coarse_class_gain"):
            if getattr(cfg.method, field) and not num_classes:
                raise ConfigError(f"config field method.{field}: acts per class, so it needs class labels; "
                                  f"expected cclapgan, found {name!r}")
        super().__init__(num_classes, cfg.model.z_dim)
        self.conditional = class_conditional
        self.sizes = level_sizes(height, cfg.method.pyramid_levels)  # sizes[0] finest … sizes[K] coarsest
        self.K = len(self.sizes) - 1
        m = cfg.model
        self.G = nn.ModuleList(
            [LevelGenerator(channels, s, num_classes, m.g_channels, cfg.method.finer_g_layer_noise, cfg.method.finer_noise_dim,
                            encoder=cfg.method.finer_vae_weight > 0, noise_grid=cfg.method.finer_noise_grid)
             for s in self.sizes[:-1]]
            + [CoarseGenerator(m.z_dim, channels, self.sizes[-1], num_classes, m.hidden,
                               encoder=cfg.method.coarse_vae_weight > 0, class_gain=cfg.method.coarse_class_gain)]
        )
        self.D = nn.ModuleList(
            [LevelDiscriminator(channels, s, num_classes, m.d_channels, m.dropout, cfg.method.finer_d_minibatch_std,
                                cfg.method.finer_d_class_std, cfg.method.finer_d_sees_low)
             for s in self.sizes[:-1]]
            + [CoarseDiscriminator(channels, self.sizes[-1], num_classes, m.hidden, m.dropout)]
        )
        self.g_source_loss, self.d_source_loss = cfg.method.g_source_loss, cfg.method.d_source_loss
        self._lrs = (cfg.optim.d_lr, cfg.optim.g_lr)
        self._finer_d_lr_scale = cfg.method.finer_d_lr_scale
        self.mode_seeking_finer = cfg.method.mode_seeking_levels == "all"
        self.vae_weights = [cfg.method.finer_vae_weight] * self.K + [cfg.method.coarse_vae_weight]
        self.kl_ratios = [cfg.method.finer_kl_ratio] * self.K + [COARSE_KL_RATIO]
        for where in ("finer", "coarse"):
            if getattr(cfg.method, f"{where}_latent_weight") > 0 and getattr(cfg.method, f"{where}_vae_weight") == 0:
                raise ConfigError(f"config fields method.{where}_latent_weight and method.{where}_vae_weight: the "
                                  f"latent regression reads z with the cVAE term's encoder, found "
                                  f"method.{where}_vae_weight 0; set it > 0 (10 in BicycleGAN)")
        self.latent_weights = [cfg.method.finer_latent_weight] * self.K + [cfg.method.coarse_latent_weight]

    # ------------------------------------------------------------------ noise and sampling

    @property
    def _finer_noise_sizes(self) -> list[int]:
        """Length of z_k for the finer levels 0 … K−1: a size_k × size_k plane, or
        method.finer_noise_dim × finer_noise_grid²."""
        return [g.noise_size for g in self.G[:-1]]

    @property
    def latent_dim(self) -> int:
        """z_K (z_dim) plus each finer level's noise (`_finer_noise_sizes`)."""
        return self.z_dim + sum(self._finer_noise_sizes)

    def latent(self, n: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=device, generator=generator)

    def _split(self, z: torch.Tensor) -> list[torch.Tensor]:
        """[z_0, …, z_K] from the flat noise: z_K first, then the noise of levels K−1, …, 0."""
        parts = torch.split(z, [self.z_dim] + self._finer_noise_sizes[::-1], dim=1)
        return list(reversed(parts))

    def _c(self, c: torch.Tensor | None) -> torch.Tensor | None:
        return c if self.conditional else None

    def generate_levels(self, z: torch.Tensor, c: torch.Tensor | None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Coarse-to-fine sampling: (images [Ĩ_0, …, Ĩ_K], generated Laplacian pyramid [h̃_0, …, h̃_{K−1}, Ĩ_K])."""
        zs, c = self._split(z), self._c(c)
        images = [self.G[self.K](zs[self.K], c)]
        bands = [images[0]]
        for k in range(self.K - 1, -1, -1):
            low = upsample(images[0])
            h = self.G[k](zs[k], low, c)
            images.insert(0, low + h)
            bands.insert(0, h)
        return images, bands

    def generate(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return self.generate_levels(z, c)[0][0].clamp(-1.0, 1.0)

    # ------------------------------------------------------------------ training

    def phases(self) -> list[Phase]:
        d_lr, g_lr = self._lrs
        out = []
        for k in range(self.K + 1):
            d_lr_k = d_lr if k == self.K else d_lr * self._finer_d_lr_scale
            out += [Phase(f"D{k}", "D", self.D[k], d_lr_k, level=k), Phase(f"G{k}", "G", self.G[k], g_lr, level=k)]
        return out

    def _real(self, k: int, step: StepInputs) -> torch.Tensor:
        """I_k of the real batch (its Gaussian pyramid is built once per step, without gradients)."""
        if "real_I0" not in step.cache:
            with torch.no_grad():
                for j, image in enumerate(gaussian_pyramid(step.real_x, self.K + 1)):
                    step.cache[f"real_I{j}"] = image
        return step.cache[f"real_I{k}"]

    def _low(self, k: int, step: StepInputs) -> torch.Tensor:
        """l_k = u(I_{k+1}) of the real batch, the condition of level k < K."""
        return upsample(self._real(k + 1, step))

    def _fake(self, k: int, step: StepInputs) -> torch.Tensor:
        """G_k's output for this step, shared by D_k (detached) and G_k: Ĩ_K or h̃_k."""
        key = f"fake{k}"
        if key not in step.cache:
            z = self._split(step.gen_z)[k]
            if k == self.K:
                step.cache[key] = self.G[k](z, self._c(step.gen_c))
            else:  # condition on the real low-pass image, hence on that image's class
                step.cache[key] = self.G[k](z, self._low(k, step), self._c(step.real_c))
        return step.cache[key]

    def _judge(self, k: int, x: torch.Tensor, c: torch.Tensor, step: StepInputs) -> torch.Tensor:
        """D_k's logit for x = I_K (coarsest) or x = h_k (with the real l_k), of the image D_k sees
        augmented by the recipe's DiffAugment (`d_terms`)."""
        if k == self.K:
            return self.D[k](self.d_terms.augment(x), self._c(c))
        low = self._low(k, step)
        if self.d_terms.policy:  # D_k reads h + l_k (pyramid.LevelDiscriminator): augment that image; with
            x = self.d_terms.augment(x + low) - low  # finer_d_sees_low, l_k beside it stays as it is for both
        return self.D[k](x, low, self._c(c))

    def loss(self, phase: Phase, step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        k = phase.level
        assert k is not None, f"phase {phase.name} has no pyramid level"
        fake = self._fake(k, step)
        # Classes: real samples carry theirs; fakes of the coarsest level are drawn (gen_c), fakes of
        # finer levels share the real image's class with the low-pass image they refine.
        fake_c = step.gen_c if k == self.K else step.real_c
        if phase.role == "D":
            real = self._real(k, step) if k == self.K else self._real(k, step) - self._low(k, step)
            real = self.d_terms.real(real, step.step)
            s_real = self._judge(k, real, step.real_c, step)
            s_fake = self._judge(k, fake.detach(), fake_c, step)
            return self.d_terms.with_r1(d_source_loss(s_real, s_fake, self.d_source_loss),
                                        {f"D{k}/p_real": torch.sigmoid(s_real).mean().detach(),
                                         f"D{k}/p_fake": torch.sigmoid(s_fake).mean().detach()},
                                        s_real, real, step.step, name=f"D{k}/r1")
        loss, stats = self._with_mode_seeking(k, g_source_loss(self._judge(k, fake, fake_c, step), self.g_source_loss), fake, step)
        return self._with_latent_regression(k, *self._with_reconstruction(k, loss, stats, step), fake, step)

    def _with_reconstruction(self, k: int, loss: torch.Tensor, stats: dict[str, torch.Tensor],
                             step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G_k's loss with BicycleGAN's cVAE term (Zhu et al. 2017, eq. 2–3) where level k's weight λ
        (`method.finer_vae_weight`, or `coarse_vae_weight` for k = K) is > 0: the first half of the
        batch's real h_k (I_K at the coarsest level) is encoded, z = μ + σ·ε with ε that half's own
        noise z_k of this step (so the step stays a function of its inputs and resumes exactly), and
        G_k(z, l_k) (G_K(z)) must return it, with the real images' classes: λ·mean|G_k(z, …) − h_k| +
        λ·r·KL(N(μ, σ²) ‖ N(0, I)) (summed over z, mean over samples), r = `method.finer_kl_ratio` at the
        finer levels and 1/1000 (`COARSE_KL_RATIO`) at the coarsest."""
        weight = self.vae_weights[k]
        if weight == 0:
            return loss, stats
        n = max(1, len(step.real_x) // 2)
        c = self._c(step.real_c)
        c = None if c is None else c[:n]
        eps = self._split(step.gen_z)[k][:n]
        if k == self.K:
            target = self._real(k, step)[:n]
            mu, logvar = self.G[k].encoder(target, c)
            rebuilt = self.G[k](mu + (0.5 * logvar).exp() * eps, c)
        else:
            low = self._low(k, step)[:n]
            target = self._real(k, step)[:n] - low
            mu, logvar = self.G[k].encoder(target, low)
            rebuilt = self.G[k](mu + (0.5 * logvar).exp() * eps, low, c)
        l1 = (rebuilt - target).abs().mean()
        kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(dim=1).mean()
        return (loss + weight * (l1 + self.kl_ratios[k] * kl),
                {**stats, f"G{k}/reconstruction": l1.detach(), f"G{k}/kl": kl.detach()})

    def _with_latent_regression(self, k: int, loss: torch.Tensor, stats: dict[str, torch.Tensor], fake: torch.Tensor,
                                step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G_k's loss with BicycleGAN's latent regression (Zhu et al. 2017, eq. 4, the cLR-GAN half)
        where level k's weight λ_z (`method.finer_latent_weight`, or `coarse_latent_weight` for k = K)
        is > 0: λ_z·mean|μ(E_k(h̃_k, l_k)) − z_k| over the step's generated residuals (of the images
        clamped to [−1, 1]) and their drawn z_k; at the coarsest level |μ(E_K(Ĩ_K, c)) − z_K| of the
        clamped coarse images and their drawn classes. The encoder's weights are read detached, as
        BicycleGAN updates only G with this term: E_k learns from real images (the cVAE term), and
        G_k must make images from which that encoder reads z_k back, so it cannot ignore its noise."""
        weight = self.latent_weights[k]
        if weight == 0:
            return loss, stats
        encoder = self.G[k].encoder
        weights = {name: p.detach() for name, p in encoder.named_parameters()}
        # E_k reads the image as sampled (clamped to the data range): unclamped, G_k wrote z_k into
        # residuals of RMS 1.8 against the real 0.27 where the clamp hides them
        if k == self.K:
            inputs = (fake.clamp(-1.0, 1.0), self._c(step.gen_c))
        else:
            low = self._low(k, step)
            inputs = ((low + fake).clamp(-1.0, 1.0) - low, low)
        mu, _ = torch.func.functional_call(encoder, weights, inputs)
        latent = (mu - self._split(step.gen_z)[k]).abs().mean()
        return loss + weight * latent, {**stats, f"G{k}/latent_regression": latent.detach()}

    def _with_mode_seeking(self, k: int, loss: torch.Tensor, fake: torch.Tensor,
                           step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G_k's loss with the recipe's mode-seeking term (methods/recipe.py). At the coarsest level
        the pairs are the batch's samples of one class (of the batch, for LAPGAN). A finer level's
        condition l_k is one per real image, so the batch has no pairs: the first quarter of the
        batch is drawn again under its own l_k (and class) from the noise planes of other samples,
        which costs G_k a quarter-batch forward and backward. The finer levels take the term only with
        `method.mode_seeking_levels: all`."""
        z, name = self._split(step.gen_z)[k], f"G{k}/mode_seeking"
        if k == self.K:
            return self.g_terms.of_batch(loss, {}, fake, z, self._c(step.gen_c), name)
        if not self.mode_seeking_finer or self.g_terms.mode_seeking == 0 or len(z) < 2:
            return loss, {}
        n = max(2, len(z) // MODE_SEEKING_SHARE)
        other = z.roll(1, dims=0)[:n]  # another sample's plane: independent of each sample's own
        c = self._c(step.real_c)
        again = self.G[k](other, self._low(k, step)[:n], None if c is None else c[:n])
        return self.g_terms.with_mode_seeking(loss, {}, fake[:n], again, z[:n], other, name)
