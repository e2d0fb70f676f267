"""`condgan eval` end to end on real-format files: report files, extractor ids, the real-feature
cache on a second run, sampling from a run, and one-line exit-2 errors for bad samples files."""

import json

import numpy as np
import pytest

from cli_data import write_fashion_like
from condgan.cli import main


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalcli")
    folder = write_fashion_like(root / "fm", n=300)
    judge = root / "judge.safetensors"
    assert main(["classifier", "train", "--data", "fashion-mnist", "--data-dir", str(folder), "--epochs", "1",
                 "--out", str(judge), "--no-progress"]) == 0
    from condgan.data import load_dataset

    test = load_dataset("fashion-mnist", "test", data_dir=folder)
    samples = root / "s.npz"
    np.savez(samples, images=test.to_uint8_nhwc(), labels=test.y.numpy())
    return {"root": root, "folder": folder, "judge": judge, "samples": samples, "test": test}


def _eval(env, *extra, samples=None, out="rep"):
    return main(["eval", "--samples", str(samples or env["samples"]), "--real", "fashion-mnist", "--data-dir",
                 str(env["folder"]), "--judge", str(env["judge"]), "--out", str(env["root"] / out), "--no-progress",
                 *extra])


def test_eval_end_to_end_and_cache(env, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(env["root"] / "cache"))
    args = ["--metrics", "accuracy,fid,diversity,correlation,resolution_sweep,memorization", "--pairs", "10"]
    assert _eval(env, *args) == 0
    out = capsys.readouterr().out
    rep = env["root"] / "rep"
    result = json.loads((rep / "metrics.json").read_text())
    judge_id = result["extractors"]["fid"]
    assert judge_id.startswith("judge-cnn:fashion-mnist:") and judge_id in out
    assert result["extractors"]["diversity"].startswith("pixels:ms-ssim(win=7")
    assert result["inputs"]["num_samples"] == 300 and result["inputs"]["pairs"] == 10
    m = result["metrics"]
    assert m["fid"] == pytest.approx(0.0, abs=1e-6)  # the samples are the real test set itself
    assert m["accuracy"] == m["real_accuracy"]
    assert m["msssim_gen_mean"] == pytest.approx(m["msssim_real_mean"], abs=1e-12)
    for fig in ("diversity", "correlation", "resolution_sweep", "memorization"):
        assert (rep / result["figures"][fig]).is_file()
    html = (rep / "report.html").read_text()
    assert judge_id in html and "diversity.png" in html
    assert not any(result["cache_hits"].values())
    # Second run: the real test/train features come from the cache, the numbers are the same.
    assert _eval(env, "--metrics", "accuracy,resolution_sweep,memorization", out="rep2") == 0
    again = json.loads((env["root"] / "rep2" / "metrics.json").read_text())
    assert len(again["cache_hits"]) == 5 and all(again["cache_hits"].values())  # test, 3 down-up sizes, train
    assert again["metrics"] == {k: result["metrics"][k] for k in again["metrics"]}


def test_eval_from_run_with_interpolation(env, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main(["train", "--config", "acgan-fashion-mnist", "--data-dir", str(env["folder"]), "--out", str(run),
                 "--steps", "2", "--batch-size", "16", "--set", "model.g_channels=8", "--set", "model.d_channels=8",
                 "--set", "train.ckpt_every=2", "--no-progress"]) == 0
    assert main(["eval", "--run", str(run), "--n", "100", "--data-dir", str(env["folder"]), "--judge",
                 str(env["judge"]), "--metrics", "interpolation,accuracy", "--out", str(tmp_path / "rep"),
                 "--no-progress"]) == 0
    result = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert result["inputs"]["run_step"] == 2 and result["inputs"]["num_samples"] == 100
    for name in ("interpolation_z", "interpolation_class", "interpolation_z_steps", "interpolation_class_steps"):
        assert (tmp_path / "rep" / result["figures"][name]).is_file()
    assert result["metrics"]["interp_class_jump_ratio_max"] >= 1.0


def _bad(env, tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("case, needle", [
    ("missing", "expected arrays 'images' and 'labels' (label_kind 'class'), found ['images', 'label_kind']"),
    ("float", "images: expected uint8 N×H×W×C, found float32"),
    ("label_range", "labels: expected values in [0, 10)"),
    ("label_dtype", "labels: expected int64, found dtype float64"),
    ("size", "images: expected N×28×28×1 like fashion-mnist, found shape (300, 32, 32, 1)"),
    ("channels", "images: expected N×28×28×1 like fashion-mnist, found shape (300, 28, 28, 3)"),
    ("few", "expected at least 15 samples per class for 100 MS-SSIM pairs (--pairs), found 10"),
    ("pickle", "not a readable .npz without pickles"),
])
def test_bad_samples_one_line_exit_2(env, tmp_path, capsys, case, needle):
    images, labels = env["test"].to_uint8_nhwc(), env["test"].y.numpy()
    arrays = {
        "missing": dict(images=images, label_kind=np.asarray("class")),
        "float": dict(images=images.astype(np.float32) / 255, labels=labels),
        "label_range": dict(images=images, labels=labels + 1),
        "label_dtype": dict(images=images, labels=labels.astype(np.float64)),
        "size": dict(images=np.zeros((300, 32, 32, 1), np.uint8), labels=labels),
        "channels": dict(images=np.repeat(images, 3, axis=3), labels=labels),
        "few": dict(images=images[:100], labels=labels[:100]),
        "pickle": dict(images=np.array([{"a": 1}], dtype=object), labels=labels),
    }[case]
    path = _bad(env, tmp_path, **arrays)
    capsys.readouterr()
    assert _eval(env, "--metrics", "diversity", samples=path, out=str(tmp_path / "r")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("condgan: error: ") and str(path) in err[0]
    assert needle in err[0]


@pytest.mark.parametrize("extra, needle", [
    (["--metrics", "fid,nope"], "--metrics: unknown metric 'nope'"),
    (["--pairs", "0"], "--pairs: expected a positive number"),
    (["--run", "somewhere"], "expected exactly one of --samples FILE or --run RUN"),
    (["--metrics", "interpolation"], "metric interpolation needs a model"),
])
def test_bad_options_one_line_exit_2(env, tmp_path, capsys, extra, needle):
    capsys.readouterr()
    assert _eval(env, *extra, out=str(tmp_path / "r")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def test_classifier_train_refuses_to_replace_a_judge(env, capsys):
    before = env["judge"].read_bytes()
    argv = ["classifier", "train", "--data", "fashion-mnist", "--data-dir", str(env["folder"]), "--epochs", "1",
            "--out", str(env["judge"]), "--no-progress"]
    assert main(argv) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert env["judge"].read_bytes() == before


@pytest.mark.parametrize("method, kind", [("gan", "none"), ("lapgan", "none"), ("selfcond", "cluster")])
def test_eval_run_of_unconditional_and_cluster_methods(env, tmp_path, monkeypatch, capsys, method, kind):
    """gan/lapgan samples carry no labels and Self-Cond GAN's carry cluster ids: the class-free metrics
    run, the class metrics are listed as skipped with the reason, and clusters are matched to classes."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    run = tmp_path / "run"
    extra = {"gan": [], "lapgan": ["--set", "method.pyramid_levels=2"],
             "selfcond": ["--set", "method.num_clusters=4", "--set", "method.cluster_fit_size=100"]}[method]
    assert main(["train", "--config", f"{method}-fashion-mnist" if method != "gan" else "acgan-fashion-mnist-paper",
                 "--method", method, "--data-dir", str(env["folder"]), "--out", str(run), "--steps", "2",
                 "--batch-size", "16", "--set", "model.g_channels=8", "--set", "model.d_channels=8",
                 "--set", "train.ckpt_every=2", *extra, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", "--run", str(run), "--n", "60", "--data-dir", str(env["folder"]), "--judge",
                 str(env["judge"]), "--out", str(tmp_path / "rep"), "--device", "cpu", "--no-progress"]) == 0
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert result["inputs"]["label_kind"] == kind
    assert {"fid", "kid", "prdc", "is", "memorization"} <= set(result["keys"])
    for name in ("accuracy", "intra_fid", "diversity", "correlation", "resolution_sweep", "interpolation"):
        assert name not in result["keys"] and name in result["skipped"], name
        assert f"{name:17s} skipped: needs dataset classes" in out
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "skipped" in html and "needs dataset classes" in html
    if kind == "cluster":
        m = result["metrics"]
        assert 0.0 < m["cluster_agreement"] <= m["cluster_purity"] <= 1.0
        assert "cluster_agreement" in result["keys"]
    else:
        assert "cluster_agreement" not in result["keys"]
