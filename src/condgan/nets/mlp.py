"""MLP generator and discriminator for 2D points (the ring/grid toys).

Sizes follow the Self-Conditioned GAN paper's 2D setup (fully connected, ReLU, a few hundred units);
the class enters G as a one-hot vector concatenated with z.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _mlp(d_in: int, hidden: int, depth: int, act: nn.Module) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else hidden, hidden), act]
    return layers


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int, num_classes: int, dim: int = 2, hidden: int = 400, depth: int = 3) -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        self.net = nn.Sequential(*_mlp(z_dim + num_classes, hidden, depth, nn.ReLU(True)), nn.Linear(hidden, dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            z = torch.cat([z, F.one_hot(c, self.num_classes).to(z.dtype)], dim=1)
        return self.net(z)


class PointDiscriminator(nn.Module):
    """A feature `body` for 2D points, then a source head (one logit) and a class head (K logits, if K > 0)."""

    def __init__(self, body: nn.Sequential, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.body = body
        self.feature_dim = feature_dim
        self.source = nn.Linear(feature_dim, 1)
        self.classes = nn.Linear(feature_dim, num_classes) if num_classes else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.body(x)
        return self.source(h).squeeze(1), (self.classes(h) if self.classes is not None else None)


class MLPDiscriminator(PointDiscriminator):
    def __init__(self, num_classes: int, dim: int = 2, hidden: int = 400, depth: int = 3, dropout: float = 0.0) -> None:
        layers = _mlp(dim, hidden, depth, nn.LeakyReLU(0.2, True))
        if dropout:
            layers.append(nn.Dropout(dropout))
        super().__init__(nn.Sequential(*layers), hidden, num_classes)


class Maxout(nn.Module):
    """Linear to `out × pieces` units, then the max over each unit's `pieces` (Goodfellow et al. 2013)."""

    def __init__(self, d_in: int, out: int, pieces: int) -> None:
        super().__init__()
        self.out, self.pieces = out, pieces
        self.linear = nn.Linear(d_in, out * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(-1, self.out, self.pieces).amax(dim=2)


class SelfCondGenerator(nn.Module):
    """The Self-Conditioned GAN's 2D generator (its code's 2d_mix/models): the class enters as a learnt
    32-d embedding scaled to unit length and concatenated with z; then `depth` × (Linear, BatchNorm, ReLU)."""

    def __init__(self, z_dim: int, num_classes: int, dim: int = 2, hidden: int = 400, depth: int = 4,
                 embed_dim: int = 32) -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(z_dim + (embed_dim if num_classes else 0) if i == 0 else hidden, hidden),
                       nn.BatchNorm1d(hidden), nn.ReLU(True)]
        self.net = nn.Sequential(*layers, nn.Linear(hidden, dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, F.normalize(self.embed(c), dim=1)], dim=1)
        return self.net(z)


class MaxoutDiscriminator(PointDiscriminator):
    """The Self-Conditioned GAN's 2D discriminator: `depth` maxout layers of `hidden` units (5 pieces),
    then condgan's source and class heads (the same interface as `MLPDiscriminator`)."""

    def __init__(self, num_classes: int, dim: int = 2, hidden: int = 200, depth: int = 3, pieces: int = 5) -> None:
        body = nn.Sequential(*[Maxout(dim if i == 0 else hidden, hidden, pieces) for i in range(depth)])
        super().__init__(body, hidden, num_classes)
