"""Class splits as independent jobs: `condgan splits init | run | status`, `condgan train --out RUN/split-i`,
and a splits root sampled and evaluated as one model over all classes (tiny Fashion-MNIST-like files,
tiny DCGAN nets)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import condgan
from cli_data import write_fashion_like
from condgan.cli import main
from condgan.config import load_config
from condgan.data import load_dataset
from condgan.errors import TrainingDiverged
from condgan.run.lock import RunLock
from condgan.run.splits import read_manifest, split_status, write_job_record
from condgan.sampling import load_run
from condgan.splits import train_split

SRC = str(Path(condgan.__file__).resolve().parents[1])
TINY = ["--set", "model.g_channels=8", "--set", "model.d_channels=8", "--set", "train.steps=2",
        "--set", "train.batch_size=8", "--set", "train.ckpt_every=2", "--set", "train.grid_every=100",
        "--set", "train.log_every=1", "--set", "train.threads=1"]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("condgan: error: "), err
    return err[0]


@pytest.fixture(scope="module")
def fm(tmp_path_factory) -> Path:
    return write_fashion_like(tmp_path_factory.mktemp("splits") / "fm", n=120)


def _init(fm: Path, out: Path, splits: int = 3, *extra: str, config: str = "acgan-fashion-mnist") -> int:
    return main(["splits", "init", "--config", config, "--data-dir", str(fm), "--splits", str(splits),
                 "--out", str(out), *TINY, *extra])


def test_splits_init_train_run_status_sample_eval(fm, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYTHONPATH", SRC)  # the `splits run` jobs import this checkout
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "R"
    assert _init(fm, root, 3, "--mode", "random") == 0
    manifest = read_manifest(root)
    # Every class in exactly one split, each split's config restricted to its classes.
    assert sorted(c for s in manifest.splits for c in s.classes) == list(range(10))
    assert [s.dir for s in manifest.splits] == ["split-000", "split-001", "split-002"]
    assert [len(s.classes) for s in manifest.splits] == [4, 3, 3]
    for s in manifest.splits:
        cfg = load_config(root / s.dir / "config.yaml")
        assert cfg.data.classes == s.classes and cfg.model.g_channels == 8
        assert s.class_names == tuple(manifest.class_names[c] for c in s.classes)
    assert {split_status(manifest, s).state for s in manifest.splits} == {"not started"}

    # One split, as one task of a job array would train it: no --config, its own.
    assert main(["train", "--out", str(root / "split-001"), "--no-progress"]) == 0
    ckpt = torch.load(root / "split-001" / "checkpoints" / "ckpt-00000002.pt", weights_only=True)
    assert ckpt["meta"]["num_classes"] == 3
    assert ckpt["meta"]["class_names"] == list(manifest.splits[1].class_names)
    assert json.loads((root / "jobs" / "split-001.json").read_text())["outcome"] == "finished"
    capsys.readouterr()
    assert main(["sample", str(root), "--n", "10", "--out", str(tmp_path / "s.npz")]) == 2
    assert "split-000 has no checkpoint (not trained yet)" in _one_error_line(capsys)

    # The others K=2 at a time, one of them broken: it is reported, the other finishes.
    broken = root / "split-002" / "config.yaml"
    good = broken.read_text()
    broken.write_text(good.replace("batch_size: 8", "batch_size: 800"))
    assert main(["splits", "run", str(root), "--jobs", "2", "--threads", "1"]) == 1
    out, err = capsys.readouterr()
    assert "split-002: ended with exit code 2: condgan: error: config field train.batch_size" in out
    assert "split-001" not in out.replace("1 were finished", "")  # finished before: skipped
    assert "1 split(s) failed: split-002 (exit 2)" in err
    states = {s.dir: split_status(manifest, s).state for s in manifest.splits}
    assert states == {"split-000": "finished", "split-001": "finished", "split-002": "failed"}
    assert "expected at most the 36 training samples" in (root / "logs" / "split-002.log").read_text()

    # Fixed and run again: only the unfinished split trains.
    broken.write_text(good)
    assert main(["splits", "run", str(root), "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "split-002: finished" in out and "split-000: started" not in out and "2 were finished already" in out
    assert main(["splits", "status", str(root)]) == 0
    table = capsys.readouterr().out
    assert table.count("finished") == 4 and "3 finished" in table and "2/2" in table

    # Sampled as one model: global labels of every class, each drawn by its own split's generator.
    samples = tmp_path / "s.npz"
    assert main(["sample", str(root), "--n", "40", "--out", str(samples), "--grid", str(tmp_path / "g.png")]) == 0
    with np.load(samples) as f:
        assert np.bincount(f["labels"], minlength=10).tolist() == [4] * 10
    routed = load_run(root)
    assert routed.num_classes == 10 and routed.step == 2 and len(routed.parts) == 3
    z, c = routed.method.latent(10, generator=torch.Generator().manual_seed(3)), torch.arange(10)
    with torch.no_grad():
        whole = routed.method.generate(z, c)
        for split, part in zip(manifest.splits, routed.parts):
            mask = torch.tensor([int(k) in split.classes for k in c])
            local = torch.tensor([split.classes.index(int(k)) for k in c[mask]])
            torch.testing.assert_close(whole[mask], part.method.generate(z[mask], local))
    assert Image.open(tmp_path / "g.png").size[0] > Image.open(tmp_path / "g.png").size[1]  # 10 class columns

    # Evaluated as one model over the 10 classes against the whole test set.
    judge = tmp_path / "judge.safetensors"
    assert main(["classifier", "train", "--data", "fashion-mnist", "--data-dir", str(fm), "--epochs", "1",
                 "--out", str(judge), "--no-progress"]) == 0
    assert main(["eval", "--run", str(root), "--n", "60", "--data-dir", str(fm), "--judge", str(judge),
                 "--metrics", "accuracy,fid", "--out", str(tmp_path / "rep"), "--no-progress"]) == 0
    result = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert result["inputs"]["num_samples"] == 60 and result["inputs"]["run_step"] == 2
    assert 0.0 <= result["metrics"]["accuracy"] <= 1.0


def test_status_reports_each_state(fm, tmp_path, monkeypatch):
    root = tmp_path / "R"
    assert _init(fm, root, 5) == 0
    manifest = read_manifest(root)
    s = manifest.splits
    train_split(root / s[0].dir, progress=False)  # finished

    def diverge(*args, **kwargs):
        raise TrainingDiverged("step 1: D loss is nan; training stopped before its optimiser step, "
                               "last good checkpoint: none")

    monkeypatch.setattr("condgan.training.loop.train", diverge)
    with pytest.raises(TrainingDiverged):
        train_split(root / s[1].dir, progress=False)
    monkeypatch.undo()
    write_job_record(manifest, s[2], "started")  # a process that was killed: no end record, no lock
    with RunLock(root / s[3].dir):
        running = split_status(manifest, s[3])
    states = [split_status(manifest, x).state for x in s[:3]] + [running.state, split_status(manifest, s[4]).state]
    assert states == ["finished", "non-finite stop", "interrupted", "running", "not started"]
    assert "pid" in running.detail and "D loss is nan" in split_status(manifest, s[1]).detail


@pytest.mark.parametrize("case, needle", [
    ("non_empty", "not empty; `condgan splits init` writes a new splits root"),
    ("zero", "--splits: expected a number of splits in [1, 10]"),
    ("negative", "--splits: expected a number of splits in [1, 10]"),
    ("too_many", "--splits: expected a number of splits in [1, 10] (the classes of fashion-mnist), found 11"),
    ("unconditional", "class splits need a method conditional on the dataset's classes"),
    ("in_process_splits", "config field method.class_splits: expected 1"),
])
def test_bad_init_one_line_exit_2(fm, tmp_path, capsys, case, needle):
    out = tmp_path / "R"
    n, extra = {"zero": 0, "negative": -2, "too_many": 11}.get(case, 2), []
    if case == "non_empty":
        out.mkdir()
        (out / "notes.txt").write_text("x")
    extra = {"unconditional": ["--set", "method.name=gan"],
             "in_process_splits": ["--set", "method.class_splits=2"]}.get(case, [])
    # The paper preset's method section holds only keys that gan reads too (the default's class_weight is not).
    config = "acgan-fashion-mnist-paper" if case == "unconditional" else "acgan-fashion-mnist"
    assert _init(fm, out, n, *extra, config=config) == 2
    assert needle in _one_error_line(capsys)
    assert case == "non_empty" or not (out / "splits.json").exists()


def test_root_is_not_a_run_and_has_no_single_checkpoint(fm, tmp_path, capsys):
    root = tmp_path / "R"
    assert _init(fm, root, 2) == 0
    split = root / "split-001"
    assert main(["train", "--out", str(split), "--no-progress"]) == 0
    # --force restarts a split with its own config (its classes), here with fewer steps.
    assert main(["train", "--out", str(split), "--force", "--steps", "1", "--no-progress"]) == 0
    assert sorted(p.name for p in (split / "checkpoints").iterdir()) == ["ckpt-00000001.pt"]
    assert load_config(split / "config.yaml").data.classes == (5, 6, 7, 8, 9)
    capsys.readouterr()
    assert main(["eval", "--run", str(split), "--n", "10", "--data-dir", str(fm), "--out", str(tmp_path / "e")]) == 2
    assert "trains classes [5, 6, 7, 8, 9] of fashion-mnist only (data.classes)" in _one_error_line(capsys)
    assert main(["train", "--out", str(root), "--data", "ring", "--steps", "1"]) == 2
    assert "is a class-splits root; train its splits instead" in _one_error_line(capsys)
    assert main(["sample", str(root), "--n", "4", "--out", str(tmp_path / "s.npz"), "--checkpoint", "x.pt"]) == 2
    assert "is a class-splits root, one run per split" in _one_error_line(capsys)


def test_data_classes_select_and_relabel(fm, tmp_path):
    full = load_dataset("fashion-mnist", "train", data_dir=fm)
    part = load_dataset("fashion-mnist", "train", data_dir=fm, classes=[7, 2])
    assert part.class_names == (full.class_names[7], full.class_names[2])
    assert torch.equal(part.x(), full.x()[(full.y == 7) | (full.y == 2)])
    assert torch.equal(part.y, torch.where(full.y[(full.y == 7) | (full.y == 2)] == 7, 0, 1))
    # A folder decodes only the selected classes' images: a broken image elsewhere is never read.
    folder = tmp_path / "folder"
    for name, colour in (("a", 10), ("b", 200), ("c", 90)):
        (folder / name).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (9 + i, 12), (colour,) * 3).save(folder / name / f"{i}.png")
    (folder / "a" / "broken.png").write_bytes(b"not a png")
    data = load_dataset("folder", data_dir=folder, resolution=8, classes=[2, 1])
    assert data.class_names == ("c", "b") and data.y.tolist() == [1, 1, 0, 0]
    assert data.x()[data.y == 0].mean() < data.x()[data.y == 1].mean()  # c (90) is darker than b (200)
