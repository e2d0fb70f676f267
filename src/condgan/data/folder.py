"""A folder of class sub-folders of images: `root/<class name>/**/<image>` (the ImageNet layout).

Class names are the sorted sub-folder names, labels their indices. Images of any size and mode are
converted to RGB (channels=3) or 8-bit grayscale (channels=1), center-cropped to a square and
resized with PIL's bicubic filter (which PIL antialiases when shrinking) to `resolution`.
Transparent pixels are composited onto black. 16-bit grayscale images keep their top 8 bits.

A folder is read in two passes. `scan_folder` lists the files (kept compactly: 200,000 paths take
a few MB) and reads every header (mode and size, no pixels), in `num_workers` processes; that finds
the bad files — empty (0 bytes), unreadable, of a mode condgan does not convert, or with more than
MAX_IMAGE_PIXELS pixels — which `on_bad_file` refuses ("error": a DataError naming the first) or
leaves out ("skip": named in one warning line, `FolderImages.bad`). It returns a `FolderImages`,
whose items are decoded when read: by DataLoader workers while training (streaming), or all at once
by `load` (memory; `load_folder`). A file whose header reads but whose pixels do not (a truncated
JPEG) is found only then: see condgan.data.items.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset

from condgan.data.base import LabelledData, check_class_indices
from condgan.data.items import BadFiles, Failure, ImageItems, Item
from condgan.errors import DataError, one_line

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm"})
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
_WIDE_GRAY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L"})
# Modes `_to_mode` converts to "RGB" and "L" with their usual meaning (others, e.g. LAB or "La", are refused).
SUPPORTED_MODES = _GRAY_MODES | {"P", "PA", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr"}
PACKED_INDEX = "index.json"  # condgan.data.packed's index: named here to point users at data.name=packed
_SCAN_BATCH = 64  # headers per worker batch

# Images larger than this (width × height) are refused from their header, before any pixel is
# decoded: a few-kilobyte PNG can claim 100000×100000 pixels (a decompression bomb). Below PIL's
# own limit (Image.MAX_IMAGE_PIXELS, 89M), so PIL's bomb warning and error never fire first.
MAX_IMAGE_PIXELS = 64 * 1024 * 1024


def _is_visible(name: str) -> bool:
    # Hidden entries include macOS "._name.jpg" resource forks, which are not images.
    return not name.startswith(".")


@dataclass(frozen=True)
class FileList:
    """The image files of a folder: paths relative to `root` as one UTF-8 blob with end offsets
    (no Python object per file), the label of each, and the class names."""

    root: Path
    blob: bytes
    ends: np.ndarray  # int64 N: end offset of each path in `blob`
    labels: np.ndarray  # int64 N
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.ends)

    def relative(self, i: int) -> str:
        start = int(self.ends[i - 1]) if i else 0
        return self.blob[start:int(self.ends[i])].decode("utf-8", "surrogateescape")

    def path(self, i: int) -> Path:
        return self.root / self.relative(i)

    def select(self, keep: np.ndarray) -> "FileList":
        """The files at indices `keep`, in that order."""
        return _file_list(self.root, [self.relative(int(i)) for i in keep], self.labels[keep], self.class_names)


def _file_list(root: Path, names: list[str], labels: np.ndarray, class_names: tuple[str, ...]) -> FileList:
    encoded = [n.encode("utf-8", "surrogateescape") for n in names]
    ends = np.cumsum([len(e) for e in encoded], dtype=np.int64) if encoded else np.zeros(0, np.int64)
    return FileList(root, b"".join(encoded), ends, np.asarray(labels, dtype=np.int64), class_names)


def _walk_images(class_dir: Path) -> list[str]:
    """Visible image files under `class_dir`, relative to it, in the order of their path parts."""
    found: list[str] = []
    stack = [""]
    while stack:
        sub = stack.pop()
        with os.scandir(class_dir / sub if sub else class_dir) as entries:
            for entry in entries:
                if not _is_visible(entry.name):
                    continue
                rel = f"{sub}/{entry.name}" if sub else entry.name
                if entry.is_dir():
                    stack.append(rel)
                elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS and entry.is_file():
                    found.append(rel)
    return sorted(found, key=lambda rel: rel.split("/"))  # as sorted Paths compare: part by part


def class_folders(root: str | os.PathLike) -> list[Path]:
    """The class sub-folders of `root`, sorted by name (label = position), without reading any image."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder of class sub-folders, found {'a file' if root.exists() else 'nothing'}")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and _is_visible(d.name))
    if not class_dirs:
        loose = sum(1 for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        packed = (root / PACKED_INDEX).is_file()
        raise DataError(f"{root}: expected one sub-folder per class, found none"
                        + (f" ({loose} images lie directly in it; move them into class sub-folders)" if loose else "")
                        + (f" (it holds {PACKED_INDEX}: a packed dataset, read with data.name=packed)" if packed else ""))
    return class_dirs


def list_images(root: str | os.PathLike, only_classes: Sequence[int] | None = None) -> FileList:
    """The image files under `root/<class>/`, sorted by class then path, with their labels and the
    class names of all class folders (with `only_classes`, only those labels' folders are listed)."""
    root = Path(root)
    class_dirs = class_folders(root)
    if only_classes is not None:
        check_class_indices(only_classes, len(class_dirs), f"folder:{root}")
    wanted = set(range(len(class_dirs)) if only_classes is None else only_classes)
    names: list[str] = []
    labels: list[np.ndarray] = []
    for label, class_dir in enumerate(class_dirs):
        if label not in wanted:
            continue
        images = _walk_images(class_dir)
        if not images:
            raise DataError(f"{class_dir}: class folder holds no images (expected {', '.join(sorted(IMAGE_EXTENSIONS))})")
        names += [f"{class_dir.name}/{rel}" for rel in images]
        labels.append(np.full(len(images), label, dtype=np.int64))
    return _file_list(root, names, np.concatenate(labels), tuple(d.name for d in class_dirs))


class _BadImage(Exception):
    """Why an image cannot be used (the message is the reason, without the path)."""


@contextlib.contextmanager
def _open(path: Path) -> Iterator[Image.Image]:
    """The image at `path`, opened lazily (header only); `_BadImage` when it cannot be used."""
    try:
        if os.stat(path).st_size == 0:
            raise _BadImage("empty file (0 bytes)")
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS:
                raise _BadImage(f"{w}×{h} pixels, more than the {MAX_IMAGE_PIXELS} an image may have; "
                                "refusing to decode it")
            if im.mode not in SUPPORTED_MODES:
                raise _BadImage(f"unsupported image mode {im.mode!r}; expected one of {', '.join(sorted(SUPPORTED_MODES))}")
            yield im
    except _BadImage:
        raise
    except Exception as e:  # PIL signals unreadable, truncated and bomb files with several exception types
        raise _BadImage(f"cannot read image ({type(e).__name__}: {one_line(e, 200)})") from e


def _to_mode(im: Image.Image, mode: str) -> Image.Image:
    """Convert to "RGB" or "L": alpha composited onto black, 16-bit gray reduced to its top 8 bits."""
    if im.mode in _WIDE_GRAY_MODES:
        # PIL's convert("L") clips 16-bit values at 255 instead of scaling them.
        im = Image.fromarray((np.clip(np.asarray(im, dtype=np.int64), 0, 65535) >> 8).astype(np.uint8))
    if "A" in im.mode or "transparency" in im.info:
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return im.convert(mode)


def decode_image(path: Path, mode: str, resolution: int) -> np.ndarray:
    """The image at `path` as uint8 R×R (mode "L") or R×R×3 ("RGB"): converted, center-cropped, resized.

    Raises `DataError` naming the file when it cannot be used.
    """
    try:
        return _decode(path, mode, resolution)
    except _BadImage as e:
        raise DataError(f"{path}: {e}") from None


def _decode(path: Path, mode: str, resolution: int) -> np.ndarray:
    with _open(path) as im:
        try:
            im = _to_mode(im, mode)
            # fit = center crop to the target aspect (square), then resize.
            im = ImageOps.fit(im, (resolution, resolution), method=Image.Resampling.BICUBIC)
            return np.array(im, dtype=np.uint8)  # a writable copy (torch.from_numpy needs one)
        except Exception as e:  # pixel data that does not decode (truncated, corrupt)
            raise _BadImage(f"cannot read image ({type(e).__name__}: {one_line(e, 200)})") from e


class _Headers(Dataset):
    """(mode, width, height, reason) of each file, for the scan's DataLoader."""

    def __init__(self, files: FileList) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[str, int, int, str]:
        try:
            with _open(self.files.path(i)) as im:
                return im.mode, im.size[0], im.size[1], ""
        except _BadImage as e:
            return "", 0, 0, str(e)


class FolderImages(ImageItems):
    """The images of a scanned folder, decoded when read (see the module docstring)."""

    def __init__(self, files: FileList, channels: int, resolution: int, on_bad_file: str, bad: BadFiles,
                 replace_bad: bool = True) -> None:
        self.files = files  # its labels (folder order, sorted) pick a bad file's replacement; `y` may be relabelled
        # skip: a file whose pixels fail is replaced by the next good one (training), or only reported (packing)
        self.replace_bad = replace_bad
        self.root = str(files.root)
        self.name = f"folder:{files.root.resolve()}"
        self.class_names = files.class_names
        self.y = torch.from_numpy(files.labels)
        self.mode = "L" if channels == 1 else "RGB"
        self.sample_shape = (channels, resolution, resolution)
        self.on_bad_file, self.bad = on_bad_file, bad

    def _decoded(self, i: int) -> torch.Tensor:
        c, r, _ = self.sample_shape
        u = _decode(self.files.path(i), self.mode, r).reshape(r, r, c)
        return torch.from_numpy(np.ascontiguousarray(u.transpose(2, 0, 1)))

    def _item(self, i: int) -> Item:
        # Skip: the next good file of the same class (in file order, wrapping around) replaces a bad
        # one, so that the label stays right; labels are sorted by class (listing order).
        labels = self.files.labels
        lo = int(np.searchsorted(labels, labels[i], "left"))
        size = int(np.searchsorted(labels, labels[i], "right")) - lo
        failures: list[Failure] = []
        for k in range(size):
            j = lo + (i - lo + k) % size
            try:
                return Item(self._decoded(j), i, tuple(failures))
            except _BadImage as e:
                failures.append(Failure(self.files.relative(j), str(e)))
                if self.on_bad_file == "error" or not self.replace_bad:
                    return Item(torch.zeros(self.sample_shape, dtype=torch.uint8), i, tuple(failures), ok=False)
        # No file of the class decodes: reported (not raised here, where a worker would wrap it in a traceback)
        return Item(torch.zeros(self.sample_shape, dtype=torch.uint8), i, tuple(failures), ok=False)

    def select(self, keep: np.ndarray) -> "FolderImages":
        c, r, _ = self.sample_shape
        out = FolderImages(self.files.select(keep), c, r, self.on_bad_file, self.bad, self.replace_bad)
        out.y, out.class_names = self.y[keep], self.class_names  # as relabelled (`with_classes`), if they were
        return out

    def reporting_bad(self) -> "FolderImages":
        """These items with bad files reported (`Item.ok` False) rather than replaced: for packing."""
        out = self.select(np.arange(len(self)))
        out.replace_bad = False
        return out


def scan_folder(root: str | os.PathLike, resolution: int | None = None, channels: int | None = None,
                on_bad_file: str = "error", num_workers: int = 0, warn: bool = True,
                only_classes: Sequence[int] | None = None) -> FolderImages:
    """List `root/<class>/` and read every image header; the bad files are refused or left out.

    Args:
        root: the folder of class sub-folders.
        resolution: side R of the square output; None keeps the native size, which requires all
            images to share one square size.
        channels: 3 (RGB) or 1 (grayscale); None = 1 if every image is grayscale, else 3.
        on_bad_file: "error" (a DataError naming the first bad file and counting the others) or
            "skip" (they are left out; one warning line names the first few and counts them all).
        num_workers: processes reading the headers (0: this one).
        warn: print the warning line of skipped files (else the caller reports `bad` itself).
        only_classes: list and read only the images of these labels (labels and class names stay
            those of the whole folder); None: all.
    """
    if on_bad_file not in ("error", "skip"):
        raise DataError(f"on_bad_file: expected error or skip, found {on_bad_file!r}")
    if channels not in (None, 1, 3):
        raise DataError(f"{root}: channels must be 1 or 3, found {channels}")
    files = list_images(root, only_classes)
    bad = BadFiles(str(files.root))
    good: list[int] = []
    gray, sizes = True, set()
    loader = DataLoader(_Headers(files), batch_size=_SCAN_BATCH, num_workers=num_workers, collate_fn=list)
    i = 0
    for batch in loader:
        for mode, w, h, reason in batch:
            if reason:
                bad.add(Failure(files.relative(i), reason))
            else:
                good.append(i)
                gray &= mode in _GRAY_MODES
                if len(sizes) < 4:  # enough to say that sizes differ
                    sizes.add((w, h))
            i += 1
    if bad and on_bad_file == "error":
        raise bad.error()
    if not good:
        raise DataError(f"{files.root}: none of its {len(files)} images can be read (first: "
                        f"{bad.found[0].name}: {bad.found[0].reason})")
    if bad:
        if warn:
            print(bad.warning(), file=sys.stderr, flush=True)
        files = files.select(np.asarray(good, dtype=np.int64))
    if channels is None:
        channels = 1 if gray else 3
    if resolution is None:
        (w, h) = next(iter(sizes))
        if len(sizes) > 1 or w != h:
            examples = ", ".join(f"{w}×{h}" for w, h in sorted(sizes)[:3])
            raise DataError(f"{files.root}: images are not all one square size (found {examples}); choose a resolution")
        resolution = w
    return FolderImages(files, channels, resolution, on_bad_file, bad)


def load_folder(root: str | os.PathLike, resolution: int | None = None, channels: int | None = None,
                on_bad_file: str = "error", num_workers: int = 0, only_classes: Sequence[int] | None = None
                ) -> LabelledData:
    """Every image under `root/<class>/` in memory as uint8 N×C×R×R, labelled by its class folder.

    Arguments as for `scan_folder`; `num_workers` processes also do the decoding.
    """
    return scan_folder(root, resolution, channels, on_bad_file, num_workers, only_classes=only_classes).load(num_workers)
