"""Datasets as labelled tensors: `load_dataset(name, split, ...) -> LabelledData`.

Names (`dataset_names()`): "mnist", "fashion-mnist" (IDX files), "cifar10" (python batches),
"folder" (class sub-folders of images; `data_dir` is the folder), "packed" (a folder packed by
`condgan data pack`; `data_dir` is the pack), "ring", "grid" (2D toys), "stacked-mnist",
"stacked-fashion-mnist" (three draws as RGB channels, 1000 modes). Images are held as uint8
(`LabelledData.stored`) and read as float in [-1, 1] with `LabelledData.x`. How training stores
and streams large sets: condgan.data.storage.
Files are looked up as described in `condgan.data.paths` and downloaded by
`condgan.data.fetch.fetch_dataset` (CLI: `condgan data fetch NAME`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from condgan.data.base import (LabelledData, check_class_indices, convert_channels, images_to_unit_range,
                               map_images, random_subset, resize_images, to_uint8_nhwc)
from condgan.data.cifar import load_cifar10
from condgan.data.folder import class_folders, load_folder
from condgan.data.idx import load_idx
from condgan.data.packed import load_packed, read_index
from condgan.data.stacked import BASES as STACKED_BASES, load_stacked
from condgan.data.toy2d import DEFAULT_NUM_SAMPLES, load_toy
from condgan.errors import ConfigError
from condgan.registry import Registry

__all__ = ["DATASETS", "LabelledData", "dataset_class_names", "dataset_names", "images_to_unit_range", "load_dataset", "to_uint8_nhwc"]

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DataRequest:
    """The arguments of `load_dataset`, validated, as handed to each registered loader."""

    split: str
    data_dir: Path | None
    resolution: int | None
    channels: int | None
    num_samples: int | None
    seed: int
    on_bad_file: str = "error"
    classes: tuple[int, ...] | None = None  # a loader may skip other classes' files (load_dataset selects them anyway)


def _one_set(name: str, what: str, load: Callable[[DataRequest], LabelledData]) -> Callable[[DataRequest], LabelledData]:
    def checked(r: DataRequest) -> LabelledData:
        if r.data_dir is None:
            raise ConfigError(f"dataset {name!r} needs data_dir (--data-dir): {what}")
        if r.split != "train":
            # A folder is one set; silently reusing it as the test split would evaluate on training data.
            raise ConfigError(f"dataset {name!r} has only the split 'train', found {r.split!r}; "
                              "point data_dir at the one holding the test images instead")
        return load(r)
    return checked


def _load_toy(name: str) -> Callable[[DataRequest], LabelledData]:
    def load(r: DataRequest) -> LabelledData:
        for field, value in (("resolution", r.resolution), ("channels", r.channels), ("data_dir", r.data_dir)):
            if value is not None:
                raise ConfigError(f"{field}: dataset {name!r} is 2D points, it takes no {field}; found {value}")
        return load_toy(name, r.split, r.num_samples or DEFAULT_NUM_SAMPLES, r.seed)
    return load


def _load_stacked(base: str) -> Callable[[DataRequest], LabelledData]:
    def load(r: DataRequest) -> LabelledData:
        return load_stacked(base, r.split, r.num_samples, r.seed, r.data_dir)
    return load


DATASETS: Registry[Callable[[DataRequest], LabelledData]] = Registry("dataset")
DATASETS.add("mnist", lambda r: load_idx("mnist", r.split, r.data_dir))
DATASETS.add("fashion-mnist", lambda r: load_idx("fashion-mnist", r.split, r.data_dir))
DATASETS.add("cifar10", lambda r: load_cifar10(r.split, r.data_dir))
DATASETS.add("folder", _one_set("folder", "the folder of class sub-folders", lambda r: load_folder(
    r.data_dir, resolution=r.resolution, channels=r.channels, on_bad_file=r.on_bad_file, only_classes=r.classes)))
DATASETS.add("packed", _one_set("packed", "the folder written by `condgan data pack`", lambda r: load_packed(
    r.data_dir, resolution=r.resolution, channels=r.channels)))
DATASETS.add("ring", _load_toy("ring"))
DATASETS.add("grid", _load_toy("grid"))
for _base in STACKED_BASES:  # "stacked-mnist", "stacked-fashion-mnist": 1000 modes (condgan.data.stacked)
    DATASETS.add(f"stacked-{_base}", _load_stacked(_base))


def select_classes(data: LabelledData, classes: Sequence[int]) -> LabelledData:
    """The samples of `classes` (indices into `data`'s classes), relabelled 0..k-1 in the order given."""
    k = data.num_classes
    check_class_indices(classes, k, data.name)
    local = torch.full((k,), -1, dtype=torch.long)
    local[torch.tensor(list(classes))] = torch.arange(len(classes))
    keep = local[data.y] >= 0
    return LabelledData(data.stored[keep], local[data.y[keep]], tuple(data.class_names[c] for c in classes), data.name)


def dataset_class_names(name: str, data_dir: str | os.PathLike | None = None) -> tuple[str, ...]:
    """The class names of dataset `name` (index = label); a folder's or pack's are read without decoding images."""
    if name == "folder":
        if data_dir is None:
            raise ConfigError("dataset 'folder' needs data_dir (--data-dir): the folder of class sub-folders")
        return tuple(d.name for d in class_folders(Path(data_dir).expanduser()))
    if name == "packed":
        if data_dir is None:
            raise ConfigError("dataset 'packed' needs data_dir (--data-dir): the folder written by `condgan data pack`")
        return read_index(Path(data_dir).expanduser()).class_names
    return load_dataset(name, "train", data_dir=data_dir).class_names


def dataset_names() -> list[str]:
    """The names `load_dataset` accepts."""
    return DATASETS.names()


def _check_positive(field: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{field}: expected a positive integer, found {value!r}")


def load_dataset(
    name: str,
    split: str = "train",
    *,
    data_dir: str | os.PathLike | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    num_samples: int | None = None,
    seed: int = 0,
    on_bad_file: str = "error",
    classes: Sequence[int] | None = None,
) -> LabelledData:
    """Load dataset `name` as a LabelledData: uint8 images N×C×H×W (read as float in [-1, 1] with
    `.x()`) or float N×2 points.

    Args:
        name: one of `dataset_names()`.
        split: "train" or "test"; the 2D toys draw the test split from a different seed.
        data_dir: where to look first for the files (for "folder": the folder itself).
        resolution: images are resized to resolution×resolution (bilinear, antialiased when
            shrinking, then rounded back to uint8; folders: PIL bicubic at load time; packs: must be
            the pack's); None keeps the native size.
        channels: 1 or 3; images are converted (gray = BT.601 luma, rounded to uint8; gray→RGB
            repeats); None keeps the native channels.
        num_samples: images: a random subset of this size (drawn with `seed`, kept in file order);
            2D toys: the number of points drawn (default 100000).
        seed: drives the subset choice and the toy draws.
        on_bad_file: folders: "error" refuses a bad image file by name, "skip" leaves it out and
            names it in a warning (condgan.data.folder).
        classes: keep only these classes (indices into the dataset's classes), relabelled 0..k-1 in
            the order given, with their names; applied before `num_samples`. None keeps all.
    """
    loader = DATASETS.get(name)
    if split not in SPLITS:
        raise ConfigError(f"split: unknown split {split!r}; expected one of: {', '.join(SPLITS)}")
    _check_positive("resolution", resolution)
    _check_positive("num_samples", num_samples)
    if channels is not None and channels not in (1, 3):
        raise ConfigError(f"channels: expected 1 or 3, found {channels!r}")
    if on_bad_file not in ("error", "skip"):
        raise ConfigError(f"on_bad_file: expected error or skip, found {on_bad_file!r}")
    request = DataRequest(split, Path(data_dir).expanduser() if data_dir is not None else None,
                          resolution, channels, num_samples, seed, on_bad_file,
                          tuple(classes) if classes is not None else None)
    data = loader(request)
    if classes is not None:
        data = select_classes(data, classes)
    if num_samples is not None and data.is_image:
        # Subset before resizing, so only the kept images are resized (the toys drew num_samples already).
        keep = random_subset(len(data), num_samples, seed, f"{name} {split}")
        data = data.subset(keep) if keep is not None else data
    resize = resolution is not None and data.is_image and data.sample_shape[1:] != (resolution, resolution)
    if resize or (channels is not None and data.is_image and data.sample_shape[0] != channels):
        def convert(x: torch.Tensor) -> torch.Tensor:
            x = resize_images(x, resolution) if resolution is not None else x
            return convert_channels(x, channels) if channels is not None else x
        data = LabelledData(map_images(data.stored, convert), data.y, data.class_names, data.name)
    return data
