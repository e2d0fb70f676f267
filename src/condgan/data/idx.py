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

from condgan.data.base import LabelledData, nhwc_to_stored
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


# Bounds on what an IDX file may declare before any of its body is read (or decompressed):
# MNIST-like images are N×28×28 and labels N, with N at most MAX_ITEMS.
MAX_ITEMS = 10_000_000
ITEM_SHAPES = {MAGIC_IMAGES: (28, 28), MAGIC_LABELS: ()}


def _read_exactly(f, n: int) -> bytes:
    """Up to `n` bytes from `f`; fewer only at the end of the stream. Read in 16 MiB chunks, so
    memory follows the bytes actually there, not the size a header claims."""
    parts, got = [], 0
    while got < n:
        chunk = f.read(min(n - got, 1 << 24))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def read_idx(path: str | os.PathLike, magic: int, item_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read an IDX file of uint8 elements whose magic number must be `magic`; returns a read-only array.

    Work is bounded by the header, not by the file: the header is read first (streamed from gzip),
    its dims are checked against `item_shape` (default: `ITEM_SHAPES[magic]`; every dimension
    but the first) and `MAX_ITEMS`, then exactly the bytes it announces are read and anything
    after them is refused. A small gzip file can therefore never expand into unbounded memory.
    """
    path = Path(path)
    ndim = magic & 0xFF
    if item_shape is None:
        item_shape = ITEM_SHAPES.get(magic)
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            head = _read_exactly(f, 4)
            if len(head) < 4:
                raise DataError(f"{path}: {len(head)} bytes, too short for an IDX header")
            found = int.from_bytes(head, "big")
            if found != magic:
                raise DataError(f"{path}: bad IDX magic number: expected {magic}, found {found}")
            raw_dims = _read_exactly(f, 4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DataError(f"{path}: truncated IDX header: expected {4 + 4 * ndim} bytes, "
                                f"found {4 + len(raw_dims)}")
            dims = struct.unpack(f">{ndim}I", raw_dims)
            if item_shape is not None and tuple(dims[1:]) != tuple(item_shape):
                want = "×".join(["N", *map(str, item_shape)])
                raise DataError(f"{path}: header dims {dims}: expected {want}")
            if dims[0] > MAX_ITEMS:
                raise DataError(f"{path}: header dims {dims}: more than {MAX_ITEMS} items; refusing to read it")
            expected = math.prod(dims)
            data = _read_exactly(f, expected)
            if len(data) != expected:
                raise DataError(f"{path}: header dims {dims} need {expected} data bytes, found {len(data)}")
            if f.read(1):  # at the end of a gzip stream this also checks its CRC and length
                raise DataError(f"{path}: data after the {expected} bytes its header dims {dims} announce; "
                                "the file is corrupt or not an IDX file")
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        # EOFError: the gzip stream ends early; zlib.error / BadGzipFile: corrupt data or CRC.
        raise DataError(f"{path}: bad gzip data ({type(e).__name__}: {e}); the file is truncated or corrupt, "
                        "delete it and fetch it again") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from e
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


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
    """Load split "train" or "test" of "mnist" or "fashion-mnist" as uint8 images N×1×28×28.

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
        stored=nhwc_to_stored(images.copy()),  # a writable copy of the file's read-only bytes
        y=torch.from_numpy(labels.astype(np.int64)),
        class_names=CLASS_NAMES[name],
        name=name,
    )
