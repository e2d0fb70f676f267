"""MNIST and Fashion-MNIST from their IDX files (gzipped or not).

IDX format (http://yann.lecun.com/exdb/mnist/): a big-endian int32 magic number whose low byte is
the number of dimensions and whose third byte the element type (0x08 = uint8), then one
big-endian int32 per dimension, then the elements in row-major order. Images: magic 2051
(0x00000803), dims N×28×28; labels: magic 2049 (0x00000801), dims N.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from condgan.data.base import LabelledData, images_to_unit_range
from condgan.data.paths import locate
from condgan.errors import ConfigError, DataError

MAGIC_IMAGES = 2051
MAGIC_LABELS = 2049

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(i) for i in range(10)),
    # Label order of https://github.com/zalandoresearch/fashion-mnist#labels
    "fashion-mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
}

# File name prefix of each split, as published.
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def idx_file_names(split: str) -> tuple[str, str]:
    """The (images, labels) file names of a split, without the optional .gz suffix."""
    prefix = _SPLIT_PREFIX[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        # EOFError: the gzip stream ends early; zlib.error / BadGzipFile: corrupt data or CRC.
        raise DataError(f"{path}: bad gzip data ({type(e).__name__}: {e}); the file is truncated or corrupt, "
                        "delete it and fetch it again") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from e


def read_idx(path: str | os.PathLike, magic: int) -> np.ndarray:
    """Read an IDX file of uint8 elements whose magic number must be `magic`; returns a read-only array."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes, too short for an IDX header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(f"{path}: bad IDX magic number: expected {magic}, found {found}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header: expected {header} bytes, found {len(raw)}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(dims)
    if len(raw) - header != expected:
        raise DataError(f"{path}: header dims {dims} need {expected} data bytes, found {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_split_files(directory: Path, split: str) -> tuple[Path, Path] | None:
    found = []
    for stem in idx_file_names(split):
        # Prefer the uncompressed file: same content, faster to read.
        path = next((p for p in (directory / stem, directory / f"{stem}.gz") if p.is_file()), None)
        if path is None:
            return None
        found.append(path)
    return found[0], found[1]


def load_idx(name: str, split: str = "train", data_dir: str | os.PathLike | None = None) -> LabelledData:
    """Load split "train" or "test" of "mnist" or "fashion-mnist" as images in [-1, 1], N×1×28×28.

    Files are looked for in the places listed in `condgan.data.paths`; a DataError names the file
    when one is corrupt, truncated or inconsistent with its partner.
    """
    if name not in CLASS_NAMES:
        raise ConfigError(f"unknown IDX dataset {name!r}; expected one of: {', '.join(CLASS_NAMES)}")
    if split not in _SPLIT_PREFIX:
        raise ConfigError(f"unknown split {split!r}; expected one of: {', '.join(_SPLIT_PREFIX)}")
    how_to_get = f"Get them with `condgan data fetch {name}`"
    if name == "fashion-mnist":
        how_to_get += " or `apt-get install dataset-fashion-mnist`"
    how_to_get += ", or pass --data-dir DIR holding them."
    images_name, labels_name = idx_file_names(split)
    images_path, labels_path = locate(
        name, data_dir, lambda d: _find_split_files(d, split),
        wanted=f"{images_name}[.gz] and {labels_name}[.gz]", how_to_get=how_to_get,
    )
    images = read_idx(images_path, MAGIC_IMAGES)
    labels = read_idx(labels_path, MAGIC_LABELS)
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    num_classes = len(CLASS_NAMES[name])
    if len(labels) and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DataError(f"{labels_path}: labels must lie in [0, {num_classes}), found {labels[bad]} at index {bad}")
    return LabelledData(
        x=images_to_unit_range(images),
        y=torch.from_numpy(labels.astype(np.int64)),
        class_names=CLASS_NAMES[name],
        name=name,
    )
