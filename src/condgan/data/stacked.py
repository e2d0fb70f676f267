"""Stacked MNIST-like data: 1000 modes from three independent draws (Metz et al. 2017, Unrolled GANs;
used by VEEGAN, PacGAN and the Self-Conditioned GAN paper, §4.1).

Each sample stacks three images drawn independently and uniformly (with replacement) from a
10-class 28×28 grayscale dataset as its three channels; its label is the mode
100·c0 + 10·c1 + c2 of the three source classes, so there are 1000 equally likely modes. The
papers use MNIST; here Fashion-MNIST stands in when MNIST is not on disk ("stacked-fashion-mnist").
Images stay 28×28 (the official code resizes MNIST to 32×32 for its nets; the mode count does
not depend on it). The draw is reproducible from (split, seed); the test split draws from the base
dataset's test images.
"""

from __future__ import annotations

import os

import torch

from condgan.data.base import LabelledData
from condgan.data.idx import load_idx
from condgan.data.toy2d import split_seed
from condgan.errors import DataError

# Datasets that can be stacked; the stacked set has as many images as the base split by default.
BASES = ("mnist", "fashion-mnist")


def stack_draws(base: LabelledData, num_samples: int, generator: torch.Generator) -> LabelledData:
    """`num_samples` stacked images from `base` (10 classes, 1 channel): N×3×H×W, stored like `base`; y in [0, 1000)."""
    if base.num_classes != 10 or not base.is_image or base.sample_shape[0] != 1:
        raise DataError(f"{base.name}: stacking needs 10-class 1-channel images, found {base.num_classes} "
                        f"classes of shape {base.sample_shape}")
    idx = torch.randint(len(base), (num_samples, 3), generator=generator)  # three independent draws
    stored = base.stored[idx.reshape(-1)].reshape(num_samples, 3, *base.sample_shape[1:])
    c = base.y[idx]
    y = 100 * c[:, 0] + 10 * c[:, 1] + c[:, 2]
    names = tuple(f"{a}{b}{d}" for a in range(10) for b in range(10) for d in range(10))
    return LabelledData(stored=stored, y=y, class_names=names, name=f"stacked-{base.name}")


def load_stacked(base: str, split: str = "train", num_samples: int | None = None, seed: int = 0,
                 data_dir: str | os.PathLike | None = None) -> LabelledData:
    """Stacked `base` ("mnist" or "fashion-mnist"): `num_samples` images (default: as many as the
    base split holds), drawn with a generator seeded by (`split`, `seed`)."""
    data = load_idx(base, split, data_dir)
    generator = torch.Generator().manual_seed(split_seed(seed, split))
    return stack_draws(data, num_samples or len(data), generator)
