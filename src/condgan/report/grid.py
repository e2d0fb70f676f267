"""Image grids (PNG) and scatter plots of 2D samples; the class grid itself is drawn by condgan.sampling.class_grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from condgan.report.plotting import pyplot, save_figure
from condgan.io import atomic_write


def tile(images: np.ndarray, rows: int, cols: int, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """Lay out uint8 N×H×W×C images row-major on a rows×cols canvas (N ≤ rows·cols)."""
    n, h, w, c = images.shape
    if n > rows * cols:
        raise ValueError(f"{n} images do not fit a {rows}x{cols} grid")
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), pad_value, np.uint8)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + k * (w + pad): pad + k * (w + pad) + w] = img
    return canvas


def save_png(canvas: np.ndarray, path: str | Path, caption: str | None = None) -> Path:
    """uint8 H×W×C pixels as a PNG; `caption` (e.g. which generator weights) as its Description text."""
    path = Path(path)
    mode_img = Image.fromarray(canvas[..., 0] if canvas.shape[-1] == 1 else canvas)
    info = None
    if caption is not None:
        info = PngInfo()
        info.add_text("Description", caption)
    atomic_write(path, lambda tmp: mode_img.save(tmp, format="PNG", pnginfo=info))
    return path


def save_scatter(points: np.ndarray, labels: np.ndarray | None, path: str | Path,
                 modes: np.ndarray | None = None, title: str = "") -> Path:
    """2D samples (coloured by class) over the true modes, as a PNG."""
    fig, ax = pyplot().subplots(figsize=(4, 4), dpi=100)
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=2, c="tab:blue", alpha=0.6)
    else:
        ax.scatter(points[:, 0], points[:, 1], s=2, c=labels, cmap="tab20", alpha=0.6)
    if modes is not None:
        ax.scatter(modes[:, 0], modes[:, 1], s=30, marker="x", c="black")
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def first_per_class_grid(images: np.ndarray, labels: np.ndarray | None, num_classes: int, rows: int,
                         max_columns: int = 20) -> np.ndarray:
    """A grid of uint8 N×H×W×C samples as found in a samples file: column k holds the first `rows`
    samples labelled k (classes 0 … min(num_classes, max_columns) − 1; cells of a class with fewer
    samples stay blank). Without labels: the first samples, `max_columns` to a row."""
    n, h, w, c = images.shape
    if labels is None:
        cols = min(max_columns, n)
        take = images[:rows * cols]
        return tile(take, -(-len(take) // cols), cols)
    cols = min(num_classes, max_columns)
    cells = np.full((rows * cols, h, w, c), 255, np.uint8)
    for k in range(cols):
        idx = np.flatnonzero(labels == k)[:rows]
        cells[np.arange(len(idx)) * cols + k] = images[idx]
    return tile(cells, rows, cols)
