"""report.html as a person sees it: rendered by headless Chromium at 1280 px, every image loaded,
nothing wider than the window, and a screenshot kept (under the test's tmp dir, `report.png`).

Needs the Debian package `chromium` (scripts/setup.sh installs it); skipped, saying so, without it."""

import json

import numpy as np
import pytest

from cli_data import write_fashion_like
from condgan.cli import main
from condgan.report.browser import check_page, find_chromium

pytestmark = pytest.mark.skipif(find_chromium() is None,
                                reason="chromium is not installed (apt-get install chromium; scripts/setup.sh)")


def test_eval_report_renders_in_chromium(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = write_fashion_like(tmp_path / "fm", n=300)
    judge = tmp_path / "judge.safetensors"
    assert main(["classifier", "train", "--data", "fashion-mnist", "--data-dir", str(folder), "--epochs", "1",
                 "--out", str(judge), "--no-progress"]) == 0
    run = tmp_path / "run"
    assert main(["train", "--config", "acgan-fashion-mnist", "--data-dir", str(folder), "--out", str(run),
                 "--steps", "2", "--batch-size", "16", "--set", "model.g_channels=8", "--set", "model.d_channels=8",
                 "--set", "train.ckpt_every=1", "--no-progress"]) == 0
    out = tmp_path / "rep"
    # Every default metric (and interpolation, for a run) so that every section and figure is on the page.
    assert main(["eval", "--run", str(run), "--n", "300", "--data-dir", str(folder), "--judge", str(judge),
                 "--pairs", "10", "--cas-epochs", "1", "--out", str(out), "--no-progress"]) == 0
    figures = json.loads((out / "metrics.json").read_text())["figures"]
    check = check_page(out / "report.html", out / "report.png")
    assert check["images"] == len(figures) >= 8, check
    assert check["broken_images"] == 0, check["broken"]
    assert not check["overflow"], f"page is {check['scroll_width']} px wide at a {check['width']} px window"
    assert (out / "report.png").stat().st_size > 10_000
    # The run's first checkpoint too, then both side by side and over steps (embedded grids, steps.png).
    early = tmp_path / "rep-step1"
    assert main(["eval", "--run", str(run), "--checkpoint", str(run / "checkpoints" / "ckpt-00000001.pt"), "--n", "300",
                 "--data-dir", str(folder), "--judge", str(judge), "--metrics", "accuracy,fid,cas", "--cas-epochs", "1",
                 "--out", str(early), "--no-progress"]) == 0
    assert json.loads((early / "metrics.json").read_text())["inputs"]["run_step"] == 1
    assert main(["report", str(out), str(early), "--out", str(tmp_path / "cmp"), "--screenshot"]) == 0
    assert (tmp_path / "cmp" / "steps.png").is_file() and (tmp_path / "cmp" / "report.png").is_file()
    check = check_page(tmp_path / "cmp" / "report.html")
    assert check["broken_images"] == 0 and check["images"] == 3 and not check["overflow"], check


def test_check_page_finds_broken_images_and_overflow(tmp_path):
    page = tmp_path / "p.html"
    page.write_text("<!doctype html><body><img src='missing.png'><div style='width:3000px'>wide</div></body>")
    check = check_page(page)
    assert check["broken"] == ["missing.png"] and check["overflow"] and check["scroll_width"] >= 3000
    assert not list(tmp_path.glob(".*check*"))  # the probe copy is removed
    np.testing.assert_equal(check["width"], 1280)
