"""`load_dataset`: the registry, argument checks, subsets, resizing and channel conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from condgan.data import DATASETS, dataset_names, load_dataset
from condgan.errors import ConfigError
from test_data_idx import isolated_lookup, make_split  # noqa: F401 (the autouse fixture applies here too)


def test_names():
    assert dataset_names() == ["cifar10", "fashion-mnist", "folder", "grid", "mnist", "packed", "ring", "stacked-fashion-mnist",
                               "stacked-mnist"]
    assert "ring" in DATASETS


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "imagenet"}, "unknown dataset 'imagenet'; expected one of: cifar10, fashion-mnist"),
    ({"name": "ring", "split": "val"}, "unknown split 'val'; expected one of: train, test"),
    ({"name": "mnist", "resolution": 0}, "resolution: expected a positive integer, found 0"),
    ({"name": "mnist", "num_samples": -5}, "num_samples: expected a positive integer"),
    ({"name": "mnist", "channels": 2}, "channels: expected 1 or 3, found 2"),
    ({"name": "ring", "resolution": 32}, "resolution: dataset 'ring' is 2D points"),
    ({"name": "folder"}, "needs data_dir"),
])
def test_bad_arguments_raise_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        load_dataset(**kwargs)


def test_folder_has_no_test_split(tmp_path):
    with pytest.raises(ConfigError, match="only the split 'train'"):
        load_dataset("folder", "test", data_dir=tmp_path)


def test_resize_and_channels(tmp_path):
    images, labels = make_split(tmp_path, n=6)
    data = load_dataset("mnist", data_dir=tmp_path, resolution=32, channels=3)
    assert data.x().shape == (6, 3, 32, 32) and data.y.tolist() == labels.tolist()
    assert torch.equal(data.x()[:, 0], data.x()[:, 2])  # gray repeated into RGB
    assert data.x().min() >= -1 and data.x().max() <= 1
    small = load_dataset("mnist", data_dir=tmp_path, resolution=13)
    # Antialiased bilinear shrinking matches PIL's bilinear resize (which rounds to uint8).
    pil = np.stack([np.asarray(Image.fromarray(im).resize((13, 13), Image.Resampling.BILINEAR)) for im in images])
    assert np.abs(small.to_uint8_nhwc()[..., 0].astype(int) - pil).max() <= 1
    native = load_dataset("mnist", data_dir=tmp_path)
    assert native.x().shape == (6, 1, 28, 28)


def test_subset_is_seeded_and_keeps_file_order(tmp_path):
    make_split(tmp_path, n=20)
    full = load_dataset("mnist", data_dir=tmp_path)
    a = load_dataset("mnist", data_dir=tmp_path, num_samples=5, seed=1)
    assert len(a) == 5 and torch.equal(a.y, load_dataset("mnist", data_dir=tmp_path, num_samples=5, seed=1).y)
    rows = [int(torch.nonzero((full.x() == xi).flatten(1).all(1))[0]) for xi in a.x()]
    assert rows == sorted(rows)
    with pytest.raises(ConfigError, match="holds 20 samples, fewer than the 50 asked for"):
        load_dataset("mnist", data_dir=tmp_path, num_samples=50)


def test_toys_through_load_dataset():
    ring = load_dataset("ring", num_samples=500, seed=2)
    assert ring.x().shape == (500, 2) and ring.num_classes == 8
    assert load_dataset("grid").x().shape == (100_000, 2)
    assert not torch.equal(ring.x(), load_dataset("ring", "test", num_samples=500, seed=2).x())


def test_folder_through_load_dataset(tmp_path: Path):
    for name, value in (("a", 0), ("b", 255)):
        (tmp_path / name).mkdir()
        Image.fromarray(np.full((6, 6, 3), value, np.uint8)).save(tmp_path / name / "x.png")
    data = load_dataset("folder", data_dir=tmp_path, resolution=4, channels=1)
    assert data.x().shape == (2, 1, 4, 4) and data.class_names == ("a", "b")
    assert data.x()[0].max() == -1 and data.x()[1].min() == 1
