"""DCGAN-style generator and discriminator for 28, 32 and 64 px images (Radford et al. 2016).

The class enters G as a one-hot vector concatenated with z, as in the AC-GAN paper's generators
(their first layer takes the noise and the one-hot class together). D returns a source logit
(real vs generated) and, when `num_classes > 0`, class logits from the same features (AC-GAN's
two heads). `D.features` exposes the feature layer (used by the Self-Conditioned GAN's k-means).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from condgan.errors import ConfigError

SUPPORTED_RESOLUTIONS = (28, 32, 64)


def _levels(resolution: int) -> tuple[int, int]:
    """(start size, number of ×2 levels): 28 = 7·2², 32 = 4·2³, 64 = 4·2⁴."""
    if resolution not in SUPPORTED_RESOLUTIONS:
        raise ConfigError(
            f"model.arch dcgan: expected image resolution in {SUPPORTED_RESOLUTIONS}, found {resolution}"
        )
    start = 7 if resolution == 28 else 4
    return start, (resolution // start).bit_length() - 1


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim: int, num_classes: int, channels: int, resolution: int, width: int = 64) -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        self.start, levels = _levels(resolution)
        widths = [width * 2 ** (levels - 1 - i) for i in range(levels)]  # e.g. 256, 128, 64 for 32 px
        self.fc = nn.Linear(z_dim + num_classes, widths[0] * self.start**2, bias=False)
        self.fc_norm = nn.BatchNorm2d(widths[0])
        blocks: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            blocks += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(True)]
        blocks += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            # c: class indices, or float (N, num_classes) class vectors (blended one-hots, for interpolation).
            onehot = c.to(z.dtype) if c.is_floating_point() else F.one_hot(c, self.num_classes).to(z.dtype)
            z = torch.cat([z, onehot], dim=1)
        h = self.fc(z).view(z.shape[0], -1, self.start, self.start)
        return self.blocks(F.relu(self.fc_norm(h)))


class DCGANDiscriminator(nn.Module):
    def __init__(
        self, num_classes: int, channels: int, resolution: int, width: int = 64, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        start, levels = _levels(resolution)
        layers: list[nn.Module] = []
        w_in = channels
        for i in range(levels):
            w_out = width * 2**i
            layers.append(nn.Conv2d(w_in, w_out, 4, 2, 1, bias=i == 0))
            if i > 0:  # no normalisation on the input layer (DCGAN)
                layers.append(nn.BatchNorm2d(w_out))
            layers.append(nn.LeakyReLU(0.2, True))
            if dropout:
                layers.append(nn.Dropout(dropout))
            w_in = w_out
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.feature_dim = w_in * start**2
        self.source = nn.Linear(self.feature_dim, 1)
        self.classes = nn.Linear(self.feature_dim, num_classes) if num_classes else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.body(x)
        return self.source(h).squeeze(1), (self.classes(h) if self.classes is not None else None)
