"""MS-SSIM against pytorch-msssim and torchmetrics at equal settings, plus invariances.

The references run in float32 (their float64 CPU convolutions are slow); ours in float64.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from condgan.errors import ConfigError, SamplesError
from condgan.metrics.msssim import STANDARD_WEIGHTS, default_settings, ms_ssim

RTOL = 1e-4


def _pairs(n: int, c: int, size: int, seed: int, noise: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth random images in [-1, 1] and noisy copies, float64."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, c, size // 4 + 1, size // 4 + 1, generator=g, dtype=torch.float64) * 2 - 1
    x = F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    x = (x + 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(-1, 1)
    y = (x + noise * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(-1, 1)
    return x, y


def _to01(t: torch.Tensor) -> torch.Tensor:
    return (t + 1) / 2


def test_default_settings_per_resolution():
    assert default_settings(28, 28).win_size == 7 and len(default_settings(28, 28).weights) == 3
    assert default_settings(32, 32).win_size == 7 and len(default_settings(32, 32).weights) == 3
    assert default_settings(64, 64).win_size == 7 and len(default_settings(64, 64).weights) == 4
    assert default_settings(128, 128).win_size == 11 and len(default_settings(128, 128).weights) == 4
    assert default_settings(256, 256) == default_settings(176, 176)
    assert default_settings(256, 256).weights == STANDARD_WEIGHTS and default_settings(256, 256).win_size == 11
    three = np.array(STANDARD_WEIGHTS[:3])
    np.testing.assert_allclose(default_settings(32, 32).weights, three / three.sum())
    for size in (28, 32, 64):
        x, y = _pairs(2, 1, size, 0)
        assert ms_ssim(x, y).shape == (2,)


@pytest.mark.parametrize("size,channels,win", [(64, 3, 3), (168, 3, 11)])
def test_matches_pytorch_msssim_at_its_accepted_settings(size, channels, win):
    from pytorch_msssim import ms_ssim as reference

    x, y = _pairs(3, channels, size, 1)  # 168 px passes through an odd size (21 px) at scale 4
    expected = reference(_to01(x).float(), _to01(y).float(), data_range=1.0, win_size=win, size_average=False)
    got = ms_ssim(x, y, win_size=win, weights=STANDARD_WEIGHTS).float()
    torch.testing.assert_close(got, expected, rtol=RTOL, atol=0)


_UNMODIFIED_REFERENCE = textwrap.dedent("""
    import sys, numpy as np, torch
    from pytorch_msssim import ms_ssim
    data = np.load(sys.argv[1])
    out = {}
    for key in [k for k in data.files if k.startswith("x_")]:
        name = key[2:]
        x, y = torch.from_numpy(data["x_" + name]).float(), torch.from_numpy(data["y_" + name]).float()
        out[name] = ms_ssim((x + 1) / 2, (y + 1) / 2, data_range=1.0, win_size=int(data["win_" + name]),
                            weights=data["w_" + name].tolist(), size_average=False).numpy()
    np.savez(sys.argv[2], **out)
""")


def test_default_small_image_settings_match_unmodified_pytorch_msssim(tmp_path):
    """pytorch-msssim asserts side > 16 (win - 1) whatever the number of scales; `python -O` skips
    that assert and runs its code unchanged, which is valid whenever every scale fits the window."""
    cases = {f"{size}px_{c}ch": _pairs(3, c, size, size) for size, c in [(28, 1), (30, 3), (32, 3), (64, 3)]}
    arrays = {}
    for name, (x, y) in cases.items():
        settings = default_settings(*x.shape[2:])
        arrays.update({f"x_{name}": x.numpy(), f"y_{name}": y.numpy(), f"win_{name}": settings.win_size,
                       f"w_{name}": np.array(settings.weights)})
    np.savez(tmp_path / "in.npz", **arrays)
    subprocess.run([sys.executable, "-O", "-c", _UNMODIFIED_REFERENCE, tmp_path / "in.npz", tmp_path / "out.npz"],
                   check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    expected = np.load(tmp_path / "out.npz")
    for name, (x, y) in cases.items():
        np.testing.assert_allclose(ms_ssim(x, y).numpy(), expected[name], rtol=RTOL, atol=0, err_msg=name)
        assert expected[name].dtype == np.float32


@pytest.mark.parametrize("size,channels,sigma,win,scales", [
    (28, 1, 0.9, 7, 3),   # torchmetrics takes int(3.5 sigma + 0.5) * 2 + 1 = 7 taps for sigma 0.9
    (30, 3, 0.9, 7, 3),   # odd sizes (floor pooling) and channel averaging per scale
    (64, 3, 1.5, 11, 3),
])
def test_matches_torchmetrics_under_its_convention(size, channels, sigma, win, scales):
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as reference

    x, y = _pairs(3, channels, size, 2)
    weights = tuple(float(w) for w in STANDARD_WEIGHTS[:scales])
    expected = reference(_to01(x).float(), _to01(y).float(), data_range=1.0, kernel_size=win, sigma=sigma,
                         betas=weights, reduction="none")
    got = ms_ssim(x, y, win_size=win, weights=weights, win_sigma=sigma, convention="torchmetrics").float()
    torch.testing.assert_close(got, expected, rtol=RTOL, atol=0)


def test_float32_matches_float64_and_identical_images_score_one():
    x, y = _pairs(4, 3, 32, 3)
    torch.testing.assert_close(ms_ssim(x.float(), y.float()).double(), ms_ssim(x, y), rtol=RTOL, atol=0)
    torch.testing.assert_close(ms_ssim(x, x), torch.ones(4, dtype=torch.float64), rtol=1e-12, atol=0)
    torch.testing.assert_close(ms_ssim(x, y), ms_ssim(y, x), rtol=1e-12, atol=0)


def test_float32_matmul_precision_setting_is_restored():
    x, y = _pairs(2, 1, 28, 7)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        ms_ssim(x.float(), y.float())
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(before)


def test_batch_size_and_value_range_do_not_change_results():
    x, y = _pairs(10, 1, 28, 4)
    full = ms_ssim(x, y, batch_size=256)
    torch.testing.assert_close(ms_ssim(x, y, batch_size=3), full, rtol=1e-12, atol=0)
    torch.testing.assert_close(ms_ssim(_to01(x), _to01(y), value_range=(0.0, 1.0)), full, rtol=1e-12, atol=0)


def test_more_noise_means_lower_msssim():
    a = ms_ssim(*_pairs(4, 1, 32, 5, noise=0.05)).mean()
    b = ms_ssim(*_pairs(4, 1, 32, 5, noise=0.5)).mean()
    assert 1.0 > a > b > 0.0


def test_invalid_settings_are_refused_with_the_field_named():
    x, y = _pairs(2, 1, 32, 6)
    with pytest.raises(ConfigError, match="coarsest scale"):
        ms_ssim(x, y, win_size=11, weights=STANDARD_WEIGHTS)
    with pytest.raises(ConfigError, match="win_size: expected an odd integer"):
        ms_ssim(x, y, win_size=4)
    with pytest.raises(SamplesError, match="y: expected the shape"):
        ms_ssim(x, y[:1])
    with pytest.raises(SamplesError, match="at least 7 px"):
        default_settings(6, 6)
