"""Batched multi-scale structural similarity (MS-SSIM) of image pairs.

Definition (Wang, Simoncelli & Bovik 2003, "Multiscale structural similarity for image quality
assessment"): with Gaussian-weighted local means mu, variances sigma^2 and covariance
sigma_xy (window `win_size` taps, std `win_sigma` = 1.5 px), C1 = (K1 L)^2, C2 = (K2 L)^2,
K1 = 0.01, K2 = 0.03, L = 1 (images are mapped from `value_range` to [0, 1] first),

    cs_j   = mean over the map of (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2)   at scale j
    l_S    = mean over the map of (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) * cs-map at scale S
    MS-SSIM = l_S^{w_S} * prod_{j<S} cs_j^{w_j},

scale j+1 being scale j average-pooled 2x2. The weights of the five-scale original are
STANDARD_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333). Negative cs_j and l_S are clamped
to 0 (ReLU) before the powers, as both references below do, and the sum of the two local
variances is clamped at 0 against float rounding (torchmetrics clamps each variance,
pytorch-msssim neither; this changes nothing beyond rounding).

Settings per resolution (`default_settings`). Five scales with the 11-tap window need >= 176 px
(11 px at the coarsest scale), far more than the 28-64 px images here. The window keeps
sigma = 1.5, so that each scale measures the same structure size as in the original, and the
coarse scales that are narrower than the window are dropped; the remaining weights are the
first S standard weights renormalised to sum 1, so MS-SSIM stays on SSIM's scale:

    shorter side  window  scales  pixels per scale        weights (renormalised)
    28 px         7       3       28, 14, 7               0.0711, 0.4530, 0.4760
    32 px         7       3       32, 16, 8               0.0711, 0.4530, 0.4760
    64 px         7       4       64, 32, 16, 8           0.0517, 0.3295, 0.3462, 0.2726
    128 px        11      4       128, 64, 32, 16         0.0517, 0.3295, 0.3462, 0.2726
    >= 176 px     11      5       176, 88, 44, 22, 11     STANDARD_WEIGHTS as they are

Rule: window 11 when the shorter side is >= 88 px (4 scales of >= 11 px), else 7 (the Gaussian
cut at +-2 sigma, 95% of its mass per axis); then as many scales (at most 5) as keep the coarsest
at least one window wide. 5 scales with a 3-tap window (a near box filter: 0.31, 0.38, 0.31)
would keep all scales at 64 px but not at 28 or 32 px (2 px at scale 5), and would no longer
be the sigma = 1.5 Gaussian, so it is not the default. `win_size` and `weights` override these.

Conventions. The two reference implementations agree on the cs terms (Gaussian filter without
padding, "valid") and differ here:

    pytorch-msssim (`pytorch_msssim.ms_ssim`)       torchmetrics (`multiscale_structural_...`)
    last-scale SSIM map: valid (no padding)          reflect-padded by (win-1)/2, full size
    odd sizes: zero-padded 2x2 average pool          floor 2x2 average pool (last row dropped)
      (count_include_pad), ceil(s/2) pixels
    per channel: MS-SSIM per channel, then mean      mean over channels at each scale, then
      over channels                                    the product over scales
    window: win_size taps                            int(3.5 sigma + 0.5) * 2 + 1 taps (11 for
                                                       sigma 1.5; `kernel_size` is only checked)

`convention="pytorch_msssim"` (the default) reproduces the first column; `"torchmetrics"` the
first three rows of the second (the window always has `win_size` taps: pass
int(3.5 sigma + 0.5) * 2 + 1 to match torchmetrics). For one-channel images whose sizes stay
even the conventions differ only in the last-scale map.
(Other implementations differ again, e.g. tensorflow/models' research/compression msssim.py
shrinks window and sigma at scales smaller than the window; numbers computed under different
conventions or settings are not comparable.)

Speed: the moment maps (x, y, x^2 + y^2, xy) are filtered together, each separable pass as
one matrix product with a banded (size x valid size) matrix, which BLAS runs faster than a
depthwise convolution at these image sizes (on CPU about 3-5x pytorch-msssim's pairs/s at equal
settings, 64 px RGB, 5 scales, 3 taps); pairs are processed `batch_size` at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch
import torch.nn.functional as F

from condgan.errors import ConfigError, SamplesError
from condgan.metrics import _checks

STANDARD_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
Convention = Literal["pytorch_msssim", "torchmetrics"]


@dataclass(frozen=True)
class MsssimSettings:
    """Window size (odd number of taps) and per-scale weights (one per scale, finest first)."""

    win_size: int
    weights: tuple[float, ...]


def default_settings(height: int, width: int) -> MsssimSettings:
    """The window and scales used for images of this size (table in the module docstring)."""
    side = min(height, width)
    win = 11 if side >= 88 else 7
    if side < win:
        raise SamplesError(f"images: expected at least {win} px per side for MS-SSIM, found {height}x{width}")
    scales = 1
    while scales < len(STANDARD_WEIGHTS) and side // 2 ** scales >= win:
        scales += 1
    if scales == len(STANDARD_WEIGHTS):
        return MsssimSettings(win, STANDARD_WEIGHTS)
    total = sum(STANDARD_WEIGHTS[:scales])
    return MsssimSettings(win, tuple(w / total for w in STANDARD_WEIGHTS[:scales]))


def gaussian_window(win_size: int, sigma: float, dtype: torch.dtype = torch.float32,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """Normalised 1-D Gaussian of `win_size` taps centred on the middle tap."""
    coords = torch.arange(win_size, dtype=torch.float64) - win_size // 2
    g = torch.exp(-coords**2 / (2.0 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _band(n: int, win: torch.Tensor) -> torch.Tensor:
    """(n, n - w + 1) matrix B with B[j + t, j] = win[t]: `v @ B` is a valid 1-D filter of v."""
    w = win.shape[0]
    out = n - w + 1
    band = torch.zeros(n, out, dtype=win.dtype, device=win.device)
    cols = torch.arange(out, device=win.device)
    for t in range(w):
        band[cols + t, cols] = win[t]
    return band


def _filter(maps: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """Valid separable Gaussian filter of (..., H, W) maps -> (..., H - w + 1, W - w + 1)."""
    rows = maps @ _band(maps.shape[-1], win)
    return _band(maps.shape[-2], win).T @ rows


def _scale_sizes(size: int, scales: int, convention: Convention) -> list[int]:
    sizes = [size]
    for _ in range(scales - 1):
        sizes.append((sizes[-1] + 1) // 2 if convention == "pytorch_msssim" else sizes[-1] // 2)
    return sizes


def _scale_terms(x: torch.Tensor, y: torch.Tensor, win: torch.Tensor, c1: float, c2: float,
                 with_luminance: bool) -> torch.Tensor:
    """Per-channel mean over the filtered map of cs (or of l * cs), shape (N, C).

    Four maps are filtered, not five: sigma_x^2 + sigma_y^2 = E[x^2 + y^2] - mu_x^2 - mu_y^2 only
    ever appears as a sum.
    """
    n, c = x.shape[:2]
    maps = torch.empty((n, 4 * c, *x.shape[2:]), dtype=x.dtype, device=x.device)
    maps[:, :c], maps[:, c:2 * c] = x, y
    torch.addcmul(x * x, y, y, out=maps[:, 2 * c:3 * c])
    torch.mul(x, y, out=maps[:, 3 * c:])
    mu_x, mu_y, e_sq, e_xy = _filter(maps, win).split(c, dim=1)
    mu_xy = mu_x * mu_y
    mu_sq = torch.addcmul(mu_x * mu_x, mu_y, mu_y)
    cs = (e_xy - mu_xy).mul_(2.0).add_(c2).div_((e_sq - mu_sq).clamp_min_(0.0).add_(c2))
    if with_luminance:
        cs.mul_(mu_xy.mul_(2.0).add_(c1)).div_(mu_sq.add_(c1))
    return cs.mean(dim=(2, 3))


def _ms_ssim_batch(x: torch.Tensor, y: torch.Tensor, win: torch.Tensor, weights: torch.Tensor,
                   c1: float, c2: float, convention: Convention) -> torch.Tensor:
    terms = []
    for j in range(weights.shape[0]):
        last = j == weights.shape[0] - 1
        if last and convention == "torchmetrics":
            pad = (win.shape[0] - 1) // 2
            x, y = F.pad(x, (pad,) * 4, mode="reflect"), F.pad(y, (pad,) * 4, mode="reflect")
        terms.append(_scale_terms(x, y, win, c1, c2, with_luminance=last))
        if not last:
            padding = (x.shape[2] % 2, x.shape[3] % 2) if convention == "pytorch_msssim" else 0
            x = F.avg_pool2d(x, 2, padding=padding)
            y = F.avg_pool2d(y, 2, padding=padding)
    per_scale = torch.stack(terms)  # (S, N, C)
    if convention == "torchmetrics":
        return (per_scale.mean(2).relu() ** weights[:, None]).prod(0)
    return (per_scale.relu() ** weights[:, None, None]).prod(0).mean(1)


def ms_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    win_size: int | None = None,
    weights: Sequence[float] | None = None,
    win_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    value_range: tuple[float, float] = (-1.0, 1.0),
    convention: Convention = "pytorch_msssim",
    batch_size: int = 256,
) -> torch.Tensor:
    """MS-SSIM of each pair (x[i], y[i]) of two image batches (N, C, H, W).

    Args:
        x, y: images with values in `value_range`, same shape; computed in float64 when both are
            float64, else float32, on their device.
        win_size, weights: filter taps and per-scale weights (finest first); None takes
            `default_settings(H, W)` for the missing one(s).
        win_sigma: std of the Gaussian window, px.
        k1, k2: SSIM stabilising constants (C = (K * 1)^2 on [0, 1] images).
        value_range: (low, high) intensities; images are mapped to [0, 1].
        convention: which reference's padding and channel averaging to follow (module docstring).
        batch_size: pairs per step; changes memory, not results.

    float32 matrix products run at "highest" precision (no TF32) during the call, whatever
    `torch.set_float32_matmul_precision` says; the setting is restored afterwards.

    Returns:
        (N,) tensor of MS-SSIM values in [0, 1] (1 for identical images).

    Raises:
        SamplesError: the batches differ in shape or are not image tensors.
        ConfigError: invalid settings, or the coarsest scale is narrower than the window.
    """
    x = _checks.images(x, "x")
    y = _checks.images(y, "y")
    if x.shape != y.shape:
        raise SamplesError(f"y: expected the shape of x {tuple(x.shape)}, found {tuple(y.shape)}")
    if convention not in ("pytorch_msssim", "torchmetrics"):
        raise ConfigError(f"convention: expected 'pytorch_msssim' or 'torchmetrics', found {convention!r}")
    batch_size = _checks.positive_int(batch_size, "batch_size")
    height, width = x.shape[2:]
    if win_size is None or weights is None:
        default = default_settings(height, width)
        win_size = default.win_size if win_size is None else win_size
        weights = default.weights if weights is None else weights
    if _checks.positive_int(win_size, "win_size") % 2 == 0:
        raise ConfigError(f"win_size: expected an odd integer, found {win_size}")
    win_size = int(win_size)
    weights = tuple(float(w) for w in weights)
    if not weights or any(not w > 0 for w in weights):
        raise ConfigError(f"weights: expected one positive weight per scale, found {weights}")
    coarsest = min(_scale_sizes(height, len(weights), convention)[-1],
                   _scale_sizes(width, len(weights), convention)[-1])
    if coarsest < win_size:
        raise ConfigError(
            f"win_size, weights: {len(weights)} scales of {height}x{width} px images leave {coarsest} px at the "
            f"coarsest scale, expected at least win_size={win_size}; use fewer weights or a smaller window"
        )
    low, high = value_range
    if not high > low:
        raise ConfigError(f"value_range: expected (low, high) with high > low, found {value_range}")

    dtype = torch.float64 if x.dtype == torch.float64 and y.dtype == torch.float64 else torch.float32
    win = gaussian_window(win_size, win_sigma, dtype, x.device)
    w = torch.tensor(weights, dtype=dtype, device=x.device)
    c1, c2 = k1**2, k2**2
    # Variances are differences of filtered moments: TF32 matmuls ("high"/"medium" precision) would
    # leave errors of ~1e-3 in them, so full float32 precision is forced while this runs.
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        out = [
            _ms_ssim_batch((x[s:s + batch_size].to(dtype) - low) / (high - low),
                           (y[s:s + batch_size].to(dtype) - low) / (high - low), win, w, c1, c2, convention)
            for s in range(0, x.shape[0], batch_size)
        ]
    finally:
        torch.set_float32_matmul_precision(precision)
    return torch.cat(out) if out else x.new_zeros(0, dtype=dtype)
