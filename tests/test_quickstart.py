"""The quickstart end to end on a small Fashion-MNIST-format dataset: it trains, trains the judge
when none is cached, evaluates into out/eval and prints each headline beside its real reference."""

import json

from cli_data import write_fashion_like
from condgan.cli import main
from condgan.quickstart import run_quickstart


def test_quickstart_prints_numbers_beside_real_references(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CONDGAN_DATA", str(write_fashion_like(tmp_path / "data", n=300)))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    numbers = run_quickstart(tmp_path / "qs", steps=4, n_samples=500)
    out = capsys.readouterr().out
    assert numbers["steps"] == 4
    assert (tmp_path / "cache" / "condgan" / "judges").is_dir()  # trained on first use, cached
    result = json.loads((tmp_path / "qs" / "eval" / "metrics.json").read_text())
    assert result["metrics"]["accuracy"] == numbers["judge_accuracy_on_samples"]
    assert (tmp_path / "qs" / "eval" / "report.html").is_file() and (tmp_path / "qs" / "grid.png").is_file()
    # Each headline line carries the samples' number and the real reference next to it.
    accuracy_line = next(line for line in out.splitlines() if "judge accuracy (GAN-test)" in line)
    assert f"{100 * numbers['judge_accuracy_on_real_test']:.0f}%" in accuracy_line
    assert "two halves of the real test set" in next(line for line in out.splitlines() if line.strip().startswith("FID"))
    assert "report.html" in out
    assert "acgan-fashion-mnist (method tacgan) on fashion-mnist, 4 steps of 64 images" in out


def test_quickstart_over_a_run_of_another_config_says_how_to_go_on(tmp_path, monkeypatch, capsys):
    """A quickstart directory of an earlier default (here the paper preset) is not resumed with the
    new one: one line names the difference and the two ways on, exit code 2, the run left as it was."""
    monkeypatch.setenv("CONDGAN_DATA", str(write_fashion_like(tmp_path / "data", n=300)))
    run = tmp_path / "qs"
    assert main(["train", "--config", "acgan-fashion-mnist-paper", "--out", str(run), "--steps", "2",
                 "--set", "model.g_channels=8", "--set", "model.d_channels=8", "--no-progress"]) == 0
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    capsys.readouterr()
    assert main(["quickstart", "--out", str(run), "--steps", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different method.name: saved 'acgan', given 'tacgan'" in err[0]
    assert "pass --force to replace it, or --out for a new directory" in err[0]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before
