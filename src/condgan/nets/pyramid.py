"""Laplacian pyramids and the per-level networks of LAPGAN (Denton et al. 2015, "Deep Generative
Image Models using a Laplacian Pyramid of Adversarial Networks").

Pyramid (paper §3.2). With d(·) a fixed blur-and-decimate (j×j → j/2×j/2) and u(·) a fixed
upsample (j×j → 2j×2j), the Gaussian pyramid of an image I is I_0 = I, I_{k+1} = d(I_k), k < K;
the Laplacian pyramid holds the band-pass images h_k = I_k − u(I_{k+1}) for k < K and the
low-pass residual h_K = I_K. Reconstruction runs back up: I_K = h_K, I_k = u(I_{k+1}) + h_k,
exact up to float rounding because u is a fixed deterministic map (nothing about d or u has to be
invertible). Level 0 is the finest, K = levels − 1 the coarsest (the paper's indexing).

d and u here are bilinear resampling by exactly ½ and 2 (`F.interpolate`, half-pixel centres):
d with antialiasing, which for a factor of 2 is the separable triangle filter [1, 3, 3, 1]/8
followed by decimation (a blur + decimate, as the paper asks); u is the matching bilinear
interpolation. The official code (facebookarchive/eyescream, cifar/datasets/coarse_to_fine_cifar10.lua)
builds its coarse images with Torch's bilinear `image.scale` in the same way.

Level networks follow the official CIFAR-10 coarse-to-fine scripts (train_cifar_coarse_to_fine*.lua):
- G_k (k < K): input planes [noise plane z_k, l_k = u(I_{k+1}), (CC) class plane]; three
  same-size convolutions 7×7, 7×7, 5×5 with ReLU between; a linear output, the residual h̃_k.
  With method.finer_g_layer_noise, z_k is also added to both hidden layers with a learnt scale;
  with method.finer_noise_dim, z_k is a short vector tiled over the image instead of a plane (or
  with method.finer_noise_grid a grid of them, upsampled), and with method.finer_vae_weight an
  encoder E_k (BicycleGAN's) maps a real residual to its z_k.
- D_k (k < K): the residual is added to the low-pass image before the first layer (paper §3.3:
  "l_k ... is explicitly added to h_k or h̃_k before the first convolution layer"), a class plane
  is concatenated (CC); convolutions 5×5 and 5×5 stride 2 with ReLU, dropout, a linear logit.
  With method.finer_d_sees_low, l_k itself is concatenated too, so D_k judges the image beside its
  condition.
  With a minibatch-std group (method.finer_d_minibatch_std), one more feature map before the logit:
  the features' standard deviation over groups of samples (`MinibatchStd`); with
  method.finer_d_class_std, another: their standard deviation over the batch's samples of each
  sample's class (`ClassStd`).
- The coarsest level is a fully connected GAN (paper §4: the 8×8 CIFAR level is fully connected).
The class plane is Linear(one-hot c) → ReLU reshaped to one H×W map, as in the official CC scripts;
the coarsest D takes the class through a projection term instead (`CoarseDiscriminator`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from condgan.errors import ConfigError

# The coarsest level keeps at least 5×5 pixels, so every finer level has ≥ 10 px, the least that
# D_k's two valid 5×5 convolutions (the second with stride 2) leave a 1×1 map of.
MIN_COARSE_SIZE = 5


def downsample(x: torch.Tensor) -> torch.Tensor:
    """d(·): blur with the triangle filter and decimate by 2 (antialiased bilinear, N×C×H×W → H/2×W/2)."""
    return F.interpolate(x, size=(x.shape[-2] // 2, x.shape[-1] // 2), mode="bilinear",
                         align_corners=False, antialias=True)


def upsample(x: torch.Tensor) -> torch.Tensor:
    """u(·): bilinear interpolation to twice the size (N×C×H×W → 2H×2W)."""
    return F.interpolate(x, size=(x.shape[-2] * 2, x.shape[-1] * 2), mode="bilinear", align_corners=False)


def level_sizes(resolution: int, levels: int) -> list[int]:
    """Side lengths of levels 0 (finest) … K (coarsest); refuses sizes that do not halve exactly."""
    if levels < 1:
        raise ConfigError(f"config field method.pyramid_levels: expected >= 1, found {levels}")
    coarsest = resolution // 2 ** (levels - 1)
    if resolution % 2 ** (levels - 1) or coarsest < MIN_COARSE_SIZE:
        raise ConfigError(
            f"config field method.pyramid_levels: {levels} levels need the resolution {resolution} to halve "
            f"exactly {levels - 1} times down to at least {MIN_COARSE_SIZE} px; use fewer levels or another data.resolution"
        )
    return [resolution // 2**k for k in range(levels)]


def gaussian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[I_0, …, I_K] with I_0 = x and I_{k+1} = d(I_k)."""
    out = [x]
    for _ in range(levels - 1):
        out.append(downsample(out[-1]))
    return out


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[h_0, …, h_K]: h_k = I_k − u(I_{k+1}) for k < K, h_K = I_K."""
    g = gaussian_pyramid(x, levels)
    return [g[k] - upsample(g[k + 1]) for k in range(levels - 1)] + [g[-1]]


def reconstruct(bands: list[torch.Tensor]) -> torch.Tensor:
    """I_0 from [h_0, …, h_K]: I_K = h_K, then I_k = u(I_{k+1}) + h_k."""
    image = bands[-1]
    for h in reversed(bands[:-1]):
        image = upsample(image) + h
    return image


class ClassPlane(nn.Module):
    """One H×W feature map from the class: ReLU(Linear(one-hot c)), as in the official CC-LAPGAN."""

    def __init__(self, num_classes: int, size: int) -> None:
        super().__init__()
        self.num_classes, self.size = num_classes, size
        self.fc = nn.Linear(num_classes, size * size)

    def forward(self, c: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        plane = F.relu(self.fc(F.one_hot(c, self.num_classes).to(dtype)))
        return plane.view(-1, 1, self.size, self.size)


class LevelGenerator(nn.Module):
    """G_k(z_k, l_k[, c]) → h̃_k for a finer level: noise plane + low-pass image (+ class plane) in.
    `layer_noise`: the noise plane is also added to the output of each hidden convolution, scaled per
    feature map by a learnt weight that starts at zero (the noise inputs of StyleGAN, Karras et al.
    2019, §2 — here the level's own z_k rather than fresh noise, so a sample stays a function of its
    z and fixed-z grids and interpolations keep working).
    `noise_dim` > 0: z_k is a vector of that many values in place of the plane of per-pixel noise,
    entering as BicycleGAN's tiled input (z tiled over the image as constant maps beside the
    condition, Zhu et al. 2017, §3.3 and Fig. 4): a first convolution over constant maps adds one
    value per feature map, so it is written as Linear(z_k) added to the first layer's maps — the
    same up to the zero padding at the borders, without a convolution over the constant maps. A
    constant map varies no pixel on its own: what G_k makes of it varies with the structure of l_k,
    so z_k can set a texture but cannot be passed through as pixel noise.
    `noise_grid` g > 1: z_k is a g×g grid of such vectors (noise_dim·g² values, code-major), each
    mapped by the same Linear and the g×g maps bilinearly upsampled to the image: the code of a
    region sets that region's texture, where one tiled code can only modulate the whole image by the
    structure of l_k (g = 1 is the tiled vector; linear maps commute with the upsampling, so mapping
    the g×g codes first is the same as mapping upsampled codes, at g² rather than size² positions)."""

    def __init__(self, channels: int, size: int, num_classes: int, width: int = 64, layer_noise: bool = False,
                 noise_dim: int = 0, encoder: bool = False, noise_grid: int = 1) -> None:
        super().__init__()
        if noise_grid > 1 and not noise_dim:
            raise ConfigError("config fields method.finer_noise_grid and method.finer_noise_dim: the grid holds noise "
                              "vectors, found method.finer_noise_dim 0; set it > 0 or method.finer_noise_grid to 1")
        if not 1 <= noise_grid <= size:
            raise ConfigError(f"config field method.finer_noise_grid: expected 1 to {size} (the finer level's "
                              f"side in pixels), found {noise_grid}")
        if layer_noise and noise_dim:
            raise ConfigError("config fields method.finer_g_layer_noise and method.finer_noise_dim: the layer noise "
                              f"adds the noise plane, found a noise vector of {noise_dim}; set one of them")
        if encoder and not noise_dim:
            raise ConfigError("config fields method.finer_vae_weight and method.finer_noise_dim: the encoder returns "
                              "a noise vector, found method.finer_noise_dim 0; set it > 0 (8 in BicycleGAN)")
        self.size, self.noise_dim, self.noise_grid = size, noise_dim, noise_grid
        self.class_plane = ClassPlane(num_classes, size) if num_classes else None
        self.noise_in = nn.Linear(noise_dim, width) if noise_dim else None
        # trained with G_k (it is in G_k's optimiser), unused when sampling
        self.encoder = LevelEncoder(channels, noise_dim, width, noise_grid) if encoder else None
        planes = (0 if noise_dim else 1) + channels + (1 if num_classes else 0)
        self.net = nn.Sequential(
            nn.Conv2d(planes, width, 7, padding=3), nn.ReLU(True),
            nn.Conv2d(width, width, 7, padding=3), nn.ReLU(True),
            nn.Conv2d(width, channels, 5, padding=2),
        )
        # one weight per feature map of each hidden convolution; absent when off, so old checkpoints load
        self.noise_weights = nn.ParameterList([nn.Parameter(torch.zeros(width)) for _ in range(2)]) if layer_noise else None

    @property
    def noise_size(self) -> int:
        """Length of z_k: size² (a plane) or noise_dim·noise_grid² (vectors)."""
        return self.noise_dim * self.noise_grid**2 or self.size * self.size

    def _noise_maps(self, z: torch.Tensor) -> torch.Tensor:
        """The noise vectors' share of the first convolution: N×width×1×1 (tiled) or N×width×size×size."""
        g = self.noise_grid
        maps = self.noise_in(z.view(-1, self.noise_dim, g, g).movedim(1, -1)).movedim(-1, 1)
        return maps if g == 1 else F.interpolate(maps, size=(self.size, self.size), mode="bilinear", align_corners=False)

    def forward(self, z: torch.Tensor, low: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """`z`: N×`noise_size` noise, `low`: N×C×size×size = u(I_{k+1}); returns the residual."""
        plane = None if self.noise_in is not None else z.view(-1, 1, self.size, self.size)
        inputs = [low] if plane is None else [plane, low]
        if self.class_plane is not None:
            inputs.append(self.class_plane(c, low.dtype))
        x = torch.cat(inputs, dim=1)
        if self.noise_in is not None:
            return self.net[1:](self.net[0](x) + self._noise_maps(z))
        if self.noise_weights is None:
            return self.net(x)
        for i, layer in enumerate(self.net):
            x = layer(x)
            if i in (0, 2):  # the two hidden convolutions, before their ReLU
                x = x + self.noise_weights[i // 2].view(1, -1, 1, 1) * plane
        return x


class LevelEncoder(nn.Module):
    """E_k(h_k, l_k) → (μ, log σ²) of a noise vector of `noise_dim` values: BicycleGAN's encoder
    (Zhu et al. 2017, §3.1 cVAE-GAN) for a finer level, which reads the real residual next to its
    low-pass image and returns the Gaussian posterior of the z_k that should make it. Two 4×4
    stride-2 convolutions, average pooling to `grid`×`grid` cells (global for 1) and one linear layer
    per cell, shared: a grid of codes as `LevelGenerator` reads it (code-major, N×noise_dim·grid²)."""

    def __init__(self, channels: int, noise_dim: int, width: int = 64, grid: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(2 * channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(width, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True),
            nn.AdaptiveAvgPool2d(grid),
        )
        self.out = nn.Linear(width, 2 * noise_dim)

    def forward(self, h: torch.Tensor, low: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cells = self.out(self.body(torch.cat([h, low], dim=1)).movedim(1, -1))  # N×grid×grid×2·noise_dim
        mu, logvar = (part.movedim(-1, 1).flatten(1) for part in cells.chunk(2, dim=-1))
        return mu, logvar


class MinibatchStd(nn.Module):
    """The minibatch standard-deviation feature (Karras et al. 2018, "Progressive Growing of GANs",
    §3; group form of StyleGAN2's discriminator): the batch is cut into groups of `group` samples
    (sample i in group i mod N/g), each feature's standard deviation at each position is taken over
    its group, averaged over features and positions, and appended to every sample of the group as one
    constant feature map. A D that sees only one sample at a time cannot tell that a generator makes
    the same texture for every condition; this statistic shows it. Where the batch does not divide by
    `group`, the group is the largest divisor of the batch below it (1: the map is a constant)."""

    def __init__(self, group: int) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        g = max(d for d in range(1, min(self.group, n) + 1) if n % d == 0)
        y = x.reshape(g, n // g, *x.shape[1:])
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # one per group
        return torch.cat([x, std.view(1, -1, 1, 1, 1).expand(g, -1, 1, h, w).reshape(n, 1, h, w)], dim=1)


class ClassStd(nn.Module):
    """The minibatch standard-deviation feature taken over the samples of one class (a class-grouped
    form of Karras et al. 2018, §3): for each class in the batch, each feature's standard deviation at
    each position over the batch's samples of that class, averaged over features and positions, is
    appended to every sample of the class as one constant feature map. `MinibatchStd` shows D a
    batch's spread over all classes, which a generator can match by keeping the classes apart; this
    shows it each class's own spread, so a class that the generator makes less varied than the real
    one is told apart from it. A class with one sample in the batch gets (almost) 0 (real and generated
    batches at the finer levels share their classes, so both see it alike). Computed in float32."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        flat = x.flatten(1).float()
        members = F.one_hot(c, self.num_classes).to(flat.dtype).T  # classes × N
        counts = members.sum(dim=1, keepdim=True).clamp(min=1)
        mean = members @ flat / counts
        var = members @ (flat - mean[c]).square() / counts
        std = (var + 1e-8).sqrt().mean(dim=1)  # one per class
        return torch.cat([x, std[c].to(x.dtype).view(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)


class LevelDiscriminator(nn.Module):
    """D_k(h_k, l_k[, c]) → logit for a finer level; sees h_k + l_k (paper §3.3) and the class plane.
    `sees_low`: l_k as well, as more input planes (the condition beside the image, as in pix2pix's
    conditional D), so that an image whose coarse content departs from its l_k is told apart;
    `minibatch_std` > 0: the last feature maps gain `MinibatchStd` over groups of that size;
    `class_std`: they gain `ClassStd` (needs classes)."""

    def __init__(self, channels: int, size: int, num_classes: int, width: int = 64, dropout: float = 0.0,
                 minibatch_std: int = 0, class_std: bool = False, sees_low: bool = False) -> None:
        super().__init__()
        self.class_plane = ClassPlane(num_classes, size) if num_classes else None
        self.sees_low = sees_low
        planes = channels * (2 if sees_low else 1) + (1 if num_classes else 0)
        out = ((size - 4) - 5) // 2 + 1  # 5×5 valid, then 5×5 stride 2 valid
        stats = [MinibatchStd(minibatch_std)] if minibatch_std else []  # parameter-free: old checkpoints load
        self.body = nn.Sequential(
            nn.Conv2d(planes, width, 5), nn.ReLU(True),
            nn.Conv2d(width, width, 5, stride=2), nn.ReLU(True),
            *stats, nn.Flatten(), nn.Dropout(dropout),
        )
        # Parameter-free and applied after `body`'s convolutions, so the state-dict keys stay as before.
        self.class_std = ClassStd(num_classes) if class_std else None
        self.logit = nn.Linear((width + len(stats) + int(class_std)) * out * out, 1)

    def forward(self, h: torch.Tensor, low: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        inputs = [h + low, low] if self.sees_low else [h + low]
        if self.class_plane is not None:
            inputs.append(self.class_plane(c, h.dtype))
        features = self.body[:-2](torch.cat(inputs, dim=1))  # the feature maps, before Flatten and Dropout
        if self.class_std is not None:
            features = self.class_std(features, c)
        return self.logit(self.body[-2:](features)).squeeze(1)


class CoarseEncoder(nn.Module):
    """E_K(I_K[, c]) → (μ, log σ²) of z_K: the coarsest level's encoder for the cVAE term
    (method.coarse_vae_weight), fully connected like the level's G and D (one-hot class next to the pixels)."""

    def __init__(self, z_dim: int, channels: int, size: int, num_classes: int, hidden: int = 400) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.net = nn.Sequential(
            nn.Linear(channels * size * size + num_classes, hidden), nn.LeakyReLU(0.2, True),
            nn.Linear(hidden, 2 * z_dim),
        )

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.flatten(1)
        if self.num_classes:
            x = torch.cat([x, F.one_hot(c, self.num_classes).to(x.dtype)], dim=1)
        mu, logvar = self.net(x).chunk(2, dim=1)
        return mu, logvar


class CoarseGenerator(nn.Module):
    """G_K(z_K[, c]) → I_K: a fully connected generator (one-hot class concatenated with z for CC);
    `encoder`: with a `CoarseEncoder`, trained with G_K and unused when sampling; `class_gain` (CC):
    both hidden layers are also scaled and shifted per unit by the class, h·(1 + γ_c) + β_c (FiLM,
    Perez et al. 2018; the class-conditional affine of conditional batch norm, de Vries et al. 2017),
    with γ, β from zero, so that each class can set how far its samples spread."""

    def __init__(self, z_dim: int, channels: int, size: int, num_classes: int, hidden: int = 400,
                 encoder: bool = False, class_gain: bool = False) -> None:
        super().__init__()
        self.num_classes, self.shape = num_classes, (channels, size, size)
        self.encoder = CoarseEncoder(z_dim, channels, size, num_classes, hidden) if encoder else None
        self.net = nn.Sequential(
            nn.Linear(z_dim + num_classes, hidden), nn.ReLU(True),
            nn.Linear(hidden, hidden), nn.ReLU(True),
            nn.Linear(hidden, channels * size * size),
        )
        self.gains = None
        if class_gain:  # LAPGAN (no classes) refuses it (methods/lapgan.py)
            self.gains = nn.ModuleList(nn.Embedding(num_classes, 2 * hidden) for _ in range(2))
            for gain in self.gains:
                nn.init.zeros_(gain.weight)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            z = torch.cat([z, F.one_hot(c, self.num_classes).to(z.dtype)], dim=1)
        if self.gains is None:
            return self.net(z).view(-1, *self.shape)
        h = z
        for i, gain in enumerate(self.gains):  # (Linear, ReLU) pairs, then the FiLM of that layer
            gamma, beta = gain(c).to(h.dtype).chunk(2, dim=1)
            h = self.net[2 * i + 1](self.net[2 * i](h)) * (1 + gamma) + beta
        return self.net[4](h).view(-1, *self.shape)


class CoarseDiscriminator(nn.Module):
    """D_K(I_K[, c]) → logit: fully connected features φ(I_K); for CC a projection term ⟨e_c, φ⟩.

    logit = ψ(φ(x)) + ⟨e_c, φ(x)⟩ with e_c a learnt class embedding (Miyato & Koyama 2018, eq. 3)
    rather than the official CC script's one-hot concatenated with the pixels: with the concatenated
    one-hot, the coarse level had not learnt the classes after 1,000 steps at Adam 2e-4 (its samples'
    class accuracy 0.23, real 0.87; 0.78 with the projection at 1,300), the start of CC-LAPGAN's
    within-class collapse (docs/methods-lapgan-selfcond.md, "Why the first version collapsed").
    """

    def __init__(self, channels: int, size: int, num_classes: int, hidden: int = 400, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * size * size, hidden), nn.LeakyReLU(0.2, True),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2, True), nn.Dropout(dropout),
        )
        self.source = nn.Linear(hidden, 1)
        self.embed = nn.Embedding(num_classes, hidden) if num_classes else None
        if self.embed is not None:  # ⟨e_c, φ⟩ starts at the scale of a unit-variance linear head
            nn.init.normal_(self.embed.weight, 0.0, hidden ** -0.5)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        phi = self.body(x)
        logit = self.source(phi).squeeze(1)
        if self.embed is not None:
            logit = logit + (self.embed(c) * phi).sum(dim=1)
        return logit
