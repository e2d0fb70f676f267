"""Small real-format datasets for end-to-end tests (IDX files as MNIST/Fashion-MNIST ship them)."""

import gzip
import struct
from pathlib import Path

import numpy as np


def write_fashion_like(folder: Path, n: int = 200, seed: int = 0) -> Path:
    """Gzipped IDX train/test files of n random 28×28 images with 10 balanced classes; class k is
    brighter in its own band of rows, so a conditional model has something to learn."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "t10k"):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 * k + 4: 2 * k + 8] = 230
        with gzip.open(folder / f"{split}-images-idx3-ubyte.gz", "wb") as fh:
            fh.write(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        with gzip.open(folder / f"{split}-labels-idx1-ubyte.gz", "wb") as fh:
            fh.write(struct.pack(">II", 2049, n) + labels.tobytes())
    return folder
