"""Hostile and broken inputs across every loader, config field kind and CLI verb.

Each case runs the real CLI (in-process through `condgan.cli.main`, a representative subset also
as a subprocess `python -m condgan.cli`) and asserts what the user sees: exit code 2, exactly one
line on stderr starting `condgan: error:`, no traceback, a short message, and every file of a run
directory or output that existed before byte-identical after.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

import condgan
from cli_data import write_fashion_like
from condgan.cli import main
from condgan.data import paths
from condgan.errors import WriteError
from condgan.io import atomic_write_bytes, check_writable
from condgan.metrics.classifier import JudgeCNN, save_judge

MAX_STDERR = 500
TINY = ["--set", "model.g_channels=8", "--set", "model.d_channels=8", "--set", "train.ckpt_every=2",
        "--set", "train.grid_every=2", "--set", "train.log_every=2", "--no-progress"]
SRC = str(Path(condgan.__file__).resolve().parents[1])


# ------------------------------------------------------------------ shared inputs


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No case sees the real cache, $CONDGAN_DATA or /usr/share/datasets."""
    monkeypatch.delenv("CONDGAN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(paths, "SYSTEM_DATA_DIR", tmp_path / "system")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny Fashion-MNIST-like dir, a 2-step run trained on it, a judge and a valid samples file."""
    root = tmp_path_factory.mktemp("bad-inputs")
    fm = write_fashion_like(root / "fm", n=40)
    run = root / "run"
    assert main(["train", "--data-dir", str(fm), "--out", str(run), "--steps", "2", "--batch-size", "8",
                 *TINY]) == 0
    judge = root / "judge.safetensors"
    save_judge(JudgeCNN(1, 28, 10), judge, dataset="fashion-mnist", class_names=[str(i) for i in range(10)],
               sample_shape=(1, 28, 28), test_accuracy=0.1)
    from condgan.data import load_dataset

    test = load_dataset("fashion-mnist", "test", data_dir=fm)
    samples = root / "s.npz"
    np.savez(samples, images=test.to_uint8_nhwc(), labels=test.y.numpy())
    return {"root": root, "fm": fm, "run": run, "judge": judge, "samples": samples}


def snapshot(*roots: Path) -> dict[str, str]:
    """sha256 of every file under `roots` (hidden ones included), by path."""
    out = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for p in files:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def check_one_line(rc: int, err: str, out: str = "") -> str:
    assert rc == 2, f"exit code {rc}, stderr: {err[-2000:]}"
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("condgan: error: "), err[-2000:]
    assert len(err) < MAX_STDERR, err
    return lines[0]


# ------------------------------------------------------------------ builders of bad inputs


def idx_bytes(magic: int, dims: tuple[int, ...], body: bytes | None = None) -> bytes:
    return struct.pack(f">I{len(dims)}I", magic, *dims) + (body if body is not None else bytes(int(np.prod(dims))))


def idx_dir(tmp: Path, images: bytes | None = None, labels: bytes | None = None, gz: bool = True) -> Path:
    """A fashion-mnist train split of 4 images in `tmp/idx`, with either file replaced."""
    d = tmp / "idx"
    d.mkdir(exist_ok=True)
    images = images if images is not None else idx_bytes(2051, (4, 28, 28))
    labels = labels if labels is not None else idx_bytes(2049, (4,))
    suffix = ".gz" if gz else ""
    for name, raw in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)):
        (d / f"{name}{suffix}").write_bytes(gzip.compress(raw) if gz else raw)
    return d


def gz_trailing_bomb(tmp: Path) -> Path:
    """A valid 4-image file followed by 64 MiB of zeros: ~64 KiB gzipped."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    raw = comp.compress(idx_bytes(2051, (4, 28, 28)))
    zeros = bytes(1 << 20)
    for _ in range(64):
        raw += comp.compress(zeros)
    raw += comp.flush()
    d = idx_dir(tmp)
    (d / "train-images-idx3-ubyte.gz").write_bytes(raw)
    return d


def cifar_dir(tmp: Path, batch: bytes | None = None, sparse_size: int | None = None) -> Path:
    d = tmp / "cifar" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    good = pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]})
    for i in range(1, 6):
        (d / f"data_batch_{i}").write_bytes(good)
    (d / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    if batch is not None:
        (d / "data_batch_1").write_bytes(batch)
    if sparse_size is not None:
        with open(d / "data_batch_1", "r+b") as fh:
            fh.truncate(sparse_size)  # sparse: costs no disk
    return tmp / "cifar"


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def png_header(w: int, h: int) -> bytes:
    """A PNG whose header claims w×h 8-bit gray pixels, with almost no data: a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b"")


def folder_dir(tmp: Path, name: str, raw: bytes) -> Path:
    from PIL import Image

    d = tmp / "folder"
    (d / "a").mkdir(parents=True)
    (d / "b").mkdir()
    Image.new("L", (32, 32)).save(d / "a" / "ok.png")
    (d / "b" / name).write_bytes(raw)
    return d


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def zip_bomb() -> bytes:
    """Three tiny .npy members whose zip entries each declare ~4 GiB: 12 GiB in a few hundred bytes."""
    raw = bytearray(npz_bytes(a=np.zeros(4, np.uint8), b=np.zeros(4, np.uint8), c=np.zeros(4, np.uint8)))
    for sig, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        start = 0
        while (start := raw.find(sig, start)) >= 0:
            raw[start + offset:start + offset + 4] = struct.pack("<I", 0xFFFFFFF0)
            start += 4
    return bytes(raw)


def npy_header_lies() -> bytes:
    """A member whose .npy header claims 10⁶ images but which holds 10 bytes."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 28, 28, 1), np.uint8))
    header["shape"] = (10**6, 28, 28, 1)
    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(npy, header)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("images.npy", npy.getvalue() + bytes(10))
        zf.writestr("labels.npy", npz_member(np.zeros(40, np.int64)))
    return buf.getvalue()


def npz_member(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def edit_checkpoint(run: Path, edit) -> Path:
    """Apply `edit(state)` to the newest checkpoint of `run` (state as loaded), rewrite it."""
    (path,) = sorted((run / "checkpoints").iterdir())[-1:]
    state = torch.load(path, weights_only=True)
    edit(state)
    torch.save(state, path)
    return path


def _set(d: dict, keys: str, value) -> None:
    *head, last = keys.split(".")
    for k in head:
        d = d[k]
    d[last] = value


def _first_weight(state, shape=(1,)):
    name = next(iter(state["model"]))
    state["model"][name] = torch.zeros(shape)


def _nan_weight(state):
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name] = state["model"][name].clone().fill_(float("nan"))


def _optim_shapes(state):
    opt = next(iter(state["optimizers"].values()))
    for per_param in opt["state"].values():
        per_param["exp_avg"] = torch.zeros(3, 3, 3)
        break


CKPT_EDITS = {
    "random_bytes": lambda p: p.write_bytes(os.urandom(2048)),
    "empty": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "evil_pickle": lambda p: torch.save({"step": 1, "model": _Evil(), "optimizers": {}, "meta": {}}, p),
    "not_a_dict": lambda p: torch.save([1, 2, 3], p),
}
META_EDITS = {
    "step_str": lambda s: s.update(step="two"),
    "meta_not_dict": lambda s: s.update(meta=[1]),
    "sample_shape_str": lambda s: _set(s, "meta.sample_shape", "1x28x28"),
    "sample_shape_floats": lambda s: _set(s, "meta.sample_shape", [1.0, 28.0, 28.0]),
    "sample_shape_huge": lambda s: _set(s, "meta.sample_shape", [3, 10**6, 10**6]),
    "num_classes_negative": lambda s: _set(s, "meta.num_classes", -3),
    "num_classes_str": lambda s: _set(s, "meta.num_classes", "10"),
    "class_names_short": lambda s: _set(s, "meta.class_names", ["a"]),
    "num_samples_huge": lambda s: _set(s, "meta.num_samples", 10**15),
    "missing_config": lambda s: s["meta"].pop("config"),
    "config_invalid": lambda s: _set(s, "meta.config.train.steps", "many"),
    "config_disagrees": lambda s: _set(s, "meta.config.data.resolution", 32),
    "weight_shape": _first_weight,
    "weight_not_tensor": lambda s: s["model"].update({next(iter(s["model"])): [1, 2]}),
    "weight_nan": _nan_weight,
    "optimizer_not_dict": lambda s: s.update(optimizers={"G": 5}),
}


# ------------------------------------------------------------------ the table

# (id, build(tmp, base) -> substitutions, argv template, needle). Builders return a dict used to
# fill "{name}" in the argv; the key "watch" (a list of paths) names what must stay byte-identical.

def _dir(**kw):
    return lambda tmp, b: kw


CASES = [
    # --- IDX loaders (condgan data info)
    ("idx_bad_magic", lambda t, b: {"d": idx_dir(t, images=idx_bytes(2049, (4, 28, 28)))},
     ["data", "info", "fashion-mnist", "--data-dir", "{d}"], "bad IDX magic number"),
    ("idx_truncated", lambda t, b: {"d": idx_dir(t, images=idx_bytes(2051, (4, 28, 28))[:-100], gz=False)},
     ["data", "info", "fashion-mnist", "--data-dir", "{d}"], "need 3136 data bytes, found 3036"),
    ("idx_truncated_gzip", lambda t, b: {"d": _cut_gz(idx_dir(t))},
     ["data", "info", "fashion-mnist", "--data-dir", "{d}"], "truncated or corrupt"),
    ("idx_header_bomb", lambda t, b: {"d": idx_dir(t, images=idx_bytes(2051, (4_000_000_000, 28, 28), b""))},
     ["data", "info", "fashion-mnist", "--data-dir", "{d}"], "more than 10000000 items"),
    ("idx_wrong_dims", lambda t, b: {"d": idx_dir(t, images=idx_bytes(2051, (4, 4096, 4096), b""))},
     ["data", "info", "fashion-mnist", "--data-dir", "{d}"], "expected N×28×28"),
    ("idx_trailing_gzip_bomb", lambda t, b: {"d": gz_trailing_bomb(t)},
     ["data", "info", "fashion-mnist", "--data-dir", "{d}"], "data after the 3136 bytes"),
    ("idx_header_only", lambda t, b: {"d": idx_dir(t, labels=b"\x00\x00\x08")},
     ["data", "info", "fashion-mnist", "--data-dir", "{d}"], "too short for an IDX header"),
    # --- CIFAR
    ("cifar_garbage", lambda t, b: {"d": cifar_dir(t, batch=os.urandom(500))},
     ["data", "info", "cifar10", "--data-dir", "{d}"], "data_batch_1"),
    ("cifar_evil", lambda t, b: {"d": cifar_dir(t, batch=pickle.dumps({"data": _Evil()}))},
     ["data", "info", "cifar10", "--data-dir", "{d}"], "refusing to unpickle posix.system"),
    ("cifar_not_dict", lambda t, b: {"d": cifar_dir(t, batch=pickle.dumps([1, 2]))},
     ["data", "info", "cifar10", "--data-dir", "{d}"], "expected a pickled dict"),
    ("cifar_oversized", lambda t, b: {"d": cifar_dir(t, sparse_size=(64 << 20) + 1)},
     ["data", "info", "cifar10", "--data-dir", "{d}"], "refusing to unpickle it"),
    ("cifar_huge_length", lambda t, b: {"d": cifar_dir(t, batch=b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"ab")},
     ["data", "info", "cifar10", "--data-dir", "{d}"], "cannot unpickle"),
    # --- image folders
    ("folder_corrupt", lambda t, b: {"d": folder_dir(t, "x.png", b"\x89PNG\r\n\x1a\n garbage")},
     ["data", "info", "folder", "--data-dir", "{d}"], "x.png: cannot read image"),
    ("folder_truncated", lambda t, b: {"d": folder_dir(t, "x.png", _png_bytes()[:60])},
     ["data", "info", "folder", "--data-dir", "{d}"], "x.png: cannot read image"),
    ("folder_bomb_ours", lambda t, b: {"d": folder_dir(t, "x.png", png_header(9000, 9000))},
     ["data", "info", "folder", "--data-dir", "{d}"], "x.png: 9000×9000 pixels, more than"),
    ("folder_bomb_pil", lambda t, b: {"d": folder_dir(t, "x.png", png_header(100_000, 100_000))},
     ["data", "info", "folder", "--data-dir", "{d}"], "x.png"),
    # --- samples files (condgan eval --samples)
    ("npz_empty", lambda t, b: {"f": _write(t / "bad.npz", b"")}, "EVAL", "not a readable .npz file"),
    ("npz_garbage", lambda t, b: {"f": _write(t / "bad.npz", os.urandom(300))}, "EVAL", "not a readable .npz file"),
    ("npz_truncated", lambda t, b: {"f": _write(t / "bad.npz", b["samples"].read_bytes()[:5000])}, "EVAL",
     "not a readable .npz file"),
    ("npz_zip_bomb", lambda t, b: {"f": _write(t / "bad.npz", zip_bomb())}, "EVAL", "refusing to decompress it"),
    ("npz_header_lies", lambda t, b: {"f": _write(t / "bad.npz", npy_header_lies())}, "EVAL",
     "the member holds 10 bytes"),
    ("npz_object_array", lambda t, b: {"f": _write(t / "bad.npz", npz_bytes(images=np.array([{"a": 1}], object),
                                                                           labels=np.zeros(1, np.int64)))},
     "EVAL", "not a readable .npz without pickles"),
    ("npz_missing", lambda t, b: {"f": t / "nothing.npz"}, "EVAL", "no such file"),
    # --- judge files (condgan eval --judge)
    ("judge_garbage", lambda t, b: {"f": b["samples"], "j": _write(t / "j.safetensors", os.urandom(100))},
     "EVALJ", "not a safetensors file"),
    ("judge_truncated", lambda t, b: {"f": b["samples"], "j": _write(t / "j.safetensors",
                                                                      b["judge"].read_bytes()[:400])},
     "EVALJ", "judge"),
    ("judge_bad_meta", lambda t, b: {"f": b["samples"], "j": _judge_meta(t, class_names="not json")},
     "EVALJ", "metadata is incomplete or invalid"),
    ("judge_bad_shape", lambda t, b: {"f": b["samples"], "j": _judge_meta(t, sample_shape="[1, 28]")},
     "EVALJ", "sample_shape [C, H, W]"),
    # --- config files and overrides (condgan train --dry-run)
    ("cfg_wrong_type", _dir(), ["train", "--dry-run", "--out", "{tmp}/r", "--set", "train.steps=ten"],
     "train.steps: expected int, found 'ten'"),
    ("cfg_bool_for_int", _dir(), ["train", "--dry-run", "--out", "{tmp}/r", "--set", "train.steps=true"],
     "train.steps: expected int"),
    ("cfg_out_of_range", _dir(), ["train", "--dry-run", "--out", "{tmp}/r", "--set", "optim.beta1=1.5"],
     "optim.beta1: expected a value in [0, 1)"),
    ("cfg_not_positive", _dir(), ["train", "--dry-run", "--out", "{tmp}/r", "--set", "train.batch_size=0"],
     "train.batch_size: expected a positive"),
    ("cfg_bad_choice", _dir(), ["train", "--dry-run", "--out", "{tmp}/r", "--set", "model.arch=resnet"],
     "model.arch: expected one of"),
    ("cfg_unknown_key", _dir(), ["train", "--dry-run", "--out", "{tmp}/r", "--set", "train.nope=1"],
     "unknown config key train.nope"),
    ("cfg_unknown_section", lambda t, b: {"f": _write(t / "c.yaml", b"bogus:\n  x: 1\n")},
     ["train", "--dry-run", "--out", "{tmp}/r", "--config", "{f}"], "unknown config key bogus"),
    ("cfg_section_not_mapping", _dir(), ["train", "--dry-run", "--out", "{tmp}/r", "--set", "train=5"],
     "expected a mapping"),
    ("cfg_override_alias", _dir(), ["train", "--dry-run", "--out", "{tmp}/r", "--set", "train.steps=[*a]"],
     "anchors and aliases"),
    ("cfg_override_no_value", _dir(), ["train", "--dry-run", "--out", "{tmp}/r", "--set", "train.steps"],
     "expected section.key=value"),
    ("cfg_override_huge", _dir(), ["train", "--dry-run", "--out", "{tmp}/r", "--set", "train.steps=" + "9" * 20000],
     "longer than 10000 characters"),
    ("cfg_duplicate_key", lambda t, b: {"f": _write(t / "c.yaml", b"train:\n  steps: 3\n  steps: 4\n")},
     ["train", "--dry-run", "--out", "{tmp}/r", "--config", "{f}"], "duplicate key 'steps' (first at line 2)"),
    ("cfg_alias_bomb", lambda t, b: {"f": _write(t / "c.yaml", _billion_laughs())},
     ["train", "--dry-run", "--out", "{tmp}/r", "--config", "{f}"], "anchors and aliases"),
    ("cfg_not_utf8", lambda t, b: {"f": _write(t / "c.yaml", b"train:\n  steps: 3 # caf\xe9\n")},
     ["train", "--dry-run", "--out", "{tmp}/r", "--config", "{f}"], "not UTF-8 text (byte 0xe9"),
    ("cfg_huge_file", lambda t, b: {"f": _write(t / "c.yaml", b"train: {}\n" + b"#" * (1 << 20))},
     ["train", "--dry-run", "--out", "{tmp}/r", "--config", "{f}"], "larger than 65536 bytes"),
    ("cfg_deep", lambda t, b: {"f": _write(t / "c.yaml", b"a: " + b"[" * 3000 + b"]" * 3000)},
     ["train", "--dry-run", "--out", "{tmp}/r", "--config", "{f}"], "nested more than"),
    ("cfg_huge_int", lambda t, b: {"f": _write(t / "c.yaml", b"train:\n  steps: " + b"9" * 5000 + b"\n")},
     ["train", "--dry-run", "--out", "{tmp}/r", "--config", "{f}"], "not valid YAML"),
    ("cfg_python_tag", lambda t, b: {"f": _write(t / "c.yaml", b"a: !!python/object/apply:os.system [ls]\n")},
     ["train", "--dry-run", "--out", "{tmp}/r", "--config", "{f}"], "could not determine a constructor"),
    ("cfg_top_level_list", lambda t, b: {"f": _write(t / "c.yaml", b"- 1\n")},
     ["train", "--dry-run", "--out", "{tmp}/r", "--config", "{f}"], "expected a mapping at top level"),
    ("cfg_huge_value", lambda t, b: {"f": _write(t / "c.yaml", b"train:\n  steps: [" + b"1, " * 15_000 + b"1]\n")},
     ["train", "--dry-run", "--out", "{tmp}/r", "--config", "{f}"], "train.steps: expected int"),
    ("cfg_is_folder", lambda t, b: {"f": t},
     ["train", "--dry-run", "--out", "{tmp}/r", "--config", "{f}"], "no such file or preset"),
    # --- train
    ("train_batch_over_data", lambda t, b: {"fm": b["fm"]},
     ["train", "--data-dir", "{fm}", "--out", "{tmp}/r", "--steps", "1", "--batch-size", "64", *TINY],
     "train.batch_size: expected at most the 40 training samples"),
    ("train_unknown_method", _dir(), ["train", "--out", "{tmp}/r", "--method", "nope"], "nope"),
    ("train_nproc_zero", _dir(), ["train", "--out", "{tmp}/r", "--data", "ring", "--nproc", "0"], "--nproc"),
    ("train_out_unwritable", _dir(), ["train", "--out", "/proc/condgan-run", "--data", "ring"],
     "/proc/condgan-run: not writable"),
    ("train_out_under_file", lambda t, b: {"f": _write(t / "file", b"x")},
     ["train", "--out", "{f}/run", "--data", "ring", "--steps", "1"], "not writable"),
    ("train_resume_nothing", _dir(), ["train", "--out", "{tmp}/none", "--resume"], "nothing to resume"),
    ("train_resume_with_config", lambda t, b: {"r": _copy_run(t, b), "watch": [t / "run"]},
     ["train", "--out", "{r}", "--resume", "--config", "gan-ring"], "drop --config"),
    ("train_resume_optimizer_shapes", lambda t, b: {"r": _copy_run(t, b, _optim_shapes), "watch": [t / "run"]},
     ["train", "--out", "{r}", "--resume", "--no-progress"], "exp_avg of parameter"),
    ("train_resume_corrupt_ckpt", lambda t, b: {"r": _copy_run(t, b, raw=CKPT_EDITS["truncated"]),
                                                "watch": [t / "run"]},
     ["train", "--out", "{r}", "--resume", "--no-progress"], "checkpoint"),
    ("train_existing_run", lambda t, b: {"r": _copy_run(t, b), "fm": b["fm"], "watch": [t / "run"]},
     ["train", "--data-dir", "{fm}", "--out", "{r}", "--steps", "1"], "already holds a run"),
    # --- sample
    ("sample_n_zero", lambda t, b: {"r": b["run"]}, ["sample", "{r}", "--n", "0", "--out", "{tmp}/s.npz"], "--n"),
    ("sample_n_negative", lambda t, b: {"r": b["run"]}, ["sample", "{r}", "--n", "-3", "--out", "{tmp}/s.npz"],
     "--n: expected a positive"),
    ("sample_grid_rows_zero", lambda t, b: {"r": b["run"]},
     ["sample", "{r}", "--n", "4", "--out", "{tmp}/s.npz", "--grid", "{tmp}/g.png", "--grid-rows", "0"],
     "--grid-rows: expected a positive"),
    ("sample_grid_rows_negative", lambda t, b: {"r": b["run"]},
     ["sample", "{r}", "--n", "4", "--out", "{tmp}/s.npz", "--grid", "{tmp}/g.png", "--grid-rows", "-2"],
     "--grid-rows: expected a positive"),
    ("sample_out_unwritable", lambda t, b: {"r": b["run"]},
     ["sample", "{r}", "--n", "4", "--out", "/proc/condgan/s.npz"], "--out /proc/condgan/s.npz: not writable"),
    ("sample_out_is_folder", lambda t, b: {"r": b["run"]}, ["sample", "{r}", "--n", "4", "--out", "{tmp}"],
     "it is a folder"),
    ("sample_grid_unwritable", lambda t, b: {"r": b["run"], "f": _write(t / "file", b"x")},
     ["sample", "{r}", "--n", "4", "--out", "{tmp}/s.npz", "--grid", "{f}/g.png"], "--grid"),
    ("sample_classes_bad", lambda t, b: {"r": b["run"]},
     ["sample", "{r}", "--n", "4", "--out", "{tmp}/s.npz", "--classes", "a,b"], "--classes"),
    ("sample_classes_range", lambda t, b: {"r": b["run"]},
     ["sample", "{r}", "--n", "4", "--out", "{tmp}/s.npz", "--classes", "3,99"], "found 99"),
    ("sample_seed_negative", lambda t, b: {"r": b["run"]},
     ["sample", "{r}", "--n", "4", "--out", "{tmp}/s.npz", "--seed", "-1"], "--seed: expected a seed"),
    ("sample_seed_huge", lambda t, b: {"r": b["run"]},
     ["sample", "{r}", "--n", "4", "--out", "{tmp}/s.npz", "--seed", str(2**64)], "--seed: expected a seed"),
    ("sample_no_checkpoint", _dir(), ["sample", "{tmp}", "--n", "4", "--out", "{tmp}/s.npz"], "no checkpoint"),
    ("sample_checkpoint_missing", lambda t, b: {"r": b["run"]},
     ["sample", "{r}", "--n", "4", "--out", "{tmp}/s.npz", "--checkpoint", "{tmp}/no.pt"], "no such file"),
    ("sample_run_config_damaged", lambda t, b: {"r": _copy_run(t, b, config=b"train: [\n"), "watch": [t / "run"]},
     ["sample", "{r}", "--n", "4", "--out", "{tmp}/s.npz"], "config.yaml: not valid YAML"),
    # --- eval options
    ("eval_out_unwritable", lambda t, b: {"f": b["samples"], "o": "/proc/condgan-report"}, "EVALO",
     "--out /proc/condgan-report: not writable"),
    ("eval_out_is_file", lambda t, b: {"f": b["samples"], "o": _write(t / "file", b"x"), "watch": [t / "file"]},
     "EVALO", "it is a file"),
    ("eval_pairs_zero", lambda t, b: {"f": b["samples"]}, "EVAL+--pairs=0", "--pairs: expected a positive"),
    ("eval_metric_unknown", lambda t, b: {"f": b["samples"]}, "EVAL+--metrics=nope", "unknown metric 'nope'"),
    ("eval_seed_negative", lambda t, b: {"f": b["samples"]}, "EVAL+--seed=-5", "--seed: expected a seed"),
    ("eval_run_n_zero", lambda t, b: {"r": b["run"]},
     ["eval", "--run", "{r}", "--n", "0", "--out", "{tmp}/rep", "--no-progress"], "--n: expected a positive"),
    # --- classifier train
    ("judge_out_unwritable", lambda t, b: {"fm": b["fm"]},
     ["classifier", "train", "--data", "fashion-mnist", "--data-dir", "{fm}", "--out", "/proc/j.safetensors",
      "--no-progress"], "--out /proc/j.safetensors: not writable"),
    ("judge_epochs_zero", lambda t, b: {"fm": b["fm"]},
     ["classifier", "train", "--data", "fashion-mnist", "--data-dir", "{fm}", "--epochs", "0", "--no-progress"],
     "--epochs: expected a positive"),
    ("judge_unknown_data", _dir(), ["classifier", "train", "--data", "nope", "--no-progress"], "nope"),
    ("judge_resolution_zero", lambda t, b: {"fm": b["fm"]},
     ["classifier", "train", "--data", "fashion-mnist", "--data-dir", "{fm}", "--resolution", "0",
      "--no-progress"], "resolution: expected a positive"),
    ("judge_exists", lambda t, b: {"fm": b["fm"], "j": _copy(b["judge"], t / "j.safetensors"),
                                   "watch": [t / "j.safetensors"]},
     ["classifier", "train", "--data", "fashion-mnist", "--data-dir", "{fm}", "--out", "{j}", "--no-progress"],
     "already exists"),
    # --- data
    ("data_unknown", _dir(), ["data", "info", "nope"], "nope"),
    ("data_folder_no_dir", _dir(), ["data", "info", "folder"], "needs data_dir"),
    ("data_missing_files", _dir(), ["data", "info", "mnist", "--data-dir", "{tmp}"], "condgan data fetch mnist"),
    ("data_fetch_unknown", _dir(), ["data", "fetch", "nope", "--dir", "{tmp}/d"], "nope"),
    # --- bench
    ("bench_bad_method", _dir(), ["bench", "modes", "--methods", "gan,nope", "--out", "{tmp}/b"],
     "--methods: unknown name 'nope'"),
    ("bench_bad_dataset", _dir(), ["bench", "modes", "--datasets", "moon", "--out", "{tmp}/b"],
     "--datasets: unknown name 'moon'"),
    ("bench_empty_methods", _dir(), ["bench", "modes", "--methods", ",", "--out", "{tmp}/b"], "--methods"),
    ("bench_trials_zero", _dir(), ["bench", "modes", "--trials", "0", "--out", "{tmp}/b"], "--trials"),
    ("bench_out_unwritable", _dir(), ["bench", "modes", "--out", "/proc/condgan-bench"], "not writable"),
    ("bench_bad_override", _dir(), ["bench", "modes", "--out", "{tmp}/b", "--set", "train.steps=&x 1"],
     "anchors and aliases"),
    # --- quickstart
    ("quickstart_unwritable", _dir(), ["quickstart", "--out", "/proc/condgan-quick"], "not writable"),
]
CASES += [(f"ckpt_{name}", (lambda e: lambda t, b: {"r": _copy_run(t, b, raw=e), "watch": [t / "run"]})(edit),
           ["sample", "{r}", "--n", "4", "--out", "{tmp}/s.npz"], "ckpt-00000002.pt")
          for name, edit in CKPT_EDITS.items()]
CASES += [(f"meta_{name}", (lambda e: lambda t, b: {"r": _copy_run(t, b, e), "watch": [t / "run"]})(edit),
           ["sample", "{r}", "--n", "4", "--out", "{tmp}/s.npz"], "ckpt-00000002.pt")
          for name, edit in META_EDITS.items()]

# Config rules on ranges that other libraries would otherwise trip over (numpy seeds, Adam's lr).
RANGE_CASES = [
    ("cfg_seed_negative", ["train", "--dry-run", "--out", "{tmp}/r", "--set", "train.seed=-1"], "train.seed"),
    ("cfg_seed_huge", ["train", "--dry-run", "--out", "{tmp}/r", "--set", f"train.seed={2**63}"], "train.seed"),
    ("cfg_lr_nan", ["train", "--dry-run", "--out", "{tmp}/r", "--set", "optim.g_lr=.nan"], "optim.g_lr"),
    ("cfg_lr_inf", ["train", "--dry-run", "--out", "{tmp}/r", "--set", "optim.d_lr=.inf"], "optim.d_lr"),
]


def _write(path: Path, raw: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return path


def _copy(src: Path, dst: Path) -> Path:
    shutil.copy(src, dst)
    return dst


def _cut_gz(d: Path) -> Path:
    p = d / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:-30])
    return d


def _png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _billion_laughs() -> bytes:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("train: {steps: *a8}")
    return ("\n".join(lines) + "\n").encode()


def _judge_meta(tmp: Path, **meta) -> Path:
    from safetensors.torch import save_file

    full = {"dataset": "fashion-mnist", "class_names": '["0","1","2","3","4","5","6","7","8","9"]',
            "sample_shape": "[1, 28, 28]", "test_accuracy": "0.1", "arch": "JudgeCNN-v1", **meta}
    path = tmp / "j.safetensors"
    save_file({k: v.contiguous() for k, v in JudgeCNN(1, 28, 10).state_dict().items()}, str(path), metadata=full)
    return path


def _copy_run(tmp: Path, b: dict, edit=None, raw=None, config: bytes | None = None) -> Path:
    run = tmp / "run"
    shutil.copytree(b["run"], run)
    if edit is not None:
        edit_checkpoint(run, edit)
    if raw is not None:
        raw(sorted((run / "checkpoints").iterdir())[-1])
    if config is not None:
        (run / "config.yaml").write_bytes(config)
    return run


def _argv(template, subs: dict, tmp: Path) -> list[str]:
    if isinstance(template, str):  # eval shorthands
        kind, _, extra = template.partition("+")
        out = str(subs.get("o", tmp / "rep"))
        argv = ["eval", "--samples", "{f}", "--real", "fashion-mnist", "--data-dir", str(subs["fm"]),
                "--judge", str(subs.get("j", subs["judge"])), "--out", out, "--metrics", "accuracy", "--no-progress"]
        argv += extra.replace("=", " ").split() if extra else []
        template = argv
    values = {"tmp": str(tmp), **{k: str(v) for k, v in subs.items() if k != "watch"}}
    return [a.format(**values) if "{" in a else a for a in template]


def _prepare(case_build, template, tmp: Path, b: dict) -> tuple[list[str], list[Path]]:
    subs = case_build(tmp, b)
    watch = list(subs.get("watch", []))
    subs = {"fm": b["fm"], "judge": b["judge"], **subs}
    return _argv(template, subs, tmp), watch


@pytest.mark.parametrize("build, template, needle", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_bad_input_one_line_exit_2(base, tmp_path, capsys, build, template, needle):
    argv, watch = _prepare(build, template, tmp_path, base)
    before = snapshot(*watch)
    base_before = snapshot(base["run"], base["judge"], base["samples"])
    capsys.readouterr()
    rc = main(argv)
    captured = capsys.readouterr()
    line = check_one_line(rc, captured.err, captured.out)
    assert needle in line
    assert snapshot(*watch) == before
    assert snapshot(base["run"], base["judge"], base["samples"]) == base_before
    assert not (tmp_path / "s.npz").exists() and not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("template, needle", [pytest.param(*c[1:], id=c[0]) for c in RANGE_CASES])
def test_config_range_rules(tmp_path, capsys, template, needle):
    rc = main(_argv(template, {}, tmp_path))
    assert needle in check_one_line(rc, capsys.readouterr().err)


# ------------------------------------------------------------------ the real CLI, one case per verb

SUBPROCESS_CASES = ["cfg_alias_bomb", "meta_sample_shape_str", "npz_zip_bomb",
                    "judge_out_unwritable", "idx_trailing_gzip_bomb", "bench_bad_method"]


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_bad_input_through_the_real_cli(base, tmp_path, case):
    (_, build, template, needle), = [c for c in CASES if c[0] == case]
    argv, watch = _prepare(build, template, tmp_path, base)
    before = snapshot(*watch)
    env = {k: v for k, v in os.environ.items() if k != "CONDGAN_DATA"}
    env.update(PYTHONPATH=os.pathsep.join([SRC, env.get("PYTHONPATH", "")]), XDG_CACHE_HOME=str(tmp_path / "cache"),
               PYTHONWARNINGS="ignore::DeprecationWarning")
    done = subprocess.run([sys.executable, "-m", "condgan.cli", *argv], capture_output=True, text=True, env=env,
                          timeout=120)
    assert needle in check_one_line(done.returncode, done.stderr, done.stdout)
    assert snapshot(*watch) == before


# ------------------------------------------------------------------ full disks and unwritable outputs


def _full_disk_after(nbytes: int):
    """A Path.write_bytes that writes `nbytes` then fails like a full disk."""
    def write_bytes(self, data):
        with open(self, "wb") as fh:
            fh.write(data[:nbytes])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return write_bytes


def test_atomic_write_on_full_disk_leaves_target_and_no_temp(tmp_path, monkeypatch):
    target = _write(tmp_path / "out.bin", b"previous")
    monkeypatch.setattr(Path, "write_bytes", _full_disk_after(3))
    with pytest.raises(WriteError, match=r"out.bin: cannot write \(No space left on device\)"):
        atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]



def test_check_writable(tmp_path):
    assert check_writable(tmp_path / "new" / "deeper" / "f.npz") == tmp_path / "new" / "deeper" / "f.npz"
    assert not (tmp_path / "new").exists()  # probing creates nothing
    check_writable(tmp_path / "report", folder=True)
    with pytest.raises(WriteError, match="not a folder"):
        check_writable(_write(tmp_path / "file", b"x") / "f.npz")
    with pytest.raises(WriteError, match="not writable"):
        check_writable("/proc/condgan/out", folder=True)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_sample_on_full_disk_one_line_and_old_file_untouched(base, tmp_path, monkeypatch, capsys):
    out = _write(tmp_path / "s.npz", b"old samples")
    monkeypatch.setattr(Path, "write_bytes", _full_disk_after(100))
    rc = main(["sample", str(base["run"]), "--n", "4", "--out", str(out), "--device", "cpu"])
    line = check_one_line(rc, capsys.readouterr().err)
    assert f"{out}: cannot write (No space left on device)" in line
    assert out.read_bytes() == b"old samples" and [p.name for p in tmp_path.iterdir()] == ["s.npz"]


def test_checkpoint_on_full_disk_one_line(base, tmp_path, monkeypatch, capsys):
    run = _copy_run(tmp_path, base)
    before = snapshot(run / "checkpoints")
    monkeypatch.setattr(Path, "write_bytes", _full_disk_after(100))
    rc = main(["train", "--out", str(run), "--resume", "--steps", "4", "--no-progress"])
    line = check_one_line(rc, capsys.readouterr().err)
    assert "writing checkpoints/ckpt-00000004.pt failed at step 4 (No space left on device)" in line
    assert snapshot(run / "checkpoints") == before  # the previous checkpoints are intact, no temp is left


def test_report_on_full_disk_one_line(base, tmp_path, monkeypatch, capsys):
    rep = tmp_path / "rep"
    real_write_text = Path.write_text

    def full(self, *a, **k):
        if self.name.endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write_text(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", full)
    rc = main(["eval", "--samples", str(base["samples"]), "--real", "fashion-mnist", "--data-dir", str(base["fm"]),
               "--judge", str(base["judge"]), "--out", str(rep), "--metrics", "accuracy", "--no-progress"])
    line = check_one_line(rc, capsys.readouterr().err)
    assert "metrics.json: cannot write (No space left on device)" in line
    assert not [p for p in rep.rglob("*") if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ unsafe checkpoints


def test_unsafe_checkpoint_message_gives_no_unsafe_advice(base, tmp_path, capsys):
    run = _copy_run(tmp_path, base, raw=CKPT_EDITS["evil_pickle"])
    line = check_one_line(main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.npz")]),
                          capsys.readouterr().err)
    assert "weights_only" not in line and "refused to load" in line


def test_valid_meta_still_loads(base, tmp_path, capsys):
    """The validation accepts what training writes (guards against the table passing vacuously)."""
    run = _copy_run(tmp_path, base, lambda s: None)
    assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "ok.npz"), "--device", "cpu"]) == 0


def test_sample_count_beyond_memory_is_refused_before_work(base, tmp_path, capsys):
    out = tmp_path / "s.npz"
    rc = main(["sample", str(base["run"]), "--n", str(10**12), "--out", str(out), "--device", "cpu"])
    line = check_one_line(rc, capsys.readouterr().err)
    assert "--n: 1000000000000 samples of 784 bytes need" in line and "memory available" in line
    assert not out.exists()
