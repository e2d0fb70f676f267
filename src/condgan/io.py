"""File plumbing every stage shares: atomic writes, safe loading of torch files, content hashes.

- `atomic_write` writes to a temporary file in the target's folder, fsyncs it and renames it onto
  the target, so a crash never leaves a half-written file under a real name. The result gets the
  permissions any new file gets (0666 less the umask), not mkstemp's private 0600.
- `load_torch` unpickles with `weights_only=True`, which refuses to run code from a file; the
  error names what was refused without suggesting to load the file unsafely.
- `file_sha256` identifies a file by its bytes (judges, Inception weights, cache keys).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from condgan.errors import CondganError

TEMP_SUFFIX = ".tmp"  # temporary files are `.<name>.<random>.tmp` beside the target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call `write(tmp_path)`, then rename the temporary file onto `path`; returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_torch(source: bytes | str | Path, name: str | Path, error: type[CondganError]) -> Any:
    """`torch.load(source, weights_only=True)` on CPU; any failure is `error` naming `name`.

    A file holding more than tensors and plain containers is refused with what it holds
    ("GLOBAL posix.system"), never with advice to retry unsafely.
    """
    fh = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        return torch.load(fh, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL [\w.]+|Unsupported operand \d+", str(exc))
        raise error(f"{name}: refused to load: it holds more than tensors and plain containers "
                    f"({found.group(0) if found else 'unpickling refused'}); it is corrupted or unsafe") from None
    except Exception as exc:  # torch.load raises many types on truncated or foreign files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise error(f"{name}: corrupted or not a PyTorch file ({type(exc).__name__}: {first})") from None
