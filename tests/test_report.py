"""The report a person reads: the order of report.html (summary, sample grid, per-class table,
figures, all numbers, skipped metrics, inputs), its plain-words readings, and `condgan report`
side by side and over training steps."""

import json
import re

import numpy as np
import pytest

from cli_data import write_fashion_like
from condgan.cli import main
from condgan.errors import ReportError
from condgan.report.compare import write_comparison
from condgan.report.grid import first_per_class_grid
from condgan.report.html import render_page


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    folder = write_fashion_like(root / "fm", n=300)
    judge = root / "judge.safetensors"
    assert main(["classifier", "train", "--data", "fashion-mnist", "--data-dir", str(folder), "--epochs", "1",
                 "--out", str(judge), "--no-progress"]) == 0
    from condgan.data import load_dataset

    test = load_dataset("fashion-mnist", "test", data_dir=folder)
    samples = root / "s.npz"
    # Samples: the real test images, with class 0 collapsed onto one image (less diverse than real).
    images, labels = test.to_uint8_nhwc(), test.y.numpy()
    images[labels == 0] = images[np.flatnonzero(labels == 0)[0]]
    np.savez(samples, images=images, labels=labels)
    return {"root": root, "folder": folder, "judge": judge, "samples": samples}


def _eval(env, out, *extra):
    return main(["eval", "--samples", str(env["samples"]), "--real", "fashion-mnist", "--data-dir", str(env["folder"]),
                 "--judge", str(env["judge"]), "--out", str(out), "--no-progress", "--pairs", "10", "--cas-epochs", "1",
                 *extra])


def test_first_per_class_grid():
    images = np.arange(6, dtype=np.uint8).reshape(6, 1, 1, 1).repeat(2, 1).repeat(2, 2)
    labels = np.array([1, 0, 1, 1, 0, 2])
    grid = first_per_class_grid(images, labels, 3, rows=2, max_columns=3)
    assert grid.shape == (2 + 2 * 4, 2 + 3 * 4, 1)
    cell = lambda r, c: grid[2 + 4 * r, 2 + 4 * c, 0]  # noqa: E731
    assert [cell(0, 0), cell(1, 0), cell(0, 1), cell(1, 1), cell(0, 2)] == [1, 4, 0, 2, 5]
    assert cell(1, 2) == 255  # class 2 has one sample: the cell stays blank


def test_report_reads_top_down(env, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(env["root"] / "cache"))
    out = env["root"] / "rep"
    assert _eval(env, out, "--metrics", "accuracy,cas,fid,intra_fid,diversity,memorization,cluster_agreement") == 0
    page = (out / "report.html").read_text()
    result = json.loads((out / "metrics.json").read_text())
    m = result["metrics"]
    # The real-vs-real FID floor, in the same features.
    assert m["fid_real_floor"] > 0 and result["extractors"]["fid"].startswith("judge-cnn:")
    # The sections, in reading order.
    order = ["<h2>summary", "<h2>samples", "<h2>per class", "<h2>figures", "<h2>all numbers", "<h2>skipped metrics",
             "<h2>inputs"]
    positions = [page.index(s) for s in order]
    assert positions == sorted(positions)
    summary = page[positions[0]:positions[1]]
    assert "of samples are classified as their class by the judge" in summary
    assert f"; real test images: {100 * m['real_accuracy']:.0f}%" in summary
    assert "a classifier trained only on the samples" in summary
    assert "two halves of the real test set" in summary
    # Class 0 collapsed: less diverse than real in (at least) that class, and its MS-SSIM cell is red.
    worse = sum(m[f"msssim_gen/class_{k}"] > m[f"msssim_real/class_{k}"] for k in range(10))
    assert worse >= 1 and f"less diverse than real in {worse} of 10 classes" in summary
    table = page[positions[2]:positions[3]]
    assert table.count("<tr class=worst>") == 3 and "0 T-shirt/top" in table and "class='num bad'" in table
    for column in ("judge accuracy", "CAS", "MS-SSIM", "intra-FID", "NN distance"):
        assert column in table
    assert "samples.png" in page[positions[1]:positions[2]] and (out / "samples.png").is_file()
    # Skipped metrics say why; every image is a file beside the page.
    assert "cluster_agreement</b>: needs cluster-labelled samples" in page
    for src in re.findall(r"<img src='([^']+)'", page):
        assert (out / src).is_file(), src
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", page) and "<script" not in page  # self-contained


def test_report_without_headlines_or_classes():
    result = {"metrics": {"msssim_gen_mean": 0.2}, "extractors": {}, "keys": {}, "skipped": {"accuracy": "why"},
              "figures": {}, "inputs": {"num_samples": 3}, "seconds": {}}
    page = render_page(result, "t")
    assert "<h2>per class" not in page and "<h2>summary" in page and "accuracy</b>: why" in page


def test_condgan_report_side_by_side_and_over_steps(env, tmp_path):
    evals = []
    for i, step in enumerate((100, 300, 200)):
        d = tmp_path / f"e{i}"
        d.mkdir()
        res = {"metrics": {"accuracy": 0.5 + 0.1 * i, "real_accuracy": 0.9, "fid": 10.0 - i, "fid_real_floor": 0.5},
               "extractors": {"accuracy": "judge-cnn:x:1", "fid": "judge-cnn:x:1"},
               "keys": {"accuracy": ["accuracy", "real_accuracy"], "fid": ["fid", "fid_real_floor"]},
               "skipped": {}, "figures": {}, "seconds": {},
               "inputs": {"run": "runs/fm", "run_step": step, "num_samples": 10}}
        (d / "metrics.json").write_text(json.dumps(res))
        evals.append(d)
    assert main(["report", *map(str, evals), "--out", str(tmp_path / "cmp")]) == 0
    page = (tmp_path / "cmp" / "report.html").read_text()
    assert (tmp_path / "cmp" / "steps.png").is_file() and "steps.png" in page
    # Columns sorted by step; the reference in brackets.
    assert page.index("fm @ 100") < page.index("fm @ 200") < page.index("fm @ 300")
    assert "50% (90%)" in page and "not comparable" not in page
    # Another extractor in one column is flagged; no steps plot across different runs.
    res = json.loads((evals[0] / "metrics.json").read_text())
    res["extractors"]["fid"] = "inception-v3-fid:abc"
    res["inputs"]["run"] = "runs/other"
    (evals[0] / "metrics.json").write_text(json.dumps(res))
    out = write_comparison(evals, tmp_path / "cmp2")
    assert "not comparable: extractors differ" in out.read_text() and not (tmp_path / "cmp2" / "steps.png").exists()
    # A real eval directory: its sample grid is embedded, so the page stands alone.
    real = env["root"] / "rep"
    if (real / "metrics.json").is_file():
        page = write_comparison([real, real], tmp_path / "cmp3").read_text()
        assert "data:image/png;base64," in page


def test_eval_checkpoint_needs_a_run(env, capsys):
    assert _eval(env, env["root"] / "x", "--checkpoint", "ckpt-1.pt") == 2
    assert "--checkpoint picks a checkpoint of --run" in capsys.readouterr().err


def test_condgan_report_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "metrics.json" in capsys.readouterr().err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "metrics.json").write_text("{")
    with pytest.raises(ReportError, match="expected the JSON"):
        write_comparison([tmp_path / "bad"], tmp_path / "o")
