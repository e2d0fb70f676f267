"""Image folders: class names, mixed sizes and modes, channel defaults, unreadable files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from condgan.data.folder import load_folder
from condgan.errors import DataError


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def solid(h: int, w: int, value, dtype=np.uint8) -> np.ndarray:
    value = np.asarray(value, dtype=dtype)
    return np.broadcast_to(value, (h, w) + value.shape).copy()


def test_mixed_sizes_and_modes(tmp_path):
    save(tmp_path / "dog" / "a.png", solid(10, 10, [255, 0, 0]))               # RGB, square
    save(tmp_path / "dog" / "sub" / "b.JPG", solid(40, 20, [0, 0, 255]))       # nested, upper-case suffix
    save(tmp_path / "cat" / "c.bmp", solid(7, 9, 128))                          # L, non-square
    save(tmp_path / "cat" / "d.webp", solid(16, 16, [0, 255, 0, 255]), "RGBA")  # RGBA, opaque
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "cat" / "._c.bmp").write_bytes(b"macOS resource fork")
    data = load_folder(tmp_path, resolution=8)
    assert data.class_names == ("cat", "dog")  # sorted sub-folder names
    assert data.y.tolist() == [0, 0, 1, 1]
    assert data.x().shape == (4, 3, 8, 8) and data.name == f"folder:{tmp_path.resolve()}"
    u = data.to_uint8_nhwc().astype(int)
    # Solid colours survive resizing and mode conversion (up to JPEG/WebP error).
    assert np.abs(u[0] - 128).max() == 0                      # gray → RGB repeats the value
    assert np.abs(u[1] - [0, 255, 0]).max() <= 3
    assert np.abs(u[2] - [255, 0, 0]).max() == 0
    assert np.abs(u[3] - [0, 0, 255]).max() <= 3


def test_channels_default_to_gray_only_when_every_image_is_gray(tmp_path):
    save(tmp_path / "a" / "1.png", solid(8, 8, 10))
    save(tmp_path / "b" / "2.png", solid(8, 8, 200))
    gray = load_folder(tmp_path)
    assert gray.x().shape == (2, 1, 8, 8)  # native resolution when all share one square size
    np.testing.assert_array_equal(gray.to_uint8_nhwc()[:, 0, 0, 0], [10, 200])
    save(tmp_path / "b" / "3.png", solid(8, 8, [1, 2, 3]))
    assert load_folder(tmp_path).x().shape == (3, 3, 8, 8)
    rgb_as_gray = load_folder(tmp_path, channels=1).to_uint8_nhwc()
    assert rgb_as_gray.shape == (3, 8, 8, 1)
    assert rgb_as_gray[2, 0, 0, 0] == round(0.299 * 1 + 0.587 * 2 + 0.114 * 3)  # BT.601 luma


def test_transparency_is_composited_onto_black(tmp_path):
    save(tmp_path / "a" / "1.png", solid(4, 4, [255, 255, 255, 0]), "RGBA")
    save(tmp_path / "a" / "2.png", solid(4, 4, [200, 0, 0, 255]), "RGBA")
    u = load_folder(tmp_path).to_uint8_nhwc()
    assert u[0].max() == 0 and u[1, 0, 0].tolist() == [200, 0, 0]


def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path):
    save(tmp_path / "a" / "1.png", solid(4, 4, 40000, np.uint16))
    data = load_folder(tmp_path)
    assert data.x().shape == (1, 1, 4, 4)
    assert data.to_uint8_nhwc()[0, 0, 0, 0] == 40000 >> 8


def test_non_square_crops_to_center(tmp_path):
    image = np.zeros((4, 12), np.uint8)
    image[:, 4:8] = 255  # white center square between black sides
    save(tmp_path / "a" / "1.png", image)
    u = load_folder(tmp_path, resolution=4).to_uint8_nhwc()
    assert u.min() == 255


def test_native_size_needs_one_square_size(tmp_path):
    save(tmp_path / "a" / "1.png", solid(8, 8, 0))
    save(tmp_path / "a" / "2.png", solid(6, 6, 0))
    with pytest.raises(DataError, match=r"not all one square size \(found 6×6, 8×8\); choose a resolution"):
        load_folder(tmp_path)


def test_unreadable_image_is_named(tmp_path):
    save(tmp_path / "a" / "good.png", solid(8, 8, 0))
    bad = tmp_path / "b" / "broken.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(DataError, match="broken.jpg: cannot read image"):
        load_folder(tmp_path, resolution=8)


def test_truncated_image_is_named(tmp_path):
    path = save(tmp_path / "a" / "cut.png", np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))
    path.write_bytes(path.read_bytes()[:2000])  # the header still parses; decoding fails
    with pytest.raises(DataError, match="cut.png: cannot read image"):
        load_folder(tmp_path, resolution=8)


def test_empty_and_flat_folders(tmp_path):
    with pytest.raises(DataError, match="found nothing"):
        load_folder(tmp_path / "missing")
    with pytest.raises(DataError, match="expected one sub-folder per class, found none$"):
        load_folder(tmp_path)
    save(tmp_path / "loose.png", solid(4, 4, 0))
    with pytest.raises(DataError, match="1 images lie directly in it"):
        load_folder(tmp_path)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DataError, match="empty_class: class folder holds no images"):
        load_folder(tmp_path)


def test_labels_are_int64_and_values_in_range(tmp_path):
    for k in range(3):
        save(tmp_path / f"class{k}" / "x.png", solid(5, 5, [k * 100] * 3))
    data = load_folder(tmp_path, resolution=5)
    assert data.y.dtype == torch.int64 and data.num_classes == 3
    assert data.x().min() >= -1 and data.x().max() <= 1
