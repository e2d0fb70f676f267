"""CIFAR-10 python batches: round trip, validation, lookup, and the restricted unpickler."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from condgan.data import paths
from condgan.data.cifar import _RECONSTRUCT, load_cifar10
from condgan.errors import DataError

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class _Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for the real batches: `str` (bytes) as BINSTRING opcodes
    and the numpy 1 global `numpy.core.multiarray._reconstruct`."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str

    def save_global(self, obj, name=None):
        if obj is _RECONSTRUCT:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def py2_pickle(obj, path: Path) -> None:
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(obj)


def write_batch(path: Path, data: np.ndarray, labels: list[int], py2: bool = True) -> None:
    batch = {b"batch_label": b"training batch 1 of 5", b"labels": labels, b"data": data,
             b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
    if py2:
        py2_pickle(batch, path)
    else:
        path.write_bytes(pickle.dumps(batch))


def make_cifar(root: Path, per_batch: int = 4, py2: bool = True, seed: int = 0) -> dict[str, tuple[np.ndarray, list]]:
    """Write a tiny cifar-10-batches-py under root; returns {file: (data, labels)}."""
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch).tolist()
        write_batch(d / name, data, labels, py2)
        written[name] = (data, labels)
    meta = {b"num_cases_per_batch": per_batch, b"label_names": [n.encode() for n in NAMES], b"num_vis": 3072}
    py2_pickle(meta, d / "batches.meta") if py2 else (d / "batches.meta").write_bytes(pickle.dumps(meta))
    return written


@pytest.fixture(autouse=True)
def isolated_lookup(tmp_path, monkeypatch):
    monkeypatch.delenv("CONDGAN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(paths, "SYSTEM_DATA_DIR", tmp_path / "system")


def test_py2_style_pickle_is_what_real_batches_look_like(tmp_path):
    """The helper really writes BINSTRING keys and the numpy-1 global, like the real files."""
    py2_pickle({b"data": np.zeros((1, 3072), np.uint8)}, tmp_path / "b")
    raw = (tmp_path / "b").read_bytes()
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw and b"U\x04data" in raw


@pytest.mark.parametrize("py2", [True, False], ids=["python2-layout", "python3-pickle"])
def test_round_trip(tmp_path, py2):
    written = make_cifar(tmp_path, py2=py2)
    train = load_cifar10("train", data_dir=tmp_path)
    assert train.x().shape == (20, 3, 32, 32) and train.x().dtype == torch.float32
    assert train.class_names == tuple(NAMES) and train.name == "cifar10"
    expected = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    # Row layout: 1024 red, 1024 green, 1024 blue values, each plane row-major.
    np.testing.assert_array_equal(train.to_uint8_nhwc(), expected.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert train.y.tolist() == sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    test = load_cifar10("test", data_dir=tmp_path / "cifar-10-batches-py")  # the batches dir itself works too
    assert test.y.tolist() == written["test_batch"][1]


def test_found_in_cache(tmp_path):
    make_cifar(tmp_path / "cache" / "condgan" / "cifar10")
    assert len(load_cifar10("test")) == 4


def test_not_found_says_how_to_fetch(tmp_path):
    with pytest.raises(DataError, match="condgan data fetch cifar10") as err:
        load_cifar10("train", data_dir=tmp_path)
    assert str(tmp_path) in str(err.value)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_and_not_executed(tmp_path):
    make_cifar(tmp_path)
    marker = tmp_path / "pwned"
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps({b"data": _Evil(marker), b"labels": [0]}))
    with pytest.raises(DataError, match=r"refusing to unpickle (posix|os|nt)\.system") as err:
        load_cifar10("test", data_dir=tmp_path)
    assert str(path) in str(err.value)
    assert not marker.exists()


def test_builtins_eval_is_refused(tmp_path):
    make_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "batches.meta"
    path.write_bytes(b"cbuiltins\neval\n(V1+1\ntR.")
    with pytest.raises(DataError, match=r"batches.meta: refusing to unpickle builtins.eval"):
        load_cifar10("test", data_dir=tmp_path)


def test_truncated_batch_names_file(tmp_path):
    make_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="data_batch_3: cannot unpickle"):
        load_cifar10("train", data_dir=tmp_path)


def test_wrong_shape_and_counts(tmp_path):
    make_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    write_batch(path, np.zeros((4, 1024), np.uint8), [0, 1, 2, 3])
    with pytest.raises(DataError, match=r"test_batch: 'data' must be a uint8 N×3072 array, found uint8 array \(4, 1024\)"):
        load_cifar10("test", data_dir=tmp_path)
    write_batch(path, np.zeros((4, 3072), np.uint8), [0, 1, 2])
    with pytest.raises(DataError, match="test_batch: 4 images but 3 labels"):
        load_cifar10("test", data_dir=tmp_path)
    write_batch(path, np.zeros((2, 3072), np.uint8), [0, 10])
    with pytest.raises(DataError, match=r"test_batch: labels must lie in \[0, 10\)"):
        load_cifar10("test", data_dir=tmp_path)


def test_missing_key_and_bad_meta(tmp_path):
    make_cifar(tmp_path)
    d = tmp_path / "cifar-10-batches-py"
    py2_pickle({b"data": np.zeros((1, 3072), np.uint8)}, d / "test_batch")
    with pytest.raises(DataError, match="test_batch: missing key 'labels'"):
        load_cifar10("test", data_dir=tmp_path)
    write_batch(d / "test_batch", np.zeros((1, 3072), np.uint8), [0])
    py2_pickle({b"label_names": [b"a", b"b"]}, d / "batches.meta")
    with pytest.raises(DataError, match="batches.meta: expected 'label_names' to be a list of 10 names"):
        load_cifar10("test", data_dir=tmp_path)
