"""The coarse-to-fine chain of a Laplacian pyramid as a PNG, in the layout of the LAPGAN paper's
sampling figure (Denton et al. 2015, fig. 1 (right)/fig. 3: Ĩ_K → l = u(Ĩ) → + h̃ → Ĩ … → Ĩ_0).

`save_pyramid_chain` draws any pyramid (generated or real); `lapgan_chain` samples one from a
trained LAPGAN/CC-LAPGAN. Each row is one sample; columns run from the coarsest image to the
finest: Ĩ_K, then for each finer level k the low-pass l_k = u(Ĩ_{k+1}), the band-pass h̃_k and
Ĩ_k = l_k + h̃_k. Every panel is shown at the same display size (nearest-neighbour, so the
coarse pixels stay visible); images use the data range [−1, 1], band-pass images a symmetric
range ±max|h| of their column so that their (small) values are visible, mid-grey being 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from condgan.methods.lapgan import LAPGAN
from condgan.nets.pyramid import upsample
from condgan.report.plotting import pyplot, save_figure


def _rgb(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """C×H×W in [lo, hi] → H×W×3 in [0, 1] (gray repeated)."""
    img = np.clip((x - lo) / (hi - lo), 0.0, 1.0).transpose(1, 2, 0)
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def save_pyramid_chain(images: list[torch.Tensor], bands: list[torch.Tensor], path: str | Path,
                       title: str = "", classes: list[str] | None = None) -> Path:
    """Plot the chain of `images` [I_0, …, I_K] and `bands` [h_0, …, h_{K−1}, I_K] (each N×C×H×W).

    `classes` labels the rows (e.g. the class each CC-LAPGAN sample was drawn for).
    """
    plt = pyplot()
    K = len(images) - 1
    columns: list[tuple[str, torch.Tensor, bool]] = [(f"$\\tilde I_{K}$ ({images[K].shape[-1]}px)", images[K], False)]
    for k in range(K - 1, -1, -1):
        low = upsample(images[k + 1])
        columns += [(f"$l_{k} = u(\\tilde I_{k + 1})$", low, False), (f"$\\tilde h_{k}$ (±max)", bands[k], True),
                    (f"$\\tilde I_{k} = l_{k} + \\tilde h_{k}$", images[k], False)]
    n = images[0].shape[0]
    fig, axes = plt.subplots(n, len(columns), figsize=(1.3 * len(columns), 1.3 * n + 0.5), dpi=100, squeeze=False)
    for j, (name, x, is_band) in enumerate(columns):
        x = x.detach().float().cpu().numpy()
        m = max(float(np.abs(x).max()), 1e-8) if is_band else 1.0
        for i in range(n):
            ax = axes[i, j]
            ax.imshow(_rgb(x[i], -m, m), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=7)
            if j == 0 and classes is not None:
                ax.set_ylabel(classes[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


@torch.no_grad()
def lapgan_chain(method: LAPGAN, path: str | Path, n: int = 4, seed: int = 0, classes: list[int] | None = None,
                 class_names: list[str] | None = None, title: str = "") -> Path:
    """Sample `n` chains from a LAPGAN/CC-LAPGAN (`method.generate_levels`) and plot them.

    CC-LAPGAN rows cycle through `classes` (default: 0, 1, …); `class_names` names them.
    """
    was_training = method.training
    method.eval()
    gen = torch.Generator().manual_seed(seed)
    device = next(method.parameters()).device
    z = method.latent(n, generator=gen).to(device)
    c = None
    names = None
    if method.conditional:
        pool = classes or list(range(method.num_classes))
        c = torch.tensor([pool[i % len(pool)] for i in range(n)], device=device)
        names = [class_names[int(k)] if class_names else f"class {int(k)}" for k in c]
    images, bands = method.generate_levels(z, c)
    method.train(was_training)
    return save_pyramid_chain(images, bands, path, title=title, classes=names)
