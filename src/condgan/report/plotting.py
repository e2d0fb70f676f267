"""matplotlib on the headless Agg backend, and atomic PNG writes of its figures."""

from __future__ import annotations

from pathlib import Path

from condgan.io import atomic_write


def pyplot():
    """`matplotlib.pyplot` on Agg (imported lazily: matplotlib costs seconds at start-up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> Path:
    """Write `fig` as a PNG (temporary file + rename) and close it."""
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    pyplot().close(fig)
    return path
