"""`condgan bench modes`: tiny end-to-end runs, resume after an interruption, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import condgan.bench.modes as bench
from condgan.cli import main
from condgan.errors import ConfigError, RunDirError
from condgan.metrics.classifier import JudgeCNN, save_judge

# Tiny 2D setup: few points, a narrow MLP, a handful of steps.
TINY = ["data.num_samples=2000", "model.hidden=32", "train.threads=1"]


def test_trial_config_follows_the_official_2d_setup() -> None:
    cfg = bench.trial_config("selfcond", "grid", 2, 4000)
    assert (cfg.train.seed, cfg.train.steps, cfg.train.batch_size) == (2, 4000, 100)
    assert (cfg.model.z_dim, cfg.optim.g_lr, cfg.optim.beta1) == (2, 1e-4, 0.8)
    assert (cfg.method.num_clusters, cfg.method.recluster_every) == (50, 200)
    # The official 2D nets; the one deviation, a decaying rate, can be switched off.
    assert (cfg.model.arch, cfg.optim.lr_schedule) == ("mlp_selfcond", "linear")
    assert bench.trial_config("acgan", "ring", 0, 100, ["optim.lr_schedule=constant"]).optim.lr_schedule == "constant"
    assert bench.trial_config("selfcond", "stacked-fashion-mnist", 0, 100).model.arch == "auto"


def test_unknown_names_are_refused_with_the_valid_list() -> None:
    with pytest.raises(ConfigError, match="expected one of: .*acgan"):
        bench.run_bench(["acgan", "wgan"], ["ring"], 1, "unused")
    with pytest.raises(ConfigError, match="expected one of: ring, grid"):
        bench.parse_names("ring,moons", bench.DATASETS, "datasets", bench.ALIASES)
    assert bench.parse_names("stacked,ring", bench.DATASETS, "datasets", bench.ALIASES) == \
        ["stacked-fashion-mnist", "ring"]


def test_end_to_end_with_interruption_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "bench"
    real_eval, calls = bench.evaluate_2d, []

    def dies_on_second(points, dataset):  # the process is "killed" while scoring trial 1
        calls.append(dataset)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_eval(points, dataset)

    monkeypatch.setattr(bench, "evaluate_2d", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        bench.run_bench(["acgan"], ["ring"], 2, out, steps=20, num_eval=3000, overrides=TINY, progress=False)
    first = out / "results" / "ring-acgan-0.json"
    assert first.exists() and not (out / "results" / "ring-acgan-1.json").exists()
    stamp = first.stat().st_mtime_ns

    monkeypatch.setattr(bench, "evaluate_2d", real_eval)
    real_train, trained = bench.train, []
    monkeypatch.setattr(bench, "train", lambda cfg, run_dir, **kw: trained.append((run_dir.name, kw["resume"]))
                        or real_train(cfg, run_dir, **kw))
    rows, table = bench.run_bench(["acgan"], ["ring"], 2, out, steps=20, num_eval=3000, overrides=TINY,
                                  progress=False)
    assert trained == [("trial-1", True)]  # trial 0 skipped; trial 1 resumed its finished run
    assert first.stat().st_mtime_ns == stamp
    assert [r["trial"] for r in rows] == [0, 1]
    assert "ring modes" in table and "acgan" in table

    with np.load(out / "runs" / "ring" / "acgan" / "trial-1" / "samples.npz") as f:
        assert f["points"].shape == (3000, 2) and f["points"].dtype == np.float32
        assert f["labels"].dtype == np.int64
    assert (out / "plots" / "ring-acgan-1.png").stat().st_size > 0
    assert "ring % HQ" in (out / "table.md").read_text()
    csv_rows = (out / "results.csv").read_text().splitlines()
    assert len(csv_rows) == 3 and "hq_percent_linf" in csv_rows[0]
    result = json.loads((out / "results" / "ring-acgan-1.json").read_text())
    assert 0 <= result["metrics"]["modes"] <= 8 and result["num_eval"] == 3000

    with pytest.raises(RunDirError, match="another config"):
        bench.run_bench(["acgan"], ["ring"], 1, out, steps=21, num_eval=3000, overrides=TINY, progress=False)


def test_stacked_with_a_judge(tmp_path: Path) -> None:
    judge = save_judge(JudgeCNN(1, 28, 10), tmp_path / "judge.safetensors", dataset="fashion-mnist",
                       class_names=[str(i) for i in range(10)], sample_shape=(1, 28, 28), test_accuracy=0.1)
    rows, _ = bench.run_bench(["gan"], ["stacked-fashion-mnist"], 1, tmp_path / "b", steps=2, num_eval=300,
                              overrides=["data.num_samples=256", "model.g_channels=8", "model.d_channels=8",
                                         "train.batch_size=32", "train.threads=1"],
                              judge=tmp_path / "judge.safetensors", progress=False)
    (row,) = rows
    assert 1 <= row["metrics"]["modes"] <= 300 and row["extractor"] == judge.id
    with np.load(tmp_path / "b" / "runs" / "stacked-fashion-mnist" / "gan" / "trial-0" / "samples.npz") as f:
        assert f["images"].shape == (300, 28, 28, 3) and "labels" not in f  # unconditional GAN


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "modes", "--methods", "gan", "--datasets", "grid", "--trials", "1", "--steps", "10",
            "--eval-samples", "1000", "--out", str(tmp_path / "b"), "--no-progress"]
    assert main(args + [x for s in TINY for x in ("--set", s)]) == 0
    assert "grid modes" in capsys.readouterr().out
    assert main(["bench", "modes", "--methods", "gan,nope", "--out", str(tmp_path / "c")]) == 2
    assert "expected one of" in capsys.readouterr().err
