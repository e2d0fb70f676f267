"""Discriminators that take the class as an input, D(x, c) → one logit (cGAN).

Two ways of giving D the class, both wrapped around any architecture of `build_pair`:

* `ConcatDiscriminator` (Mirza & Osindero 2014, §4: "y is fed into both the discriminator and
  generator as additional input layer"): the one-hot class is concatenated to the input — to a
  2D point as K extra coordinates, to an image as K constant extra channels (the class map
  one_hot(c) broadcast over H×W, as image cGAN implementations do, e.g. pix2pix-style
  conditioning). The wrapped body is an unconditional D built for C + K input channels.
* `ProjectionDiscriminator` (Miyato & Koyama 2018, eq. 3): D(x, c) = ψ(φ(x)) + ⟨V e_c, φ(x)⟩,
  with φ the body's feature layer, ψ its linear source head, and V a learnt class embedding of
  the feature width (`nn.Embedding`, K × dim φ). The inner product is the log-ratio term
  log q(c|x)/p(c|x) of their derivation; no class enters as input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from condgan.config import ModelConfig
from condgan.nets import DataSpec, build_pair


class ConcatDiscriminator(nn.Module):
    """D(x, c) = body([x, one_hot(c)]) with the one-hot broadcast to class maps for images."""

    def __init__(self, body: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.body, self.num_classes = body, num_classes

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(c, self.num_classes).to(x.dtype)
        if x.dim() == 4:  # N×K → N×K×H×W constant maps
            onehot = onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        source, _ = self.body(torch.cat([x, onehot], dim=1))
        return source


class ProjectionDiscriminator(nn.Module):
    """D(x, c) = ψ(φ(x)) + ⟨embed(c), φ(x)⟩ (Miyato & Koyama 2018, eq. 3)."""

    def __init__(self, body: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.body, self.num_classes = body, num_classes
        self.embed = nn.Embedding(num_classes, body.feature_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        phi = self.body.features(x)
        return self.body.source(phi).squeeze(1) + (self.embed(c) * phi).sum(dim=1)


def build_cgan_pair(model: ModelConfig, spec: DataSpec, variant: str) -> tuple[nn.Module, nn.Module]:
    """(G(z, c), D(x, c)) for a cGAN: G gets one-hot c next to z (as every net here), D per `variant`."""
    K = spec.num_classes
    G, _ = build_pair(model, spec, K)
    # D's body is an unconditional D of the same architecture (the G built alongside is dropped):
    # for "concat" built for C + K input channels (images) or dim + K coordinates (points).
    if variant == "projection":
        _, body = build_pair(model, spec, 0)
        return G, ProjectionDiscriminator(body, K)
    wider = (spec.sample_shape[0] + K, *spec.sample_shape[1:])
    _, body = build_pair(model, DataSpec(wider, K), 0)
    return G, ConcatDiscriminator(body, K)
