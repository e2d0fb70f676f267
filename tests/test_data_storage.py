"""Storage kinds: uint8 in memory, image folders streamed by workers, packs; sampler, resume, bad files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cli_data import write_fashion_like
from condgan import cli
from condgan.config import resolve_config
from condgan.data import images_to_unit_range, load_dataset, storage
from condgan.data.base import resize_images
from condgan.data.folder import load_folder, scan_folder
from condgan.data.idx import MAGIC_IMAGES, read_idx
from condgan.data.packed import load_packed, open_pack, pack_folder, read_index, verify_pack
from condgan.data.sampler import EpochSampler
from condgan.errors import ConfigError, DataError
from condgan.run.checkpoint import list_checkpoints, load_checkpoint
from condgan.training.loop import train


def make_folder(root: Path, per_class: int = 9, classes: int = 3, seed: int = 0) -> Path:
    """Class folders of random images of mixed sizes (some not square), modes and formats."""
    rng = np.random.default_rng(seed)
    for k in range(classes):
        d = root / f"class{k}"
        d.mkdir(parents=True)
        for i in range(per_class):
            h, w = rng.integers(20, 48, 2)
            a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            a[:, :, k] = 255  # something per class
            if i % 3 == 0:
                Image.fromarray(a).save(d / f"{i:02d}.jpg", quality=90)
            elif i % 3 == 1:
                Image.fromarray(a[:, :, 0]).save(d / f"{i:02d}.png")  # gray
            else:
                Image.fromarray(np.dstack([a, np.full((h, w), 255, np.uint8)]), "RGBA").save(d / f"{i:02d}.png")
    return root


def one_line(rc: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("condgan: error: "), (rc, err)
    return lines[0]


# ---------------------------------------------------------------- uint8 in memory


def test_uint8_storage_equals_the_old_float_values(tmp_path):
    folder = write_fashion_like(tmp_path / "fm", n=120)
    data = load_dataset("fashion-mnist", data_dir=folder)
    raw = read_idx(folder / "train-images-idx3-ubyte.gz", MAGIC_IMAGES)
    old = images_to_unit_range(raw)  # what LabelledData held before: float32 N×1×28×28
    assert data.stored.dtype == torch.uint8 and data.nbytes * 4 == old.numel() * old.element_size()
    assert torch.equal(data.x(), old)
    idx = torch.tensor([5, 0, 77, 5])
    assert torch.equal(data.x(idx, device="cpu"), old[idx])  # per batch, converted where it arrives
    assert torch.equal(data.subset(idx).x(), old[idx])
    np.testing.assert_array_equal(data.to_uint8_nhwc()[..., 0], raw)
    # Resizing happens in float and is rounded back to uint8: within half a grey level of the old floats.
    small = load_dataset("fashion-mnist", data_dir=folder, resolution=16)
    assert small.stored.dtype == torch.uint8
    diff = (small.x() - resize_images(old, 16)).abs().max()
    assert 0 < diff <= 0.5 / 127.5 + 1e-6
    # Folders: PIL's uint8 pixels, as the old loader then converted them.
    src = make_folder(tmp_path / "src")
    images = load_folder(src, resolution=12)
    assert images.stored.dtype == torch.uint8
    assert torch.equal(images.x(), images_to_unit_range(images.to_uint8_nhwc()))


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_in_uint8_equals_float():
    data = load_dataset("fashion-mnist", data_dir="/usr/share/datasets/fashion-mnist")
    raw = read_idx("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", MAGIC_IMAGES)
    assert data.nbytes == 60000 * 28 * 28
    for start in range(0, 60000, 15000):  # in parts: the whole float copy would take 188 MB at once
        part = slice(start, start + 15000)
        assert torch.equal(data.x(part), images_to_unit_range(raw[part]))


# ---------------------------------------------------------------- packs


def test_pack_round_trip_equals_the_folder_pixels(tmp_path, monkeypatch):
    src = make_folder(tmp_path / "src")
    monkeypatch.setattr("condgan.data.packed.SHARD_BYTES", 10 * 12 * 12 * 3)  # 10 images per shard: 3 shards
    index = pack_folder(src, tmp_path / "pack", 12, progress=False)
    folder = load_folder(src, resolution=12)
    packed = load_packed(tmp_path / "pack")
    assert len(index.shards) == 3 and index.num_samples == len(folder) == 27
    assert torch.equal(packed.stored, folder.stored) and torch.equal(packed.y, folder.y)
    assert packed.class_names == folder.class_names and index.class_counts == (9, 9, 9)
    stream = open_pack(tmp_path / "pack")
    idx = [26, 3, 10, 9, 0]  # across shards, any order
    assert torch.equal(stream.read(idx), folder.stored[idx])
    assert verify_pack(tmp_path / "pack") == index.content_sha256
    meta = json.loads((tmp_path / "pack" / "index.json").read_text())
    assert meta["source"] == str(src.resolve()) and meta["skipped"] == {"count": 0, "first": []}
    # The same pixels at another resolution give another hash; a changed byte is found by name.
    other = pack_folder(src, tmp_path / "pack16", 16, progress=False)
    assert other.content_sha256 != index.content_sha256
    shard = tmp_path / "pack" / "images-00001.u8"
    raw = bytearray(shard.read_bytes())
    raw[100] ^= 1
    shard.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="content hash .* differs"):
        verify_pack(tmp_path / "pack")
    shard.write_bytes(bytes(raw[:-1]))
    with pytest.raises(DataError, match=r"images-00001.u8: 4319 bytes, expected 4320"):
        read_index(tmp_path / "pack")
    with pytest.raises(DataError, match="data.resolution: the pack .* holds 16, found 12"):
        open_pack(tmp_path / "pack16", resolution=12)


def test_pack_cli_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    src = make_folder(tmp_path / "src", per_class=2)
    cases = [
        (["data", "pack", str(tmp_path / "missing"), str(tmp_path / "p1"), "--resolution", "8"], "found nothing"),
        (["data", "pack", str(src), str(src), "--resolution", "8"], "already exists"),
        (["data", "pack", str(src), str(tmp_path / "p2"), "--resolution", "0"], "--resolution: expected a positive"),
        (["data", "pack", str(src), str(tmp_path / "p3"), "--resolution", "8", "--channels", "2"],
         "channels must be 1 or 3"),
        (["data", "pack", str(src), str(tmp_path / "p4"), "--resolution", "8", "--workers", "-1"], "--workers"),
    ]
    (src / "class1" / "empty.png").write_bytes(b"")
    cases.append((["data", "pack", str(src), str(tmp_path / "p5"), "--resolution", "8", "--workers", "0"],
                  r"class1/empty.png: empty file \(0 bytes\) \(data.on_bad_file=error"))
    for argv, message in cases:
        line = one_line(cli.main(argv), capsys.readouterr().err)
        assert re.search(message, line), (argv, line)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".p", "p"))], "nothing left behind"
    assert cli.main(["data", "pack", str(src), str(tmp_path / "ok"), "--resolution", "8", "--on-bad-file", "skip",
                     "--workers", "0", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "packed 6 images of 8×8×3 in 3 classes" in out and "1 bad file left out" in out
    assert "skipped 1 bad file (data.on_bad_file=skip): class1/empty.png (empty file (0 bytes))" in err
    assert read_index(tmp_path / "ok").skipped["first"] == ["class1/empty.png: empty file (0 bytes)"]


# ---------------------------------------------------------------- bad files


def _bad_folder(root: Path) -> Path:
    make_folder(root, per_class=4)
    (root / "class0" / "zero.png").write_bytes(b"")
    (root / "class1" / "garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg at all")
    Image.new("LAB", (8, 8)).save(root / "class2" / "lab.tif")
    return root


def test_bad_files_are_refused_or_skipped_by_name(tmp_path, capsys):
    root = _bad_folder(tmp_path / "src")
    with pytest.raises(DataError) as info:
        scan_folder(root, 12)
    assert str(info.value).startswith(f"{root}/class0/zero.png: empty file (0 bytes); 2 more bad files "
                                      "(data.on_bad_file=error")
    items = scan_folder(root, 12, on_bad_file="skip")
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"condgan: warning: {root}: skipped 3 bad files (data.on_bad_file=skip): class0/zero.png "
                   "(empty file (0 bytes)), class1/garbage.jpg (cannot read image (OSError: Truncated File Read)), "
                   "class2/lab.tif (unsupported image mode 'LAB'; "
                   "expected one of 1, CMYK, F, I, I;16, I;16B, I;16L, L, LA, P, PA, RGB, RGBA, RGBX, RGBa, YCbCr)"]
    assert len(items) == 12 and items.bad.record()["count"] == 3
    # A file whose header reads but whose pixels do not is found when decoded: replaced by the next
    # good file of its class under skip, named once; under error it stops there.
    cut = root / "class1" / "01.png"
    cut.write_bytes(cut.read_bytes()[:200])
    items = scan_folder(root, 12, on_bad_file="skip")
    capsys.readouterr()
    loaded = items.load()
    assert torch.equal(loaded.stored[5], loaded.stored[6]) and loaded.y[5] == loaded.y[6] == 1
    assert "class1/01.png: cannot read image" in capsys.readouterr().err
    assert torch.equal(items.read([5, 6, 5]), loaded.stored[[5, 6, 5]])
    assert len(items.bad) == 4 and capsys.readouterr().err == ""  # named once
    (root / "class0" / "zero.png").unlink()
    (root / "class1" / "garbage.jpg").unlink()
    (root / "class2" / "lab.tif").unlink()
    with pytest.raises(DataError, match=r"class1/01.png: cannot read image \(OSError"):
        load_folder(root, 12)


def test_skipped_files_are_recorded_in_the_run(tmp_path, capsys):
    root = _bad_folder(tmp_path / "src")
    cfg = resolve_config(overrides=TINY + [f"data.data_dir={root}", "data.on_bad_file=skip", "data.storage=memory",
                                           "train.steps=2"])
    train(cfg, tmp_path / "run", progress=False)
    meta = load_checkpoint(list_checkpoints(tmp_path / "run")[-1])["meta"]
    assert meta["num_samples"] == 12
    assert meta["data"]["bad_files"]["count"] == 3
    assert meta["data"]["bad_files"]["first"][0] == "class0/zero.png: empty file (0 bytes)"
    assert "skipped 3 bad files" in capsys.readouterr().err


# ---------------------------------------------------------------- sampler and sharding


@pytest.mark.parametrize("world_size", [2, 3])
def test_each_sample_goes_to_exactly_one_rank_per_epoch(world_size):
    n, b = 50, 12  # 50 is no multiple of 12: global batches straddle epochs
    ranks = [EpochSampler(n, b, seed=7, rank=r, world_size=world_size) for r in range(world_size)]
    whole = EpochSampler(n, b, seed=7)
    local = b // world_size
    seen: dict[int, list[tuple[int, int]]] = {}  # epoch → (sample, rank)
    steps = 3 * n // b + 1
    for t in range(steps):
        assert torch.equal(torch.cat([s.indices(t) for s in ranks]), whole.indices(t))  # trajectory free of W
        for r, s in enumerate(ranks):
            for k, sample in enumerate(s.indices(t).tolist()):
                position = t * b + r * local + k  # in the endless sequence of epochs
                seen.setdefault(position // n, []).append((sample, r))
    for epoch in range(3):  # the complete epochs
        samples = [sample for sample, _ in seen[epoch]]
        assert sorted(samples) == list(range(n)), epoch  # every sample once, none twice
        per_rank = [{s for s, r in seen[epoch] if r == rank} for rank in range(world_size)]
        assert sum(map(len, per_rank)) == n  # disjoint
    assert [s for s, _ in seen[0]] != [s for s, _ in seen[1]]  # epochs are shuffled anew


def test_sampler_position_is_saved_and_restored():
    a = EpochSampler(50, 12, seed=7)
    state = a.state_dict(9)  # 9 × 12 = 108: epoch 2, position 8
    assert state == {"step": 9, "epoch": 2, "position": 8, "num_samples": 50}
    b = EpochSampler(50, 12, seed=7)
    b.load_state_dict(state)
    for t in (9, 10, 17):
        assert torch.equal(a.indices(t), b.indices(t))
    # A batch size changed on resume continues from the saved position.
    c = EpochSampler(50, 10, seed=7)
    c.load_state_dict(state)
    assert torch.equal(c.indices(9), a.items(108, 10))
    with pytest.raises(DataError, match="trained on 50 samples, the data holds 51"):
        EpochSampler(51, 12, seed=7).load_state_dict(state)


# ---------------------------------------------------------------- training on streamed data


TINY = ["data.name=folder", "data.resolution=28", "data.channels=1", "model.g_channels=8", "model.d_channels=8",
        "model.z_dim=8", "train.batch_size=8", "train.log_every=2", "train.grid_every=1000", "train.ckpt_every=3",
        "train.keep_ckpts=5", "train.threads=1"]


def rows(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "images_per_sec"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(list_checkpoints(run)[-1])["model"]


class Crash(Exception):
    pass


def test_streamed_run_resumes_exactly_and_equals_memory(tmp_path):
    src = make_folder(tmp_path / "src", per_class=9)  # 27 images, batch 8: batches straddle epochs
    pack_folder(src, tmp_path / "pack", 28, channels=1, progress=False)
    base = TINY + [f"data.data_dir={src}", "train.steps=8"]
    stream = base + ["data.storage=stream", "data.num_workers=2"]
    train(resolve_config(overrides=stream), tmp_path / "straight", progress=False)

    def crash_at_7(method, step):
        if step == 7:
            raise Crash()
        return {}

    with pytest.raises(Crash):  # after the step-6 checkpoint: mid-epoch (48 items = epoch 1, position 21)
        train(resolve_config(overrides=stream), tmp_path / "crashed", progress=False, monitors=[(1, crash_at_7)])
    state = load_checkpoint(list_checkpoints(tmp_path / "crashed")[-1])
    assert state["step"] == 6 and state["sampler"] == {"step": 6, "epoch": 1, "position": 21, "num_samples": 27}
    train(None, tmp_path / "crashed", resume=True, progress=False)
    assert rows(tmp_path / "crashed") == rows(tmp_path / "straight")
    w = weights(tmp_path / "straight")
    assert all(torch.equal(w[k], v) for k, v in weights(tmp_path / "crashed").items())
    # Every storage kind reads the same samples in the same order: the same weights.
    train(resolve_config(overrides=base + ["data.storage=memory"]), tmp_path / "memory", progress=False)
    packed = [o.replace("data.name=folder", "data.name=packed") for o in base]
    train(resolve_config(overrides=packed[:-2] + [f"data.data_dir={tmp_path / 'pack'}", "train.steps=8",
                                                  "data.storage=stream", "data.num_workers=1"]),
          tmp_path / "packed", progress=False)
    for run in ("memory", "packed"):
        assert all(torch.equal(w[k], v) for k, v in weights(tmp_path / run).items()), run
    first = load_checkpoint(list_checkpoints(tmp_path / "straight")[0])["model"]
    assert not all(torch.equal(first[k], w[k]) for k in w)  # training moved the weights: the test can fail
    # Resuming on data of another size is refused by name.
    (src / "class0" / "00.jpg").unlink()
    with pytest.raises(DataError, match="trained on 27 samples, the data holds 26"):
        train(resolve_config(overrides=stream[:-1] + ["train.steps=10"]), tmp_path / "straight", resume=True,
              progress=False)


def test_sample_view_reads_the_same_values_from_every_storage(tmp_path, monkeypatch):
    src = make_folder(tmp_path / "src", per_class=4)
    d = resolve_config(overrides=TINY + [f"data.data_dir={src}", "data.storage=stream", "data.num_workers=1"]).data
    streamed = storage.open_training_data(d, seed=0)
    memory = storage.open_training_data(resolve_config(
        overrides=TINY + [f"data.data_dir={src}", "data.storage=memory"]).data, seed=0)
    a, b = storage.SampleView(streamed, "cpu"), storage.SampleView(memory, "cpu")
    idx = torch.tensor([11, 0, 5])
    assert len(a) == len(b) == 12 and torch.equal(a[idx], b[idx]) and torch.equal(a[2:9], b[2:9])
    assert torch.equal(a[idx], memory.data.x(idx))
    monkeypatch.setattr(storage, "_VIEW_BATCH", 4)  # larger reads go through the workers
    assert torch.equal(a[:], b[:])


# ---------------------------------------------------------------- storage auto


def test_storage_auto_chooses_by_size_and_says_so(tmp_path, monkeypatch, capsys):
    src = make_folder(tmp_path / "src", per_class=4)  # 12 images of 1×28×28: 9408 bytes
    d = resolve_config(overrides=TINY + [f"data.data_dir={src}", "data.num_workers=0"]).data
    monkeypatch.setattr(storage, "AUTO_MEMORY_BYTES", 9408)
    chosen = storage.open_training_data(d, seed=0)
    assert chosen.storage == "memory" and chosen.reason == "data.storage=auto: 9.2 KiB is at most the limit of 9.2 KiB"
    monkeypatch.setattr(storage, "AUTO_MEMORY_BYTES", 5000)
    chosen = storage.open_training_data(d, seed=0)
    assert chosen.storage == "stream" and chosen.reason == "data.storage=auto: 9.2 KiB is more than the limit of 4.9 KiB"
    cfg = resolve_config(overrides=TINY + [f"data.data_dir={src}", "data.num_workers=0", "train.steps=2"])
    train(cfg, tmp_path / "run", progress=False)
    err = capsys.readouterr().err
    assert (f"condgan: data: folder:{src.resolve()}: 12 samples of 1×28×28, 9.2 KiB as uint8; streamed in the "
            "training process (data.storage=auto: 9.2 KiB is more than the limit of 4.9 KiB)") in err
    assert load_checkpoint(list_checkpoints(tmp_path / "run")[-1])["meta"]["data"]["storage"] == "stream"
    with pytest.raises(ConfigError, match="data.storage: stream reads data.name folder or packed; ring is read whole"):
        storage.open_training_data(resolve_config(overrides=["data.name=ring", "data.storage=stream"]).data, 0)
    with pytest.raises(ConfigError, match="data.storage: expected one of auto, memory, stream, found 'disk'"):
        resolve_config(overrides=["data.storage=disk"])


def test_data_classes_select_the_same_samples_from_every_storage(tmp_path):
    src = make_folder(tmp_path / "src", per_class=4)
    pack_folder(src, tmp_path / "pack", 28, channels=1, progress=False)
    expected = load_dataset("folder", data_dir=src, resolution=28, channels=1, classes=[2, 0], num_samples=5, seed=3)
    assert expected.class_names == ("class2", "class0") and len(expected) == 5
    for name, where, how in (("folder", src, "stream"), ("folder", src, "memory"), ("packed", tmp_path / "pack", "stream")):
        d = resolve_config(overrides=TINY + [f"data.name={name}", f"data.data_dir={where}", f"data.storage={how}",
                                             "data.num_workers=0", "data.classes=[2, 0]", "data.num_samples=5"]).data
        got = storage.open_training_data(d, seed=3)
        assert got.class_names == expected.class_names and torch.equal(got.y, expected.y), (name, how)
        assert torch.equal(storage.SampleView(got, "cpu")[:], expected.x()), (name, how)
