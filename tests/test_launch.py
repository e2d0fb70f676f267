"""`condgan train --nproc N` through torch's elastic launcher: what is refused before any rank starts,
and a rank's user error as the one line and exit code 2 of a single process."""

from __future__ import annotations

from pathlib import Path

import pytest

import condgan
from condgan.cli import main

SRC = str(Path(condgan.__file__).resolve().parents[1])
RING = ["--data", "ring", "--set", "data.num_samples=200", "--steps", "2", "--threads", "1", "--no-progress"]


def _one_error_line(capfd) -> str:
    err = [line for line in capfd.readouterr().err.strip().splitlines() if line]
    assert len(err) == 1 and err[0].startswith("condgan: error: "), err
    return err[0]


@pytest.mark.parametrize("extra, needle", [
    (["--batch-size", "7"], "train.batch_size: the global batch must split evenly over 2 ranks, found 7"),
    (["--set", "train.steps=0"], "config field train.steps: expected a positive number"),
    (["--resume"], "nothing to resume"),
])
def test_refused_before_launch(tmp_path, capfd, extra, needle):
    assert main(["train", "--out", str(tmp_path / "r"), *RING, "--nproc", "2", *extra]) == 2
    assert needle in _one_error_line(capfd)
    assert not (tmp_path / "r").exists()


def test_a_ranks_user_error_is_one_line_and_exit_2(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", SRC)  # the ranks import this checkout
    # Known only once the data is loaded, inside the ranks: the paper's CIFAR nets cannot model 2D points.
    assert main(["train", "--out", str(tmp_path / "r"), *RING, "--nproc", "2", "--set", "model.arch=acgan_cifar"]) == 2
    assert "model.arch: 'acgan_cifar' cannot model 2D points" in _one_error_line(capfd)
    assert not (tmp_path / "r" / "checkpoints").exists()
