"""Short training runs on the 2D ring (8 Gaussians on the unit circle, std 0.01) that show learning.

`train_ring` trains a small MLP pair and returns fixed-noise samples of the untrained and of the
trained model, each with the class it was asked for (k = i mod 8, None for unconditional models).
"""

from pathlib import Path

import torch

from condgan.config import resolve_config
from condgan.data.toy2d import ring_modes
from condgan.methods import build_method
from condgan.nets import DataSpec
from condgan.sampling import load_run
from condgan.training.loop import train

RING = ["data.name=ring", "data.num_samples=2000", "model.hidden=64", "model.z_dim=8", "train.batch_size=64",
        "optim.g_lr=1e-3", "optim.d_lr=1e-3", "train.log_every=100", "train.grid_every=100000",
        "train.ckpt_every=100000"]
Samples = tuple[torch.Tensor, torch.Tensor | None]


@torch.no_grad()
def _samples(method, n: int = 800) -> Samples:
    method.eval()
    z = method.latent(n, generator=torch.Generator().manual_seed(123))
    c = torch.arange(n) % 8 if method.conditional else None
    return method.generate(z, c), c


def train_ring(tmp_path: Path, *overrides: str, steps: int = 300) -> tuple[Samples, Samples]:
    cfg = resolve_config(overrides=[*RING, f"train.steps={steps}", *overrides])
    torch.manual_seed(0)
    before = _samples(build_method(cfg, DataSpec((2,), 8)))
    train(cfg, tmp_path / "ring-run", progress=False)
    return before, _samples(load_run(tmp_path / "ring-run").method)


def _nearest(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    d = torch.cdist(x, ring_modes()[0])
    return d.min(dim=1)


def near_mode_share(samples: Samples, radius: float = 0.2) -> float:
    """Share of samples within `radius` of some mode (20 of the modes' std)."""
    dist, _ = _nearest(samples[0])
    return (dist < radius).float().mean().item()


def right_mode_share(samples: Samples, radius: float = 0.2) -> float:
    """Share of samples within `radius` of the mode of the class they were asked for."""
    x, c = samples
    dist, mode = _nearest(x)
    return ((dist < radius) & (mode == c)).float().mean().item()


def mean_nearest_distance(samples: Samples) -> float:
    """Mean distance from a sample to its nearest mode (about 1 for an untrained G near the origin)."""
    return _nearest(samples[0])[0].mean().item()
