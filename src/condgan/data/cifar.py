"""CIFAR-10 from its python-batches layout (https://www.cs.toronto.edu/~kriz/cifar.html).

`cifar-10-batches-py/` holds `data_batch_1` … `data_batch_5` (train, 10000 images each),
`test_batch` and `batches.meta`. Each batch is a Python 2 pickle of a dict with keys `data`
(uint8 array N×3072: the 1024 red, then green, then blue values of a 32×32 image, row-major)
and `labels` (list of N ints in 0..9); `batches.meta` holds `label_names`.

Pickles can run arbitrary code on load, so they are read with `SafeUnpickler`, which resolves
only the three numpy globals an ndarray needs; anything else is refused before it runs.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from condgan.data.base import LabelledData
from condgan.data.paths import locate
from condgan.errors import ConfigError, DataError, one_line

BATCHES_DIR = "cifar-10-batches-py"
SPLIT_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
META_FILE = "batches.meta"
NUM_CLASSES = 10
_IMAGE_BYTES = 3 * 32 * 32
# A real batch is 10000 images of 3072 bytes plus labels and names: 31 MB. Files larger than this
# are refused before unpickling, which bounds the memory a hostile pickle can make us allocate.
MAX_BATCH_BYTES = 64 << 20

# The globals a pickled ndarray refers to. numpy 2 renamed numpy.core to numpy._core, so files
# written by numpy 1 (the real batches) and numpy 2 name `_reconstruct` differently; the function
# itself is taken from ndarray's own reduce, which works under either numpy.
_RECONSTRUCT = np.zeros(0).__reduce__()[0]
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain containers and numpy arrays; any other global is refused."""

    def __init__(self, file: io.BufferedIOBase, path: Path) -> None:
        # latin1 maps Python 2 `str` bytes 1:1, which numpy needs to rebuild arrays pickled by Python 2.
        super().__init__(file, encoding="latin1")
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[module, name]
        raise DataError(f"{self.path}: refusing to unpickle {module}.{name}: a CIFAR batch holds only "
                        "dicts, lists, numbers, strings and numpy arrays")


def read_batch_pickle(path: str | os.PathLike, max_bytes: int = MAX_BATCH_BYTES) -> dict[str, Any]:
    """Unpickle a CIFAR batch file safely into a dict with str keys.

    Work is bounded by the file: one larger than `max_bytes` is refused before it is read, and the
    pickle is read from memory, where a length field larger than the data left fails at once.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise DataError(f"{path}: {size} bytes, more than the {max_bytes} a CIFAR-10 batch can take; "
                            "refusing to unpickle it")
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
        if len(raw) > max_bytes:  # the file grew after stat
            raise DataError(f"{path}: more than {max_bytes} bytes; refusing to unpickle it")
        obj = SafeUnpickler(io.BytesIO(raw), path).load()
    except DataError:
        raise
    except Exception as e:  # a corrupt pickle can fail in many ways (UnpicklingError, EOFError, ValueError, …)
        raise DataError(f"{path}: cannot unpickle ({type(e).__name__}: {one_line(e, 200)}); the file is corrupt") from e
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, found {type(obj).__name__}")
    # Real batches unpickled with latin1 have str keys; ones written by Python 3 have bytes keys.
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = read_batch_pickle(path)
    for key in ("data", "labels"):
        if key not in batch:
            raise DataError(f"{path}: missing key {key!r}; found keys {sorted(map(str, batch))}")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _IMAGE_BYTES:
        found = f"{data.dtype} array {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: 'data' must be a uint8 N×{_IMAGE_BYTES} array, found {found}")
    try:
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{path}: 'labels' must be a list of ints ({e})") from e
    if labels.shape != (len(data),):
        raise DataError(f"{path}: {len(data)} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(f"{path}: labels must lie in [0, {NUM_CLASSES}), found [{labels.min()}, {labels.max()}]")
    return data, labels


def _read_class_names(path: Path) -> tuple[str, ...]:
    names = read_batch_pickle(path).get("label_names")
    if not isinstance(names, list) or len(names) != NUM_CLASSES:
        raise DataError(f"{path}: expected 'label_names' to be a list of {NUM_CLASSES} names, found {names!r:.100}")
    return tuple(n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names)


def _find_batches(directory: Path, split: str) -> Path | None:
    for d in (directory, directory / BATCHES_DIR):
        if all((d / f).is_file() for f in (*SPLIT_FILES[split], META_FILE)):
            return d
    return None


def load_cifar10(split: str = "train", data_dir: str | os.PathLike | None = None) -> LabelledData:
    """Load split "train" (50000) or "test" (10000) of CIFAR-10 as uint8 RGB images N×3×32×32.

    Each candidate directory of `condgan.data.paths` is tried as is and with `cifar-10-batches-py/`.
    """
    if split not in SPLIT_FILES:
        raise ConfigError(f"unknown split {split!r}; expected one of: {', '.join(SPLIT_FILES)}")
    directory = locate(
        "cifar10", data_dir, lambda d: _find_batches(d, split),
        wanted=f"{BATCHES_DIR}/{{{','.join(SPLIT_FILES[split])},{META_FILE}}}",
        how_to_get="Get them with `condgan data fetch cifar10`, or pass --data-dir DIR holding them.",
    )
    batches = [_read_batch(directory / f) for f in SPLIT_FILES[split]]
    data = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    # Rows are channel-planar (R plane, G plane, B plane), so they reshape straight to N×3×32×32.
    stored = torch.from_numpy(data.reshape(-1, 3, 32, 32))
    return LabelledData(stored=stored, y=torch.from_numpy(labels), class_names=_read_class_names(directory / META_FILE),
                        name="cifar10")
