"""PNG figures of the evaluation suite (matplotlib, Agg backend): the AC-GAN paper's fig. 2
(accuracy vs resolution), fig. 3 (per-class MS-SSIM, generated vs real), the accuracy/MS-SSIM
scatter, nearest-neighbour grids and interpolation grids with their step sizes."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from condgan.report.grid import save_png, tile
from condgan.report.plotting import pyplot, save_figure


def resolution_plot(sizes: Sequence[int], curves: dict[str, Sequence[float]], path: Path, extractor: str) -> Path:
    """Judge accuracy vs the resolution images were shrunk to (paper fig. 2, top)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=100)
    for name, acc in curves.items():
        ax.plot(sizes, acc, marker="o", label=name)
    ax.set_xticks(list(sizes))
    ax.set_xlabel("spatial resolution (px), bilinear down and up")
    ax.set_ylabel("judge accuracy")
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title(extractor, fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def diversity_scatter(real: np.ndarray, gen: np.ndarray, path: Path, settings: str) -> Path:
    """Per-class MS-SSIM, real (x) vs generated (y) (paper fig. 3); the dashed lines mark the
    highest real value: classes left of/below it are at least as diverse as the least diverse real class."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.scatter(real, gen, s=18)
    for k, (a, b) in enumerate(zip(real, gen)):
        ax.annotate(str(k), (a, b), fontsize=6)
    ax.plot([0, 1], [0, 1], color="gray", lw=0.8)
    ax.axhline(real.max(), ls="--", color="tab:red", lw=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("MS-SSIM, real (per class)")
    ax.set_ylabel("MS-SSIM, generated (per class)")
    ax.set_title(settings, fontsize=6)
    fig.tight_layout()
    return save_figure(fig, path)


def correlation_scatter(msssim: np.ndarray, accuracy: np.ndarray, r: float, path: Path) -> Path:
    """Per-class accuracy vs per-class MS-SSIM of the samples, with Pearson's r."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4, 3.5), dpi=100)
    ax.scatter(msssim, accuracy, s=18)
    ax.set_xlabel("MS-SSIM of samples (per class)")
    ax.set_ylabel("judge accuracy (per class)")
    ax.set_title(f"Pearson r = {r:.3f}", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def neighbour_grid(images: np.ndarray, rows: int, cols: int, path: Path) -> Path:
    """Rows: a sample, then its nearest training images in pixel L1, then in judge features."""
    return save_png(tile(images, rows, cols), path)


def interpolation_figures(images: np.ndarray, rows: int, frames: int, x: torch.Tensor, flag: float,
                          grid_path: Path, steps_path: Path) -> tuple[Path, Path]:
    """The interpolation grid (rows: paths, columns: frames) and the step sizes along each path,
    normalised by the path's median step; paths whose largest step exceeds `flag` × median are red."""
    save_png(tile(images, rows, frames), grid_path)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=100)
    for r in range(rows):
        d = x[r].flatten(1).double().diff(dim=0).pow(2).mean(1).sqrt().numpy()  # RMS step, as jump_score "l2"
        med = np.median(d)
        norm = d / med if med > 0 else d
        jump = norm.max() > flag
        ax.plot(np.arange(1, frames), norm, color="tab:red" if jump else "tab:gray", lw=1.5 if jump else 0.8)
    ax.axhline(flag, ls="--", color="tab:red", lw=0.8)
    ax.set_xlabel("step along the path")
    ax.set_ylabel("step size / median step")
    fig.tight_layout()
    return grid_path, save_figure(fig, steps_path)
