"""The packed format: a folder of images decoded once into uint8 shards (`condgan data pack`).

Layout of a pack directory (all little-endian, no pickles):
- `images-00000.u8`, `images-00001.u8`, …: raw uint8 N_k×R×R×C arrays (NHWC, row-major; the
  on-disk convention), at most SHARD_BYTES each, read with `numpy.memmap`;
- `labels.i64`: int64 N, the class index of every image, shards in order;
- `index.json` (written last): format and version, resolution, channels, the class names, per-class
  counts, the shard files and their image counts, the content hash, the source folder and the bad
  files left out.

The content hash (`content_sha256`) is the SHA-256 of the header (format name, resolution, channels
and class names, as JSON), the labels' bytes and the SHA-256 of every shard's bytes in order: two
packs with the same hash hold the same images and labels. Opening a pack checks every file's size against the index (a
truncated shard is refused by name); `verify_pack` recomputes the hash (reads every byte).

Pixels are those of `condgan.data.folder` at the same resolution and channels (converted,
center-cropped, bicubic-resized by PIL), so a pack trains exactly as its folder does. A pack is
written into a temporary sibling directory and renamed into place when complete, so an interrupted
`pack` never leaves a half-written pack under the real name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from condgan.data.base import LabelledData
from condgan.data.folder import PACKED_INDEX, FolderImages, scan_folder
from condgan.data.items import MAX_MEMORY_BYTES, BadFiles, ImageItems, Item
from condgan.errors import DataError, WriteError, one_line
from condgan.io import atomic_write_bytes
from condgan.version import __version__

FORMAT = "condgan-packed-images"
VERSION = 1
INDEX_FILE = PACKED_INDEX
LABELS_FILE = "labels.i64"
SHARD_BYTES = 1 << 30  # largest shard file
MAX_INDEX_BYTES = 16 << 20  # index.json holds names and counts, never pixels
_WRITE_BATCH = 256  # images decoded per worker batch while packing


@dataclass(frozen=True)
class PackIndex:
    """A pack's index.json, checked (`read_index`)."""

    root: Path
    resolution: int
    channels: int
    class_names: tuple[str, ...]
    class_counts: tuple[int, ...]
    shards: tuple[tuple[str, int], ...]  # (file name, images)
    content_sha256: str
    source: str
    skipped: dict

    @property
    def num_samples(self) -> int:
        return sum(n for _, n in self.shards)


def pack_folder(src: str | os.PathLike, out: str | os.PathLike, resolution: int, channels: int | None = None,
                on_bad_file: str = "error", num_workers: int = 0, progress: bool = True) -> PackIndex:
    """Decode the image folder `src` at `resolution` into a new pack at `out`; returns its index.

    Bad files: as `condgan.data.folder.scan_folder` (`on_bad_file`); with "skip" a file whose pixels
    fail to decode is left out too, and every skipped file is named in the index (`skipped`) and,
    the first few, in one warning line. `out` must not exist, or be an empty folder.
    """
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise DataError(f"--resolution: expected a positive integer, found {resolution!r}")
    out = Path(out)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise DataError(f"{out}: already exists; a pack is written into a new (or empty) folder")
    items = scan_folder(src, resolution, channels, on_bad_file, num_workers, warn=False).reporting_bad()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as e:
        raise WriteError(f"{out}: cannot write ({e.strerror or e})", out, e.strerror or str(e)) from None
    try:
        _write_shards(items, tmp, num_workers, progress)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # a folder's usual permissions, not mkdtemp's private 0700
        if out.exists():
            out.rmdir()  # empty, checked above; rename(2) needs it gone
        os.replace(tmp, out)
    except OSError as e:
        raise WriteError(f"{out}: cannot write ({e.strerror or e})", out, e.strerror or str(e)) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if items.bad:
        print(items.bad.warning(), file=sys.stderr, flush=True)
    return read_index(out)


def _write_shards(items: FolderImages, tmp: Path, num_workers: int, progress: bool) -> None:
    """Shards, labels and index of `items` into the folder `tmp`."""
    c, r, _ = items.sample_shape
    per_shard = max(1, SHARD_BYTES // (r * r * c))
    order = [list(range(i, min(i + _WRITE_BATCH, len(items)))) for i in range(0, len(items), _WRITE_BATCH)]
    shards: list[list] = []  # [file name, images]
    labels: list[np.ndarray] = []
    images_digest = hashlib.sha256()
    fh = None
    bar = tqdm(total=len(items), unit="img", disable=not progress, desc="pack", file=sys.stderr)
    try:
        for batch in items.batches(order, num_workers, check=False):
            for failure in batch.failures:  # reported, not replaced: the file is left out
                if items.on_bad_file == "error":
                    raise items.bad.error(failure)
                items.bad.add(failure)
            keep = [k for k, ok in enumerate(batch.ok) if ok]
            nhwc = batch.images[keep].permute(0, 2, 3, 1).contiguous().numpy()  # NHWC on disk
            for image in nhwc:
                if fh is None or shards[-1][1] == per_shard:
                    if fh is not None:
                        fh.close()
                    shards.append([f"images-{len(shards):05d}.u8", 0])
                    fh = open(tmp / shards[-1][0], "wb")
                raw = image.tobytes()
                fh.write(raw)
                images_digest.update(raw)
                shards[-1][1] += 1
            labels.append(items.y[[batch.indices[k] for k in keep]].numpy())
            bar.update(len(batch.indices))
    finally:
        bar.close()
        if fh is not None:
            fh.close()
    y = np.concatenate(labels).astype("<i8")
    if not len(y):
        raise DataError(f"{items.root}: no image could be packed")
    (tmp / LABELS_FILE).write_bytes(y.tobytes())
    index = {
        "format": FORMAT, "version": VERSION, "resolution": r, "channels": c, "layout": "NHWC uint8",
        "num_samples": int(len(y)), "class_names": list(items.class_names),
        "class_counts": np.bincount(y, minlength=items.num_classes).tolist(),
        "shards": [{"file": name, "count": n} for name, n in shards], "labels": LABELS_FILE,
        "content_sha256": _content_hash(r, c, items.class_names, y.tobytes(), images_digest.digest()),
        "source": str(Path(items.root).resolve()), "skipped": items.bad.record(),
        "written_by": f"condgan {__version__}",
    }
    atomic_write_bytes(tmp / INDEX_FILE, (json.dumps(index, indent=1) + "\n").encode())


def _content_hash(resolution: int, channels: int, class_names: tuple[str, ...], labels: bytes,
                  images_digest: bytes) -> str:
    """SHA-256 over the header (format, resolution, channels, class names), the labels and the
    SHA-256 of all shard bytes in order (computed while they stream past, so no second read)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([FORMAT, resolution, channels, list(class_names)]).encode() + b"\0")
    digest.update(labels)
    digest.update(images_digest)
    return digest.hexdigest()


# ---------------------------------------------------------------- reading


def _fail(path: Path, what: str) -> DataError:
    return DataError(f"{path}: {what} (not a pack written by `condgan data pack`, or a damaged one; pack it again)")


def read_index(root: str | os.PathLike) -> PackIndex:
    """The index of the pack at `root`, checked against the files beside it (sizes, not the hash)."""
    root = Path(root)
    path = root / INDEX_FILE
    if not path.is_file():
        what = "a folder of class sub-folders (data.name=folder)" if root.is_dir() else "nothing"
        raise DataError(f"{root}: expected a pack directory holding {INDEX_FILE}, found {what}")
    try:
        if path.stat().st_size > MAX_INDEX_BYTES:
            raise _fail(path, f"larger than {MAX_INDEX_BYTES} bytes")
        raw = json.loads(path.read_bytes())
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    except ValueError as e:
        raise _fail(path, f"not valid JSON ({one_line(e, 120)})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise _fail(path, f"format: expected {FORMAT!r}, found {one_line(repr(raw.get('format') if isinstance(raw, dict) else raw), 80)}")
    if raw.get("version") != VERSION:
        raise DataError(f"{path}: version {raw.get('version')!r}; this condgan reads version {VERSION}")

    def field(key: str, ok, expected: str):
        value = raw.get(key)
        if not ok(value):
            raise _fail(path, f"{key}: expected {expected}, found {one_line(repr(value), 80)}")
        return value

    def count(v, low=0) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= low

    r = field("resolution", lambda v: count(v, 1) and v <= 4096, "an int in [1, 4096]")
    c = field("channels", lambda v: v in (1, 3), "1 or 3")
    names = field("class_names", lambda v: isinstance(v, list) and v and all(isinstance(n, str) for n in v),
                  "a list of class names")
    counts = field("class_counts", lambda v: isinstance(v, list) and len(v) == len(names) and all(map(count, v)),
                   f"a list of {len(names)} counts")
    shards = field("shards", lambda v: isinstance(v, list) and v and all(
        isinstance(s, dict) and isinstance(s.get("file"), str) and "/" not in s["file"] and count(s.get("count"), 1)
        for s in v), "a list of {file, count}")
    n = field("num_samples", lambda v: count(v, 1) and v == sum(s["count"] for s in shards) == sum(counts),
              "the sum of the shard counts and of the class counts")
    digest = field("content_sha256", lambda v: isinstance(v, str) and len(v) == 64, "a SHA-256 hex digest")
    for s in shards:
        _check_size(root / s["file"], s["count"] * r * r * c)
    _check_size(root / LABELS_FILE, 8 * n)
    return PackIndex(root, r, c, tuple(names), tuple(counts), tuple((s["file"], s["count"]) for s in shards),
                     digest, str(raw.get("source", "")), raw.get("skipped") if isinstance(raw.get("skipped"), dict) else {})


def _check_size(path: Path, expected: int) -> None:
    try:
        size = path.stat().st_size
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e}); the pack is incomplete, pack it again") from None
    if size != expected:
        raise DataError(f"{path}: {size} bytes, expected {expected} from {INDEX_FILE}; the pack is damaged, pack it again")


class PackedImages(ImageItems):
    """The images of a pack, read from memory-mapped shards (opened lazily in each process)."""

    def __init__(self, index: PackIndex, rows: np.ndarray | None = None) -> None:
        self.index = index
        self.root = str(index.root)
        self.name = f"packed:{index.root.resolve()}"
        self.class_names = index.class_names
        self.sample_shape = (index.channels, index.resolution, index.resolution)
        self.on_bad_file, self.bad = "error", BadFiles(self.root)  # bytes never fail to decode
        labels = np.fromfile(index.root / LABELS_FILE, dtype="<i8")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(index.class_names)):
            raise _fail(index.root / LABELS_FILE, f"labels must lie in [0, {len(index.class_names)})")
        # rows: which images of the pack this set holds (a subset, data.num_samples), in order
        self.rows = np.arange(len(labels), dtype=np.int64) if rows is None else rows
        self.y = torch.from_numpy(labels[self.rows].astype(np.int64))
        self.starts = np.cumsum([0] + [n for _, n in index.shards], dtype=np.int64)
        self._maps: list[np.memmap] | None = None

    def __getstate__(self) -> dict:
        # memmaps are reopened in each worker: pickling one would copy its whole shard
        return {**self.__dict__, "_maps": None}

    def _shards(self) -> list[np.memmap]:
        if self._maps is None:
            r, c = self.index.resolution, self.index.channels
            self._maps = [np.memmap(self.index.root / name, dtype=np.uint8, mode="r", shape=(n, r, r, c))
                          for name, n in self.index.shards]
        return self._maps

    def _read(self, rows: np.ndarray) -> torch.Tensor:
        """uint8 N×C×H×W of pack rows `rows` (any order)."""
        shard = np.searchsorted(self.starts, rows, side="right") - 1
        out = np.empty((len(rows), self.index.resolution, self.index.resolution, self.index.channels), np.uint8)
        maps = self._shards()
        for k in np.unique(shard):
            at = np.flatnonzero(shard == k)
            out[at] = maps[k][rows[at] - self.starts[k]]
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()

    def _item(self, i: int) -> Item:
        return Item(self._read(self.rows[i:i + 1])[0], i, ())

    def read(self, index) -> torch.Tensor:
        index = np.asarray(torch.as_tensor(index).cpu(), dtype=np.int64).reshape(-1)
        return self._read(self.rows[index])

    def select(self, keep: np.ndarray) -> "PackedImages":
        out = PackedImages(self.index, self.rows[keep])
        out.y, out.class_names = self.y[keep], self.class_names  # as relabelled (`with_classes`), if they were
        return out

    def load(self, num_workers: int = 0) -> LabelledData:
        """Every image in memory (uint8), a shard at a time."""
        if self.nbytes > MAX_MEMORY_BYTES:
            return super().load(num_workers)  # refused there, with the message
        out = torch.empty((len(self), *self.sample_shape), dtype=torch.uint8)
        for i in range(0, len(self), 1 << 14):
            out[i:i + (1 << 14)] = self._read(self.rows[i:i + (1 << 14)])
        return LabelledData(out, self.y.clone(), self.class_names, self.name)


def open_pack(root: str | os.PathLike, resolution: int | None = None, channels: int | None = None) -> PackedImages:
    """The pack at `root` for streaming; `resolution`/`channels`, when given, must be the pack's."""
    index = read_index(root)
    for key, want, have in (("resolution", resolution, index.resolution), ("channels", channels, index.channels)):
        if want is not None and want != have:
            raise DataError(f"data.{key}: the pack {index.root} holds {have}, found {want}; pack the folder again "
                            f"with --{key} {want}, or leave data.{key} unset")
    return PackedImages(index)


def load_packed(root: str | os.PathLike, resolution: int | None = None, channels: int | None = None) -> LabelledData:
    """The pack at `root` in memory as uint8 N×C×R×R (the memory storage of a pack)."""
    return open_pack(root, resolution, channels).load()


def verify_pack(root: str | os.PathLike) -> str:
    """Recompute the pack's content hash from its files; a DataError when it differs from the index."""
    index = read_index(root)
    images = hashlib.sha256()
    for name, _ in index.shards:
        with open(index.root / name, "rb") as fh:
            while chunk := fh.read(1 << 24):
                images.update(chunk)
    found = _content_hash(index.resolution, index.channels, index.class_names,
                          (index.root / LABELS_FILE).read_bytes(), images.digest())
    if found != index.content_sha256:
        raise DataError(f"{index.root}: content hash {found[:12]}… differs from {INDEX_FILE}'s "
                        f"{index.content_sha256[:12]}…; the pack was changed or damaged, pack it again")
    return found
