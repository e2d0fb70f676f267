"""IDX (MNIST / Fashion-MNIST) reading, validation and lookup order; the base conversions."""

from __future__ import annotations

import gzip
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from condgan.data import paths
from condgan.data.base import LabelledData, images_to_unit_range, to_uint8_nhwc
from condgan.data.idx import CLASS_NAMES, load_idx
from condgan.errors import ConfigError, DataError

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> Path:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz)."""
    magic = (0x0800 | array.ndim) if magic is None else magic
    payload = struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


def make_split(directory: Path, split: str = "train", n: int = 12, gz: bool = True, seed: int = 0):
    """Write a small IDX split; returns the uint8 images and labels written."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    prefix = "train" if split == "train" else "t10k"
    suffix = ".gz" if gz else ""
    directory.mkdir(parents=True, exist_ok=True)
    write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


@pytest.fixture(autouse=True)
def isolated_lookup(tmp_path, monkeypatch):
    """No test sees the real cache, $CONDGAN_DATA or /usr/share/datasets unless it asks."""
    monkeypatch.delenv("CONDGAN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(paths, "SYSTEM_DATA_DIR", tmp_path / "system")


# --- base conversions --------------------------------------------------------------------------


def test_uint8_round_trip_is_exact_for_every_value():
    u = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    x = images_to_unit_range(u)
    assert x.shape == (1, 3, 16, 16) and x.dtype == torch.float32
    assert x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_array_equal(to_uint8_nhwc(x), u)


def test_nhw_input_becomes_one_channel_and_out_of_range_is_clamped():
    assert images_to_unit_range(np.zeros((2, 5, 7), np.uint8)).shape == (2, 1, 5, 7)
    out = to_uint8_nhwc(torch.tensor([-3.0, 3.0]).view(1, 2, 1, 1))
    np.testing.assert_array_equal(out.ravel(), [0, 255])


def test_labelled_data_properties_and_validation():
    data = LabelledData(torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 2, 1]), ("a", "b", "c"), "toy")
    assert (data.num_classes, data.is_image, data.sample_shape, len(data)) == (3, True, (1, 8, 8), 4)
    assert data.to_uint8_nhwc().shape == (4, 8, 8, 1)
    with pytest.raises(DataError, match=r"labels must lie in \[0, 2\)"):
        LabelledData(torch.zeros(2, 2), torch.tensor([0, 2]), ("a", "b"), "toy")
    with pytest.raises(DataError, match="not images"):
        LabelledData(torch.zeros(2, 2), torch.tensor([0, 1]), ("a", "b"), "toy").to_uint8_nhwc()


# --- reading -----------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("split", ["train", "test"])
def test_round_trip(tmp_path, gz, split):
    images, labels = make_split(tmp_path, split, gz=gz)
    data = load_idx("mnist", split, data_dir=tmp_path)
    assert data.x().shape == (12, 1, 28, 28) and data.x().dtype == torch.float32
    np.testing.assert_array_equal(data.to_uint8_nhwc()[..., 0], images)
    np.testing.assert_array_equal(data.y.numpy(), labels)
    assert data.y.dtype == torch.int64
    assert data.class_names == tuple("0123456789") and data.name == "mnist"


def test_bad_magic_names_file_expected_and_found(tmp_path):
    make_split(tmp_path)
    bad = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((12, 28, 28), np.uint8), magic=2049)
    with pytest.raises(DataError, match="expected 2051, found 2049") as err:
        load_idx("mnist", data_dir=tmp_path)
    assert str(bad) in str(err.value)


def test_truncated_gzip_names_file(tmp_path):
    make_split(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        load_idx("mnist", data_dir=tmp_path)
    assert str(path) in str(err.value)


def test_corrupt_gzip_names_file(tmp_path):
    make_split(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[12:20] = b"\xff" * 8  # inside the deflate stream
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz"):
        load_idx("mnist", data_dir=tmp_path)


def test_payload_shorter_than_header_says(tmp_path):
    make_split(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-28])
    with pytest.raises(DataError, match=r"need 9408 data bytes, found 9380") as err:
        load_idx("mnist", data_dir=tmp_path)
    assert str(path) in str(err.value)


def test_image_and_label_counts_must_match(tmp_path):
    make_split(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8))
    with pytest.raises(DataError, match="12 images but .*train-labels-idx1-ubyte.gz holds 11 labels"):
        load_idx("mnist", data_dir=tmp_path)


def test_label_out_of_range(tmp_path):
    make_split(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([0] * 5 + [10] + [0] * 6, np.uint8))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz: labels must lie in \[0, 10\), found 10 at index 5"):
        load_idx("mnist", data_dir=tmp_path)


def test_unknown_name_or_split():
    with pytest.raises(ConfigError, match="fashion-mnist"):
        load_idx("kmnist")
    with pytest.raises(ConfigError, match="train, test"):
        load_idx("mnist", "val")


# --- lookup order ------------------------------------------------------------------------------


def _first_label(data: LabelledData) -> int:
    return int(data.y[0])


def test_lookup_order(tmp_path, monkeypatch):
    """data_dir, data_dir/NAME, $CONDGAN_DATA, $CONDGAN_DATA/NAME, cache, system dir: first wins.

    Each place holds a different one-sample split whose label says which place it is.
    """
    places = [
        tmp_path / "explicit",
        tmp_path / "explicit2" / "fashion-mnist",
        tmp_path / "env",
        tmp_path / "env2" / "fashion-mnist",
        tmp_path / "cache" / "condgan" / "fashion-mnist",
        tmp_path / "system" / "fashion-mnist",
    ]
    for label, place in enumerate(places):
        place.mkdir(parents=True)
        write_idx(place / "train-images-idx3-ubyte.gz", np.zeros((1, 28, 28), np.uint8))
        write_idx(place / "train-labels-idx1-ubyte.gz", np.array([label], np.uint8))

    def load(data_dir, env):
        if env is None:
            monkeypatch.delenv("CONDGAN_DATA", raising=False)
        else:
            monkeypatch.setenv("CONDGAN_DATA", str(env))
        return _first_label(load_idx("fashion-mnist", data_dir=data_dir))

    assert load(places[0], places[2]) == 0
    assert load(tmp_path / "explicit2", places[2]) == 1
    assert load(tmp_path / "nowhere", places[2]) == 2
    assert load(None, tmp_path / "env2") == 3
    assert load(None, None) == 4
    (places[4] / "train-labels-idx1-ubyte.gz").unlink()  # an incomplete place is skipped
    assert load(None, None) == 5


def test_not_found_lists_places_and_both_remedies(tmp_path):
    with pytest.raises(DataError) as err:
        load_idx("fashion-mnist", data_dir=tmp_path / "mine")
    message = str(err.value)
    for place in (tmp_path / "mine", tmp_path / "mine" / "fashion-mnist",
                  tmp_path / "cache" / "condgan" / "fashion-mnist", tmp_path / "system" / "fashion-mnist"):
        assert str(place) in message
    assert "condgan data fetch fashion-mnist" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "--data-dir" in message
    with pytest.raises(DataError) as err:
        load_idx("mnist")
    assert "condgan data fetch mnist" in str(err.value) and "apt-get" not in str(err.value)


# --- the real files, when Debian's dataset-fashion-mnist is installed --------------------------


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_system_dir(monkeypatch):
    monkeypatch.setattr(paths, "SYSTEM_DATA_DIR", DEBIAN_FASHION.parent)
    start = time.perf_counter()
    train = load_idx("fashion-mnist", "train")
    seconds = time.perf_counter() - start
    assert train.x().shape == (60000, 1, 28, 28)
    assert train.x().min() == -1.0 and train.x().max() == 1.0
    # Fashion-MNIST is balanced: 6000 training images per class.
    assert train.y.bincount().tolist() == [6000] * 10
    assert train.class_names == CLASS_NAMES["fashion-mnist"]
    assert seconds < 5, f"loading took {seconds:.1f} s"
    test = load_idx("fashion-mnist", "test")
    assert test.x().shape == (10000, 1, 28, 28) and test.y.bincount().tolist() == [1000] * 10
