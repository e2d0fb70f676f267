"""A folder of class sub-folders of images: `root/<class name>/**/<image>`.

Class names are the sorted sub-folder names, labels their indices. Images of any size and mode are
converted to RGB (channels=3) or 8-bit grayscale (channels=1), center-cropped to a square and
resized with PIL's bicubic filter (which PIL antialiases when shrinking) to `resolution`.
Transparent pixels are composited onto black. 16-bit grayscale images keep their top 8 bits.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps

from condgan.data.base import LabelledData, check_class_indices, images_to_unit_range
from condgan.errors import DataError, one_line

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm"})
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
_WIDE_GRAY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L"})


def _is_visible(name: str) -> bool:
    # Hidden entries include macOS "._name.jpg" resource forks, which are not images.
    return not name.startswith(".")


def class_folders(root: str | os.PathLike) -> list[Path]:
    """The class sub-folders of `root`, sorted by name (label = position), without reading any image."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder of class sub-folders, found {'a file' if root.exists() else 'nothing'}")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and _is_visible(d.name))
    if not class_dirs:
        loose = sum(1 for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        raise DataError(f"{root}: expected one sub-folder per class, found none"
                        + (f" ({loose} images lie directly in it; move them into class sub-folders)" if loose else ""))
    return class_dirs


def list_images(root: str | os.PathLike, only_classes: Sequence[int] | None = None
                ) -> tuple[list[tuple[Path, int]], tuple[str, ...]]:
    """The (image path, label) pairs under `root`, sorted, and the class names (of all class folders;
    with `only_classes`, only those labels' folders are listed)."""
    class_dirs = class_folders(root)
    if only_classes is not None:
        check_class_indices(only_classes, len(class_dirs), f"folder:{root}")
    wanted = set(range(len(class_dirs)) if only_classes is None else only_classes)
    files: list[tuple[Path, int]] = []
    for label, class_dir in enumerate(class_dirs):
        if label not in wanted:
            continue
        images = sorted(p for p in class_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
                        and p.is_file() and all(_is_visible(q) for q in p.relative_to(class_dir).parts))
        if not images:
            raise DataError(f"{class_dir}: class folder holds no images (expected {', '.join(sorted(IMAGE_EXTENSIONS))})")
        files += [(p, label) for p in images]
    return files, tuple(d.name for d in class_dirs)


# Images larger than this (width × height) are refused from their header, before any pixel is
# decoded: a few-kilobyte PNG can claim 100000×100000 pixels (a decompression bomb). Below PIL's
# own limit (Image.MAX_IMAGE_PIXELS, 89M), so PIL's bomb warning and error never fire first.
MAX_IMAGE_PIXELS = 64 * 1024 * 1024
MAX_FOLDER_BYTES = 4 << 30  # the uint8 N×R×R×C array a folder loads into (held as float32 after: 4×)


@contextlib.contextmanager
def _open(path: Path) -> Iterator[Image.Image]:
    """The image at `path`, opened lazily (header only) and refused when it has too many pixels."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS:
                raise DataError(f"{path}: {w}×{h} pixels, more than the {MAX_IMAGE_PIXELS} an image may have; "
                                "refusing to decode it")
            yield im
    except DataError:
        raise
    except Exception as e:  # PIL signals unreadable, truncated and bomb files with several exception types
        raise DataError(f"{path}: cannot read image ({type(e).__name__}: {one_line(e, 200)})") from e


def _header(path: Path) -> tuple[str, tuple[int, int]]:
    """(mode, size) from the image header, without decoding the pixels."""
    with _open(path) as im:
        return im.mode, im.size


def _to_mode(im: Image.Image, mode: str) -> Image.Image:
    """Convert to "RGB" or "L": alpha composited onto black, 16-bit gray reduced to its top 8 bits."""
    if im.mode in _WIDE_GRAY_MODES:
        # PIL's convert("L") clips 16-bit values at 255 instead of scaling them.
        im = Image.fromarray((np.clip(np.asarray(im, dtype=np.int64), 0, 65535) >> 8).astype(np.uint8))
    if "A" in im.mode or "transparency" in im.info:
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return im.convert(mode)


def _decode(path: Path, mode: str, resolution: int) -> np.ndarray:
    with _open(path) as im:
        im = _to_mode(im, mode)
        # fit = center crop to the target aspect (square), then resize.
        im = ImageOps.fit(im, (resolution, resolution), method=Image.Resampling.BICUBIC)
        return np.asarray(im, dtype=np.uint8)


def load_folder(root: str | os.PathLike, resolution: int | None = None, channels: int | None = None,
                only_classes: Sequence[int] | None = None) -> LabelledData:
    """Load every image under `root/<class>/` as N×C×R×R in [-1, 1], labelled by its class folder.

    Args:
        root: the folder of class sub-folders.
        resolution: side R of the square output; None keeps the native size, which requires all
            images to share one square size.
        channels: 3 (RGB) or 1 (grayscale); None = 1 if every image is grayscale, else 3.
        only_classes: decode only the images of these labels (labels and class names stay those of
            the whole folder); None: all.
    """
    root = Path(root)
    files, class_names = list_images(root, only_classes)
    headers = [_header(path) for path, _ in files]
    if channels is None:
        channels = 1 if all(mode in _GRAY_MODES for mode, _ in headers) else 3
    if channels not in (1, 3):
        raise DataError(f"{root}: channels must be 1 or 3, found {channels}")
    if resolution is None:
        sizes = {size for _, size in headers}
        (w, h) = next(iter(sizes))
        if len(sizes) > 1 or w != h:
            examples = ", ".join(f"{w}×{h}" for w, h in sorted(sizes)[:3])
            raise DataError(f"{root}: images are not all one square size (found {examples}); choose a resolution")
        resolution = w
    mode = "L" if channels == 1 else "RGB"
    total = len(files) * resolution * resolution * channels
    if total > MAX_FOLDER_BYTES:
        raise DataError(f"{root}: {len(files)} images of {resolution}×{resolution}×{channels} need {total} bytes, "
                        f"more than the limit of {MAX_FOLDER_BYTES}; choose a smaller resolution")
    out = np.empty((len(files), resolution, resolution, channels), dtype=np.uint8)
    for i, (path, _) in enumerate(files):
        out[i] = _decode(path, mode, resolution).reshape(resolution, resolution, channels)
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    return LabelledData(x=images_to_unit_range(out), y=labels, class_names=class_names, name=f"folder:{root.resolve()}")
