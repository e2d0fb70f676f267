"""The 2D Gaussian mixtures of Self-Conditioned GAN (Liu et al., CVPR 2020, Sec. 4.1).

- ring: 8 modes with means (cos 2πi/8, sin 2πi/8), i = 0..7, variance 1e-4 (std 0.01).
- grid: 25 modes with means (2i − 4, 2j − 4), i, j = 0..4, variance 0.0025 (std 0.05);
  mode index 5i + j, as in the reference code (stevliu/self-conditioned-gan, 2d_mix/inputs.py).

Modes are drawn uniformly; a point's label is the index of the mode it was drawn from. Points are
not rescaled (the grid spans about [−4.2, 4.2]). The paper's text is followed for the ring's
radius: its reference code defaults to radius 2.0.
"""

from __future__ import annotations

import hashlib
import math

import torch

from condgan.data.base import LabelledData

# The reference code trains on 100000 points (2d_mix/train.py, --npts).
DEFAULT_NUM_SAMPLES = 100_000


def ring_modes() -> tuple[torch.Tensor, float]:
    """(means 8×2, std) of the ring: unit circle, std 0.01."""
    angles = 2 * math.pi * torch.arange(8, dtype=torch.float64) / 8
    return torch.stack([angles.cos(), angles.sin()], dim=1).float(), 0.01


def grid_modes() -> tuple[torch.Tensor, float]:
    """(means 25×2, std) of the grid: (2i − 4, 2j − 4) at index 5i + j, std 0.05."""
    i, j = torch.meshgrid(torch.arange(5), torch.arange(5), indexing="ij")
    return torch.stack([2 * i - 4, 2 * j - 4], dim=-1).reshape(25, 2).float(), 0.05


TOYS = {"ring": ring_modes, "grid": grid_modes}


def sample_mixture(means: torch.Tensor, std: float, num_samples: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw points from an isotropic Gaussian mixture with uniform weights; returns (x N×D, labels N)."""
    labels = torch.randint(len(means), (num_samples,), generator=generator)
    x = means[labels] + std * torch.randn(num_samples, means.shape[1], generator=generator)
    return x, labels


def split_seed(seed: int, split: str) -> int:
    """The generator seed of a split: `seed` itself for "train", a hash of (split, seed) otherwise.

    torch's CPU generator (mt19937) keeps only the low 32 bits of a seed, so an offset such as
    seed + 2**32 would silently repeat the train draw; a hash gives an unrelated stream.
    """
    if split == "train":
        return seed
    return int.from_bytes(hashlib.sha256(f"{split}:{seed}".encode()).digest()[:4], "little")


def load_toy(name: str, split: str = "train", num_samples: int = DEFAULT_NUM_SAMPLES, seed: int = 0) -> LabelledData:
    """`num_samples` points of toy `name` ("ring" or "grid"), reproducible from (`split`, `seed`)."""
    means, std = TOYS[name]()
    generator = torch.Generator().manual_seed(split_seed(seed, split))
    x, y = sample_mixture(means, std, num_samples, generator)
    return LabelledData(stored=x, y=y, class_names=tuple(f"mode {k}" for k in range(len(means))), name=name)
