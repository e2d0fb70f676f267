"""File plumbing every stage shares: atomic writes, safe loading of torch and .npz files, hashes.

- `atomic_write` writes to a temporary file in the target's folder, fsyncs it and renames it onto
  the target, so a crash never leaves a half-written file under a real name. The result gets the
  permissions any new file gets (0666 less the umask), not mkstemp's private 0600. Any OSError
  on the way (disk full, read-only folder, ...) is a `WriteError` naming the target; the target
  is left as it was and the temporary file is removed.
- `check_writable` refuses an output path that cannot be written before a command does its work.
- `load_npz` reads a `.npz` without pickles and with bounded work: the zip's declared sizes and
  each member's .npy header (shape, dtype) are checked before any array body is decompressed.
- `load_torch` unpickles with `weights_only=True`, which refuses to run code from a file; the
  error names what was refused without suggesting to load the file unsafely.
- `file_sha256` identifies a file by its bytes (judges, Inception weights, cache keys).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import re
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from condgan.errors import CondganError, WriteError, one_line

TEMP_SUFFIX = ".tmp"  # temporary files are `.<name>.<random>.tmp` beside the target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _reason(exc: OSError) -> str:
    return exc.strerror or one_line(exc, 200) or type(exc).__name__


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call `write(tmp_path)`, then rename the temporary file onto `path`; returns `path`.

    Raises:
        WriteError: naming `path` and the reason ("No space left on device") when creating,
            writing, syncing or renaming fails with an OSError; `path` is then untouched.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        os.close(fd)
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise WriteError(f"{path}: cannot write ({_reason(exc)})", path, _reason(exc)) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            try:
                os.unlink(tmp)
            except OSError:
                pass  # the WriteError (or the caller's own error) says what went wrong
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def check_writable(path: str | Path, *, folder: bool = False, what: str = "output") -> Path:
    """Refuse, before any work is done, an output that cannot be written; returns `path`.

    `path` is a file to be written (`folder=False`) or a folder to be filled (`folder=True`). The
    nearest existing folder on the way to it is probed by creating and removing a temporary file,
    which is what the write will need (creating missing sub-folders included); nothing else is
    created. Raises WriteError "<what> <path>: not writable (<reason>)".
    """
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise WriteError(f"{what} {path}: not writable (it is a file, expected a folder)")
    if not folder and path.is_dir():
        raise WriteError(f"{what} {path}: not writable (it is a folder, expected a file name)")
    probe = path if folder else path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise WriteError(f"{what} {path}: not writable ({probe} is not a folder)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".condgan-write-test.", suffix=TEMP_SUFFIX, dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise WriteError(f"{what} {path}: not writable ({_reason(exc)})") from None
    return path



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
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if "weights_only" in first:  # torch's own text may advise loading the file unsafely
            first = "refused by the safe loader"
        raise error(f"{name}: corrupted or not a PyTorch file ({type(exc).__name__}: {one_line(first, 200)})") from None


MAX_NPZ_BYTES = 8 << 30  # total uncompressed size of a .npz's arrays that `load_npz` accepts by default
_NPZ_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # what numpy writes
_CHUNK = 1 << 24


def _read_npy_member(fh: Any, info: zipfile.ZipInfo, where: str, error: type[CondganError]) -> np.ndarray:
    """One .npy member: header checked against the zip's declared size, then exactly the body."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise error(f"{where}: unsupported .npy format version {version}")
    if dtype.hasobject:
        raise error(f"{where}: not a readable .npz without pickles: dtype {dtype} holds Python objects; "
                    "expected plain numeric arrays")
    nbytes = math.prod(shape) * dtype.itemsize
    body = info.file_size - fh.tell()
    if body != nbytes:
        raise error(f"{where}: header says {dtype} {shape} ({nbytes} bytes), the member holds {body} bytes")
    out = np.empty(math.prod(shape), dtype=dtype)
    view = memoryview(out).cast("B") if nbytes else memoryview(b"")
    got = 0
    while got < nbytes:
        chunk = fh.read(min(_CHUNK, nbytes - got))
        if not chunk:
            raise error(f"{where}: truncated: expected {nbytes} bytes, found {got}")
        view[got:got + len(chunk)] = chunk
        got += len(chunk)
    if fh.read(1):  # reaching the end also makes zipfile check the CRC
        raise error(f"{where}: data after the {nbytes} bytes its header announces")
    return out.reshape(shape, order="F" if fortran else "C")


def load_npz(path: str | Path, name: str, error: type[CondganError], *,
             max_bytes: int = MAX_NPZ_BYTES) -> dict[str, np.ndarray]:
    """The arrays of a `.npz` file (as `np.savez` writes it), with bounded work; errors name `name`.

    The members' uncompressed sizes declared by the zip directory must sum to at most
    `max_bytes` (a zip bomb is refused before anything is decompressed); each member must be a
    `.npy` whose header (shape, dtype) accounts for exactly its size and whose dtype holds no
    Python objects (nothing is unpickled). Empty, truncated and garbage files are `error`s.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            declared = sum(info.file_size for info in infos)
            if declared > max_bytes:
                raise error(f"{name}: its arrays would expand to {declared} bytes, more than the limit of "
                            f"{max_bytes}; refusing to decompress it")
            arrays: dict[str, np.ndarray] = {}
            for info in infos:
                key = info.filename[:-4] if info.filename.endswith(".npy") else None
                if key is None or info.compress_type not in _NPZ_METHODS or key in arrays:
                    raise error(f"{name}: member {one_line(info.filename, 80)!r} is not a .npy array as "
                                "numpy writes them")
                with zf.open(info) as fh:
                    arrays[key] = _read_npy_member(fh, info, f"{name}: array {key!r}", error)
            return arrays
    except FileNotFoundError:
        raise error(f"{name}: no such file") from None
    except CondganError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, zlib.error,
            NotImplementedError, MemoryError) as exc:
        raise error(f"{name}: not a readable .npz file ({type(exc).__name__}: {one_line(exc, 200)})") from None
