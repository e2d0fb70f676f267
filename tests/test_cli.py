"""The `condgan` command end to end: train → sample on real-format files, and one-line errors."""

import subprocess
import sys

import numpy as np
import pytest

from cli_data import write_fashion_like
from condgan.cli import main

TINY = ["--set", "model.g_channels=8", "--set", "model.d_channels=8", "--set", "train.log_every=2",
        "--set", "train.grid_every=4", "--set", "train.ckpt_every=2", "--no-progress"]


@pytest.fixture
def fashion_dir(tmp_path):
    return write_fashion_like(tmp_path / "fm")


def test_train_then_sample(tmp_path, fashion_dir, capsys):
    run = tmp_path / "run"
    assert main(["train", "--config", "acgan-fashion-mnist", "--data-dir", str(fashion_dir), "--out", str(run),
                 "--steps", "4", "--batch-size", "16", *TINY]) == 0
    assert (run / "grids" / "step-00000004.png").exists()
    out = tmp_path / "s.npz"
    assert main(["sample", str(run), "--n", "25", "--out", str(out), "--grid", str(tmp_path / "g.png"),
                 "--device", "cpu"]) == 0
    with np.load(out) as f:
        assert set(f.files) == {"images", "labels", "label_kind"} and str(f["label_kind"]) == "class"
        assert f["images"].dtype == np.uint8 and f["images"].shape == (25, 28, 28, 1)
        assert f["labels"].dtype == np.int64
        assert np.bincount(f["labels"], minlength=10).tolist() == [3, 3, 3, 3, 3, 2, 2, 2, 2, 2]
    assert (tmp_path / "g.png").exists()
    assert main(["sample", str(run), "--n", "6", "--out", str(out), "--classes", "2,7", "--device", "cpu"]) == 0
    with np.load(out) as f:
        assert sorted(set(f["labels"].tolist())) == [2, 7]


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("condgan: error: ")
    return err[0]


def test_existing_run_refused_with_exit_2(tmp_path, fashion_dir, capsys):
    run = tmp_path / "run"
    args = ["train", "--data-dir", str(fashion_dir), "--out", str(run), "--steps", "2", "--batch-size", "8", *TINY]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    assert "already holds a run" in _error_line(capsys)
    assert main(args[:-len(TINY)] + TINY + ["--resume"]) == 0


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["train", "--out", "{tmp}/r", "--set", "train.batch_size=0"], "train.batch_size: expected a positive"),
        (["train", "--out", "{tmp}/r", "--set", "train.nope=1"], "unknown config key train.nope"),
        (["train", "--out", "{tmp}/r", "--config", "no-such-preset"], "--config no-such-preset"),
        (["train", "--out", "{tmp}/r", "--data", "cifar10", "--data-dir", "{tmp}/empty"], "cifar"),
        (["train", "--out", "{tmp}/r", "--data", "mnist", "--data-dir", "{tmp}/empty"], "condgan data fetch mnist"),
        (["train", "--out", "/proc/condgan-run", "--data", "ring"], "/proc/condgan-run: not writable"),
        (["sample", "{tmp}/nothing", "--n", "5", "--out", "{tmp}/s.npz"], "no checkpoint found"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, needle):
    (tmp_path / "empty").mkdir()
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv + ["--no-progress"] if argv[0] == "train" else argv) == 2
    assert needle in _error_line(capsys)


def test_checkpoint_of_other_architecture_refused(tmp_path, fashion_dir, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data-dir", str(fashion_dir), "--out", str(run), "--steps", "2", "--batch-size", "8",
                 *TINY]) == 0
    other = tmp_path / "other"
    assert main(["train", "--data", "ring", "--out", str(other), "--steps", "2", "--batch-size", "8",
                 "--set", "train.ckpt_every=2", "--no-progress"]) == 0
    ckpt = next((other / "checkpoints").iterdir())
    assert main(["train", "--data-dir", str(fashion_dir), "--out", str(run), "--resume", "--no-progress"]) == 0
    capsys.readouterr()  # only the sample command's stderr below
    import shutil

    shutil.copy(ckpt, run / "checkpoints" / "ckpt-99999999.pt")
    assert main(["sample", str(run), "--n", "5", "--out", str(tmp_path / "s.npz")]) == 2
    assert "another architecture" in _error_line(capsys)
    assert not (tmp_path / "s.npz").exists()


def test_console_script_entry_point():
    done = subprocess.run([sys.executable, "-m", "condgan.cli", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "train" in done.stdout


@pytest.mark.parametrize("argv, needle", [
    (["eval", "--samples", "s.npz"], "the following arguments are required: --out"),
    (["evl"], "invalid choice: 'evl'"),
    (["train", "--steps", "x"], "invalid int value: 'x'"),
])
def test_usage_errors_are_one_line_exit_2(argv, needle, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and needle in err, err
