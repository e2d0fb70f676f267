"""Download the official dataset files into the user cache, each verified by its published md5.

Checksums and their sources:
- Fashion-MNIST: the md5 table of https://github.com/zalandoresearch/fashion-mnist#get-the-data
  (also torchvision's `FashionMNIST.resources`). Checked against Debian's `dataset-fashion-mnist`
  files: Debian re-wrote only the gzip headers (file name dropped, mtime reset, as
  strip-nondeterminism does), so their md5s differ, but restoring the original header
  (FNAME set, mtime 2017-08-31 10:50:06 UTC for train-*, 10:50:27 UTC for t10k-*) gives
  exactly these four digests; tests/test_data_fetch.py repeats that check when the files exist.
- MNIST: torchvision's `MNIST.resources` (the ossci-datasets mirror serves the original files).
- CIFAR-10: torchvision's `CIFAR10.tgz_md5`, the md5 of cifar-10-python.tar.gz.

`base_url` or the environment variable CONDGAN_DATA_MIRROR replaces the host (a mirror, or a local
server in tests). Each file is written to a temporary file in the destination and renamed only
once its digest matches, so a partial or corrupt download never looks like a good file.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from condgan.data.paths import cache_dir
from condgan.errors import DataError
from condgan.registry import Registry

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_TIMEOUT_S = 60


@dataclass(frozen=True)
class Source:
    """Where a dataset's files come from.

    Attributes:
        base_url: the official host; file URLs are base_url + file name.
        files: (file name, md5 hex digest) of each file to download.
        extract_dir: for a tar archive, the top-level directory it must unpack to; None for plain files.
    """

    base_url: str
    files: tuple[tuple[str, str], ...]
    extract_dir: str | None = None


SOURCES: Registry[Source] = Registry("downloadable dataset")
SOURCES.add("fashion-mnist", Source(
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    (
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
))
SOURCES.add("mnist", Source(
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    (
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ),
))
SOURCES.add("cifar10", Source(
    "https://www.cs.toronto.edu/~kriz/",
    (("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),),
    extract_dir="cifar-10-batches-py",
))


def fetchable_names() -> list[str]:
    """Names `fetch_dataset` accepts."""
    return SOURCES.names()


def fetch_dataset(name: str, dest_dir: str | os.PathLike | None = None, base_url: str | None = None) -> Path:
    """Download dataset `name` into `dest_dir` (default: the user cache) and return that directory.

    Files already present with the right md5 (or an already extracted archive) are kept, so a
    second call downloads nothing. The returned directory is one `load_dataset` searches when it is
    the cache, or can be passed to it as `data_dir`.
    """
    source = SOURCES.get(name)
    dest = Path(dest_dir).expanduser() if dest_dir is not None else cache_dir(name)
    base = (base_url or os.environ.get("CONDGAN_DATA_MIRROR") or source.base_url).rstrip("/") + "/"
    if source.extract_dir is not None and (dest / source.extract_dir).is_dir():
        return dest
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the destination {dest}: {e}") from e
    for file_name, md5 in source.files:
        path = dest / file_name
        if path.is_file() and _md5(path) == md5:
            continue
        download(base + file_name, path, md5)
    if source.extract_dir is not None:
        for file_name, _ in source.files:
            extract_tar(dest / file_name, dest, source.extract_dir)
            (dest / file_name).unlink()  # the extracted batches are what is loaded
    return dest


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, path: Path, md5: str) -> None:
    """Download `url` to `path` via a temporary file, keeping it only if its md5 is `md5`."""
    log.info("downloading %s -> %s", url, path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as e:
        raise DataError(f"cannot write into {path.parent}: {e}") from e
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            announced = response.headers.get("Content-Length")
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
        # http.client returns a short body without error when the server hangs up early.
        if announced is not None and received != int(announced):
            raise DataError(f"{path.name} from {url}: the connection closed after {received} of {announced} bytes; "
                            "try again")
        if digest.hexdigest() != md5:
            raise DataError(f"{path.name} from {url}: md5 mismatch: expected {md5}, found {digest.hexdigest()}; "
                            "the download is corrupt or the server sent another file")
        os.replace(tmp, path)
    except (OSError, http.client.HTTPException) as e:  # URLError and timeouts are OSErrors; a cut body is IncompleteRead
        raise DataError(f"cannot download {url} to {path}: {e}; check the network, set CONDGAN_DATA_MIRROR "
                        f"to a mirror, or copy the file into {path.parent} yourself") from e
    finally:
        tmp.unlink(missing_ok=True)


def extract_tar(archive: Path, dest: Path, top_dir: str) -> Path:
    """Unpack `archive`, whose members must all lie in `top_dir/`, to `dest/top_dir`; returns that path.

    Only regular files and directories are accepted, and none may resolve outside the target
    (absolute names, "..", links and devices are refused), because a tarball can name any path.
    The archive is unpacked into a temporary directory first and renamed into place, so an
    interrupted extraction leaves nothing that looks complete.
    """
    target = dest / top_dir
    staging = Path(tempfile.mkdtemp(prefix=f".{top_dir}.", dir=dest))
    try:
        root = staging.resolve()
        try:
            with tarfile.open(archive, "r:*") as tar:
                for member in tar:
                    _extract_member(tar, member, root, archive, top_dir)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise DataError(f"{archive}: cannot extract ({type(e).__name__}: {e}); the archive is corrupt") from e
        if not (staging / top_dir).is_dir():
            raise DataError(f"{archive}: expected a top-level directory {top_dir!r}, found none")
        os.replace(staging / top_dir, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path, archive: Path, top_dir: str) -> None:
    path = (root / member.name).resolve()
    if not path.is_relative_to(root / top_dir):
        raise DataError(f"{archive}: refusing to extract member {member.name!r}: it lies outside {top_dir}/")
    if member.isdir():
        path.mkdir(parents=True, exist_ok=True)
    elif member.isfile():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tar.extractfile(member) as src, open(path, "wb") as out:
            shutil.copyfileobj(src, out)
    else:
        raise DataError(f"{archive}: refusing to extract member {member.name!r}: not a regular file or directory")
