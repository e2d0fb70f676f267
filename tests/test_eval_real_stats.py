"""`condgan eval --real-stats FILE`: fid and intra_fid against stored statistics equal the numbers
against the real images; statistics alone (no --real) run is/fid/intra_fid; files of another
extractor or feature size, foreign files without a stated convention, and metrics that need real
images are refused in one line with exit code 2."""

import json

import numpy as np
import pytest

from cli_data import write_fashion_like
from condgan.cli import main


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("realstats")
    folder = write_fashion_like(root / "fm", n=300)
    judges = []
    for seed in (0, 1):
        judges.append(root / f"judge{seed}.safetensors")
        assert main(["classifier", "train", "--data", "fashion-mnist", "--data-dir", str(folder), "--epochs", "1",
                     "--seed", str(seed), "--out", str(judges[-1]), "--no-progress"]) == 0
    from condgan.data import load_dataset

    train = load_dataset("fashion-mnist", "train", data_dir=folder)
    samples = root / "s.npz"  # inverted training images: far from the test split
    np.savez(samples, images=255 - train.to_uint8_nhwc(), labels=train.y.numpy())
    stats = root / "test-stats.npz"
    assert main(["stats", "--data", "fashion-mnist", "--data-dir", str(folder), "--judge", str(judges[0]),
                 "--out", str(stats), "--no-progress"]) == 0
    return {"root": root, "folder": folder, "judges": judges, "samples": samples, "stats": stats}


def _eval(env, out, *extra, real=True, judge=0):
    args = ["eval", "--samples", str(env["samples"]), "--judge", str(env["judges"][judge]),
            "--out", str(env["root"] / out), "--no-progress", *extra]
    if real:
        args += ["--real", "fashion-mnist", "--data-dir", str(env["folder"])]
    return main(args)


def _result(env, out):
    return json.loads((env["root"] / out / "metrics.json").read_text())


def test_stats_give_the_numbers_of_the_real_images(env, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(env["root"] / "cache"))
    assert _eval(env, "images", "--metrics", "is,fid,intra_fid") == 0
    assert _eval(env, "with-stats", "--metrics", "is,fid,intra_fid", "--real-stats", str(env["stats"])) == 0
    assert _eval(env, "stats-only", "--real-stats", str(env["stats"]), real=False) == 0
    images, with_stats, alone = (_result(env, d) for d in ("images", "with-stats", "stats-only"))
    assert images["metrics"]["fid"] > 10 * images["metrics"]["fid_real_floor"]  # not a trivial zero
    for key, value in images["metrics"].items():
        if key.startswith(("fid", "intra_fid")) and key != "fid_real_floor":
            assert with_stats["metrics"][key] == pytest.approx(value, rel=1e-9), key
            assert alone["metrics"][key] == pytest.approx(value, rel=1e-9), key
    assert with_stats["metrics"]["fid_real_floor"] == images["metrics"]["fid_real_floor"]  # real images still given
    assert "fid_real_floor" not in alone["metrics"]
    assert sorted(alone["keys"]) == ["fid", "intra_fid", "is"]  # the defaults that need no real images
    assert alone["metrics"]["is_mean"] == images["metrics"]["is_mean"]
    assert "statistics file" in alone["extractors"]["fid"] and "statistics file" not in images["extractors"]["fid"]
    assert alone["inputs"]["real_stats"]["extractor_id"] == images["extractors"]["fid"]
    assert alone["inputs"]["real"] == "fashion-mnist" and alone["inputs"]["num_real"] == 300
    assert "no real images" in (env["root"] / "stats-only" / "report.html").read_text()


def test_foreign_file_needs_its_convention_and_has_no_class_stats(env, capsys):
    from condgan.metrics.stats import load_stats

    ours = load_stats(env["stats"])
    foreign = env["root"] / "foreign.npz"
    np.savez(foreign, mu=ours.mu, sigma=ours.sigma)  # as pytorch-fid's --save-stats writes them
    assert _eval(env, "foreign-bad", "--real-stats", str(foreign), real=False) == 2
    assert "foreign statistics file" in capsys.readouterr().err
    # Declared as the judge's features (the id condgan stats recorded): usable; intra_fid is skipped.
    assert _eval(env, "foreign", "--real-stats", str(foreign), "--real-stats-from", ours.extractor_id,
                 "--judge", str(env["judges"][0]), real=False) == 0
    result = _result(env, "foreign")
    assert result["metrics"]["fid"] == pytest.approx(_result(env, "stats-only")["metrics"]["fid"], rel=1e-9)
    assert "per-class" in result["skipped"]["intra_fid"]


@pytest.mark.parametrize("case, needle", [
    ("other-judge", "expected 'judge-cnn:fashion-mnist:"),
    ("needs-images", "need the real images"),
    ("pytorch-fid-vs-judge", "inception-v3-fid:6726825d"),
    ("wrong-dim", "statistics of 3-d features"),
    ("missing", "no such statistics file"),
])
def test_bad_statistics_one_line_exit_2(env, tmp_path, capsys, case, needle):
    from condgan.metrics.stats import load_stats

    ours = load_stats(env["stats"])
    args: list[str] = ["--real-stats", str(env["stats"])]
    judge = 0
    if case == "other-judge":
        judge = 1
    elif case == "needs-images":
        args += ["--metrics", "fid,accuracy"]
    elif case == "pytorch-fid-vs-judge":
        np.savez(tmp_path / "pf.npz", mu=ours.mu, sigma=ours.sigma)
        args = ["--real-stats", str(tmp_path / "pf.npz"), "--real-stats-from", "pytorch-fid"]
    elif case == "wrong-dim":
        np.savez(tmp_path / "small.npz", mu=np.zeros(3), sigma=np.eye(3))
        args = ["--real-stats", str(tmp_path / "small.npz"), "--real-stats-from", ours.extractor_id]
    else:
        args = ["--real-stats", str(tmp_path / "absent.npz")]
    before = sorted(p.name for p in env["root"].iterdir())
    assert _eval(env, f"bad-{case}", *args, real=False, judge=judge) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    assert "Traceback" not in err
    assert sorted(p.name for p in env["root"].iterdir()) == before  # nothing written
