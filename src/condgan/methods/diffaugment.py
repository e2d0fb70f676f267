"""DiffAugment (Zhao, Liu, Lin, Zhu, Han 2020, "Differentiable Augmentation for Data-Efficient GAN
Training", NeurIPS; §3 and their policy "color,translation,cutout").

D only ever sees T(x), for real and generated images alike, in D's phase and in G's (augmenting
the real images alone lets G learn the augmentation; augmenting only in D's phase leaves G's
gradient unaugmented, paper §3.1). T is differentiable in x, so G's gradient flows through it.
Three transforms, applied in the order the policy names them, each with its own random draw per
image (the paper's settings):

    color        brightness x + (u − 0.5); saturation (x − mean_c) · 2u + mean_c (mean over the
                 channels of each pixel); contrast (x − mean) · (u + 0.5) + mean (mean over the
                 image), each u ~ U[0, 1) per image
    translation  a shift by an integer in [−⌊H/8 + ½⌋, ⌊H/8 + ½⌋] rows and likewise columns,
                 the uncovered border filled with 0 (mid-grey in [−1, 1])
    cutout       one square of side ⌊H/2 + ½⌋ (W likewise) set to 0, centred on a uniform pixel
                 and clipped at the borders

Draws come from `generator` (default: torch's global RNG, which the training loop seeds per
step, so a resumed run augments exactly as an uninterrupted one). The transform applied depends
only on the policy and the random state, never on whether the batch is real or generated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("translation", "cutout", "color")
TRANSLATION_RATIO = 1 / 8  # largest shift, as a fraction of the side
CUTOUT_RATIO = 1 / 2  # side of the cut square, as a fraction of the side


def parse_policy(text: str) -> tuple[str, ...]:
    """"none" → (); "translation,cutout" → ("translation", "cutout") (validated by the config rule)."""
    return () if text == "none" else tuple(text.split(","))


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    """T(x) for an N×C×H×W batch under `policy` (a tuple of `POLICIES`); `x` itself when empty."""
    for name in policy:
        x = _TRANSFORMS[name](x, generator)
    return x


def _uniform(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """u ~ U[0, 1) per image, shaped N×1×1×1."""
    return torch.rand(len(x), 1, 1, 1, generator=generator, device=_device(generator, x)).to(x.device, x.dtype)


def _randint(low: int, high: int, n: int, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """n integers in [low, high), shaped N×1×1 on `like`'s device."""
    out = torch.randint(low, high, (n, 1, 1), generator=generator, device=_device(generator, like))
    return out.to(like.device)


def _device(generator: torch.Generator | None, x: torch.Tensor) -> torch.device:
    """Where to draw: the generator's device, else the data's (the global RNG of that device)."""
    return generator.device if generator is not None else x.device


def color(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    x = x + (_uniform(x, generator) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_uniform(x, generator) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


def translation(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dy = _randint(-sh, sh + 1, n, x, generator)
    dx = _randint(-sw, sw + 1, n, x, generator)
    # Output pixel (i, j) reads input pixel (i − dy, j − dx) of the zero-padded image.
    rows = torch.arange(h, device=x.device)[None, :, None] - dy + sh  # N×H×1, indices into the padded image
    cols = torch.arange(w, device=x.device)[None, None, :] - dx + sw  # N×1×W
    padded = F.pad(x, (sw, sw, sh, sh))
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2)  # advanced indices first: N×H×W×C → N×C×H×W


def cutout(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    top = _randint(0, h, n, x, generator) - ch // 2  # N×1×1
    left = _randint(0, w, n, x, generator) - cw // 2
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)  # N×H×W
    return x * (~inside).to(x.dtype)[:, None]


_TRANSFORMS = {"translation": translation, "cutout": cutout, "color": color}  # keys: POLICIES
