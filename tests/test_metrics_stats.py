"""Reference statistics files: round trip, pytorch-fid reading condgan's files, pytorch-fid's and
clean-fid's files read by condgan, refusals by name, FID/intra-FID from statistics, the CLI verb."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from condgan.errors import SamplesError, StatsError
from condgan.metrics.fid import fid, frechet_distance, intra_class_fid
from condgan.metrics.stats import (
    FORMAT_VERSION,
    compute_stats,
    fid_from_stats,
    intra_fid_from_stats,
    load_stats,
    save_stats,
)

EX = "judge-cnn:fashion-mnist:0123456789ab"
INCEPTION = "inception-v3-fid:6726825d0123/unbiased-logits"  # condgan's id for pytorch-fid's published weights


def _labelled(n_per_class: int, d: int, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per_class)
    mix = np.random.default_rng(9).normal(size=(d, d)) / np.sqrt(d)
    return np.abs(rng.normal(size=(len(y), d)) @ mix) + y[:, None] * 0.3 + shift, y


@pytest.fixture()
def real():
    return _labelled(40, 64, 0)


def test_round_trip_keeps_every_array_and_the_metadata(tmp_path, real):
    feats, y = real
    stats = compute_stats(feats, y, extractor_id=EX, dataset="fashion-mnist", split="test")
    path = save_stats(stats, tmp_path / "ref.npz")
    with np.load(path, allow_pickle=False) as f:
        assert int(f["condgan_stats_version"]) == FORMAT_VERSION and f["class_sigma_triu"].shape == (3, 64 * 65 // 2)
        assert str(f["extractor_id"]) == EX and int(f["feature_dim"]) == 64 and int(f["num_samples"]) == 120
        np.testing.assert_array_equal(f["class_counts"], [40, 40, 40])
    back = load_stats(path, extractor_id=EX, feature_dim=64)
    assert (back.extractor_id, back.source, back.num_samples, back.dataset, back.split) == (
        EX, "condgan", 120, "fashion-mnist", "test")
    np.testing.assert_array_equal(back.mu, stats.mu)
    np.testing.assert_array_equal(back.sigma, stats.sigma)
    np.testing.assert_array_equal(back.classes, [0, 1, 2])
    np.testing.assert_array_equal(back.class_sigma_triu, stats.class_sigma_triu)
    np.testing.assert_allclose(back.class_sigma(1), np.cov(feats[y == 1], rowvar=False), rtol=1e-12, atol=1e-14)
    pooled = compute_stats(feats, extractor_id=EX)
    assert not load_stats(save_stats(pooled, tmp_path / "pooled.npz"), extractor_id=EX).has_classes


def test_pytorch_fid_reads_condgan_files(tmp_path, real, monkeypatch):
    """pytorch-fid's own path: `calculate_fid_given_paths` on two .npz files (its `f['mu'][:], f['sigma'][:]`
    reader); its Inception is replaced by a stand-in because for .npz inputs it is built but never run."""
    fid_score = pytest.importorskip("pytorch_fid.fid_score", reason="pytorch-fid is a test extra: pip install -e .[test]")

    class NoNetwork:
        BLOCK_INDEX_BY_DIM = {64: 0}

        def __init__(self, blocks):
            pass

        def to(self, device):
            return self

    monkeypatch.setattr(fid_score, "InceptionV3", NoNetwork)
    feats, y = real
    gen, _ = _labelled(50, 64, 1, shift=0.2)
    ours = save_stats(compute_stats(feats, y, extractor_id=EX), tmp_path / "real.npz")
    theirs = tmp_path / "gen.npz"
    np.savez_compressed(theirs, mu=gen.mean(0), sigma=np.cov(gen, rowvar=False))  # as pytorch-fid --save-stats
    value = fid_score.calculate_fid_given_paths([str(ours), str(theirs)], 1, "cpu", 64)
    assert value == pytest.approx(fid(feats, gen)["fid"], rel=1e-6)
    m, s = fid_score.compute_statistics_of_path(str(ours), None, 1, 64, "cpu")
    np.testing.assert_array_equal(m, feats.mean(0))


def test_pytorch_fid_file_read_with_the_users_statement(tmp_path, real):
    feats, _ = real
    path = tmp_path / "pfid.npz"
    np.savez_compressed(path, mu=feats.mean(0), sigma=np.cov(feats, rowvar=False))
    with pytest.raises(StatsError, match=r"pfid\.npz: a foreign statistics file.*pytorch-fid"):
        load_stats(path, extractor_id=INCEPTION)
    stats = load_stats(path, extractor_id=INCEPTION, foreign="pytorch-fid")
    assert stats.source == "pytorch-fid" and stats.num_samples is None and not stats.has_classes
    gen, _ = _labelled(30, 64, 2)
    assert fid_from_stats(stats, gen, INCEPTION)["fid"] == pytest.approx(fid(feats, gen)["fid"], rel=1e-9)
    with pytest.raises(StatsError, match=r"pfid\.npz: statistics of extractor 'inception-v3-fid:6726825d'.*"
                                         r"expected 'judge-cnn"):
        load_stats(path, extractor_id=EX, foreign="pytorch-fid")
    with pytest.raises(StatsError, match="expected 'inception-v3-fid:00000000"):
        load_stats(path, extractor_id="inception-v3-fid:000000000000/unbiased-logits", foreign="pytorch-fid")
    assert load_stats(path, extractor_id=EX, foreign=EX).source == "declared"  # an explicit extractor id


def test_clean_fid_files(tmp_path, real):
    """clean-fid writes `np.savez_compressed(outf, mu=mu, sigma=sigma)` (cleanfid/fid.py, make_custom_stats)."""
    feats, _ = real
    path = tmp_path / "cifar10_clean_custom_na.npz"
    np.savez_compressed(path, mu=feats.mean(0), sigma=np.cov(feats, rowvar=False))
    stats = load_stats(path, foreign="clean-fid")
    assert stats.extractor_id == "clean-fid:clean" and stats.feature_dim == 64
    with pytest.raises(StatsError, match=r"cifar10_clean_custom_na\.npz: statistics of extractor 'clean-fid:clean'"):
        load_stats(path, extractor_id=INCEPTION, foreign="clean-fid")
    assert load_stats(path, extractor_id=INCEPTION, foreign="clean-fid-legacy-pytorch").matches(INCEPTION)


def test_other_extractor_or_feature_size_is_refused_by_name(tmp_path, real):
    feats, y = real
    path = save_stats(compute_stats(feats, y, extractor_id=EX), tmp_path / "judge-stats.npz")
    with pytest.raises(StatsError, match=r"judge-stats\.npz: statistics of 64-d features, expected 2048-d") as e:
        load_stats(path, extractor_id=EX, feature_dim=2048)
    assert "\n" not in str(e.value)
    with pytest.raises(StatsError, match=rf"judge-stats\.npz: statistics of extractor '{EX}'.*expected '{INCEPTION}'"):
        load_stats(path, extractor_id=INCEPTION)
    stats = load_stats(path)
    with pytest.raises(StatsError, match="fid_from_stats: statistics of extractor"):
        fid_from_stats(stats, feats, INCEPTION)
    with pytest.raises(StatsError, match="64-d features, gen_feats has 32"):
        fid_from_stats(stats, feats[:, :32], EX)


def _truncated(path: Path) -> None:
    np.savez(path, mu=np.zeros(4), sigma=np.eye(4))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("make, found", [
    (lambda p: p.write_bytes(b""), "not a readable .npz"),
    (lambda p: p.write_bytes(b"not numpy at all\n" * 10), "not a readable .npz"),
    (_truncated, "not a readable .npz"),
    (lambda p: np.savez(p, mu=np.array([object()]), sigma=np.eye(1)), "not a readable .npz"),
    (lambda p: np.save(open(p, "wb"), np.zeros(3)), "single .npy array"),
    (lambda p: np.savez(p, mean=np.zeros(3)), "expected keys mu and sigma"),
    (lambda p: np.savez(p, mu=np.zeros(3), sigma=np.eye(4)), r"sigma: expected a numeric array of shape \(3, 3\)"),
    (lambda p: np.savez(p, mu=np.full(2, np.nan), sigma=np.eye(2)), "mu: expected finite values"),
    (lambda p: np.savez(p, mu=np.zeros(2), sigma=np.eye(2), condgan_stats_version=np.int64(99)), "found 99"),
])
def test_damaged_files_are_one_line_errors_naming_the_file(tmp_path, make, found):
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(StatsError, match=found) as e:
        load_stats(path, foreign="pytorch-fid")
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
    with pytest.raises(StatsError, match="no such statistics file"):
        load_stats(tmp_path / "missing.npz")


@pytest.mark.parametrize("n_gen", [20, 150])  # fewer and more generated samples than dimensions
def test_fid_and_intra_fid_from_stats_equal_the_feature_versions(tmp_path, real, n_gen):
    feats, y = real
    gen, gen_y = _labelled(n_gen // 3, 64, 3, shift=0.1)
    stats = load_stats(save_stats(compute_stats(feats, y, extractor_id=EX), tmp_path / "s.npz"), extractor_id=EX)
    assert fid_from_stats(stats, gen, EX)["fid"] == pytest.approx(fid(feats, gen)["fid"], rel=1e-9)
    from_stats = intra_fid_from_stats(stats, gen, gen_y, EX)
    direct = intra_class_fid(feats, y, gen, gen_y)
    assert list(from_stats) == list(direct)
    for key in direct:
        assert from_stats[key] == pytest.approx(direct[key], rel=1e-9)
    with pytest.raises(SamplesError, match=r"gen_labels: expected classes \[0, 1, 2\].*found \[5\]"):
        intra_fid_from_stats(stats, gen, np.where(gen_y == 2, 5, gen_y), EX)
    with pytest.raises(StatsError, match="no per-class statistics"):
        intra_fid_from_stats(compute_stats(feats, extractor_id=EX), gen, gen_y, EX)


def test_fid_from_stats_with_fewer_generated_samples_than_dims_matches_frechet_distance():
    rng = np.random.default_rng(4)
    real, gen = np.abs(rng.normal(size=(600, 512))), np.abs(rng.normal(size=(200, 512))) * 1.1
    stats = compute_stats(real, extractor_id=INCEPTION)
    expected = frechet_distance(stats.mu, stats.sigma, gen.mean(0), np.cov(gen, rowvar=False))
    assert fid_from_stats(stats, gen, INCEPTION)["fid"] == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def fm(tmp_path_factory):
    from cli_data import write_fashion_like
    from condgan.cli import main

    root = tmp_path_factory.mktemp("statscli")
    folder = write_fashion_like(root / "fm", n=300)
    judge = root / "judge.safetensors"
    assert main(["classifier", "train", "--data", "fashion-mnist", "--data-dir", str(folder), "--epochs", "1",
                 "--out", str(judge), "--no-progress"]) == 0
    return root, folder, judge


def test_stats_verb_with_the_judge(fm, monkeypatch, capsys):
    from condgan.cli import main
    from condgan.data import load_dataset
    from condgan.metrics.classifier import load_judge
    from condgan.metrics.features import judge_extractor

    root, folder, judge = fm
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "cache"))
    out = root / "fm-test.npz"
    assert main(["stats", "--data", "fashion-mnist", "--data-dir", str(folder), "--judge", str(judge),
                 "--out", str(out), "--no-progress"]) == 0
    ex = judge_extractor(load_judge(judge))
    assert f"extractor {ex.id}" in capsys.readouterr().out
    stats = load_stats(out, extractor_id=ex.id, feature_dim=256)
    assert (stats.dataset, stats.split, stats.num_samples) == ("fashion-mnist", "test", 300)
    np.testing.assert_array_equal(stats.class_counts, [30] * 10)
    test = load_dataset("fashion-mnist", "test", data_dir=folder)
    feats, _ = ex.extract(test.x(), progress=False)
    np.testing.assert_allclose(stats.mu, feats.mean(0), rtol=1e-5, atol=1e-6)
    assert fid_from_stats(stats, feats, ex.id)["fid"] == pytest.approx(0.0, abs=1e-6)


def test_stats_verb_with_inception_weights_and_errors(fm, monkeypatch, capsys, tmp_path):
    from test_inception import random_reference_state

    from condgan.cli import main
    from condgan.metrics.inception import FID_WEIGHTS_NAME

    root, folder, _ = fm
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    torch.manual_seed(0)
    weights = tmp_path / FID_WEIGHTS_NAME
    torch.save(random_reference_state(), weights)
    small = tmp_path / "fm-small"
    from cli_data import write_fashion_like

    write_fashion_like(small, n=10)
    out = tmp_path / "incep.npz"
    assert main(["stats", "--data", "fashion-mnist", "--data-dir", str(small), "--inception-weights", str(weights),
                 "--no-class-stats", "--out", str(out), "--no-progress"]) == 0
    stats = load_stats(out, feature_dim=2048)
    assert stats.extractor_id.startswith("inception-v3-fid:") and stats.extractor_id.endswith("/unbiased-logits")
    assert not stats.has_classes and stats.num_samples == 10
    capsys.readouterr()
    assert main(["stats", "--data", "fashion-mnist", "--data-dir", str(small), "--inception-weights", str(weights),
                 "--out", str(tmp_path / "x.json")]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["stats", "--data", "fashion-mnist", "--data-dir", str(small), "--inception-weights",
                 str(tmp_path / "none.pth"), "--out", str(tmp_path / "y.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.pth" in err
