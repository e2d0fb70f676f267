"""Where dataset files are looked for, in order, and the error when they are nowhere.

For a dataset NAME the places are: the explicit `data_dir` (files directly in it, or in
`data_dir/NAME`), `$CONDGAN_DATA` (same two forms), the user cache (`$XDG_CACHE_HOME/condgan/NAME`,
else `~/.cache/condgan/NAME`, where `condgan data fetch` puts files), and the system directory
`/usr/share/datasets/NAME` (where Debian's dataset packages, e.g. `dataset-fashion-mnist`, install).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, TypeVar

from condgan.errors import DataError

T = TypeVar("T")

# Module-level so tests can point it at an empty directory.
SYSTEM_DATA_DIR = Path("/usr/share/datasets")


def user_cache_dir() -> Path:
    """condgan's user cache root: `$XDG_CACHE_HOME/condgan`, else `~/.cache/condgan` (datasets, judges,
    cached features and Inception weights all live below it)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "condgan"


def cache_dir(name: str) -> Path:
    """The user cache directory of dataset `name` (it need not exist)."""
    return user_cache_dir() / name


def candidate_dirs(name: str, data_dir: str | os.PathLike | None) -> list[Path]:
    """The directories searched for dataset `name`, in lookup order."""
    dirs: list[Path] = []
    for root in (data_dir, os.environ.get("CONDGAN_DATA") or None):
        if root is not None:
            root = Path(root).expanduser()
            dirs += [root, root / name]
    dirs += [cache_dir(name), SYSTEM_DATA_DIR / name]
    return dirs


def locate(name: str, data_dir: str | os.PathLike | None, probe: Callable[[Path], T | None], wanted: str, how_to_get: str) -> T:
    """Return `probe(d)` for the first candidate directory `d` where it is not None.

    `wanted` describes the files looked for and `how_to_get` the ways to obtain them; both go into
    the DataError raised when no directory has them.
    """
    dirs = candidate_dirs(name, data_dir)
    for d in dirs:
        if d.is_dir():
            found = probe(d)
            if found is not None:
                return found
    searched = ", ".join(str(d) for d in dirs)
    raise DataError(f"{name}: {wanted} not found; searched {searched}. {how_to_get}")
