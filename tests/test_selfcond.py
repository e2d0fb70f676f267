"""Self-Conditioned GAN: matching, clustering, label blindness, exact resume, bad input, learning on the ring."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from condgan import cli
from condgan.config import resolve_config
from condgan.data import LabelledData
from condgan.data.toy2d import ring_modes
from condgan.errors import ConfigError
from condgan.methods import build_method
from condgan.methods.selfcond import cluster_purity, kmeans, match_clusters
from condgan.sampling import load_run
from condgan.training import loop
from condgan.run.checkpoint import list_checkpoints, load_checkpoint
from condgan.training.loop import train

RING = ["method.name=selfcond", "data.name=ring", "data.num_samples=2000", "model.hidden=64", "model.z_dim=8",
        "method.num_clusters=8", "train.batch_size=64", "train.log_every=10", "train.grid_every=1000",
        "train.ckpt_every=20", "train.keep_ckpts=5"]


def ring_cfg(*extra):
    return resolve_config(overrides=RING + list(extra))


def rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def planted(n=600, k=6, dim=20, seed=0):
    """k well-separated Gaussian blobs in `dim` dimensions; returns (features, true cluster)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (k, dim))
    truth = rng.integers(0, k, n)
    return centres[truth] + rng.normal(0, 0.5, (n, dim)), truth


def test_hungarian_matching_recovers_a_known_permutation():
    rng = np.random.default_rng(0)
    k = 7
    old = rng.integers(0, k, 500)
    perm = rng.permutation(k)  # new label i is old label perm[i]
    new = np.argsort(perm)[old]
    flip = rng.random(500) < 0.1  # 10% of points moved to a random cluster
    new[flip] = rng.integers(0, k, flip.sum())
    assert np.array_equal(match_clusters(new, old, k), perm)
    assert np.array_equal(match_clusters(old, old, k), np.arange(k))


def test_kmeans_pp_then_reclustering_from_previous_partition_on_planted_clusters():
    feats, truth = planted()
    first = kmeans(feats, 6, seed=0).labels_
    assert cluster_purity(truth, first) == 1.0
    # Re-cluster in a "new feature space" (rotated, shifted) from the previous partition's centroids:
    # the partition survives and matching keeps every label where it was.
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(20, 20)))
    moved = feats @ q + 3.0
    again = kmeans(moved, 6, seed=1, init_labels=first).labels_
    assert np.array_equal(match_clusters(again, first, 6)[again], first)
    # A starved cluster (no member in the previous partition) is re-seeded, not left empty.
    starved = first.copy()
    starved[starved == 5] = 4
    assert len(np.unique(kmeans(feats, 6, seed=2, init_labels=starved).labels_)) == 6


def test_prepare_clusters_the_ring_by_d_features_and_samples_by_cluster_size():
    data = loop.load_training_data(ring_cfg())
    cfg = ring_cfg()
    torch.manual_seed(0)
    m = build_method(cfg, loop.data_spec(data))
    assert m.assignment.shape == (2000,) and bool((m.assignment < 0).all())
    stats = m.prepare(data.data.x(), data.y)
    assert stats["cluster/purity"] > 0.95 and stats["cluster/nmi"] > 0.9, stats
    assert int(m.cluster_sizes.sum()) == 2000
    m.cluster_sizes.copy_(torch.tensor([0, 300, 100, 0, 0, 0, 0, 0]))
    c = m.sample_classes(4000, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(c, minlength=8)
    assert counts[[0, 3, 4, 5, 6, 7]].sum() == 0
    assert 2.6 < counts[1] / counts[2] < 3.4


def test_never_reads_the_true_labels(tmp_path, monkeypatch):
    """Garbage labels give the same weights and partition (only the logged purity/NMI change)."""
    straight = tmp_path / "straight"
    train(ring_cfg("train.steps=30", "train.ckpt_every=30", "method.recluster_every=10"), straight, progress=False)
    real_load = loop.load_training_data

    def garbage_labels(cfg):
        loaded = real_load(cfg)
        data = loaded.data
        y = torch.randint(0, len(data.class_names), data.y.shape, generator=torch.Generator().manual_seed(5))
        return dataclasses.replace(loaded, data=LabelledData(data.stored, y, data.class_names, data.name))

    monkeypatch.setattr(loop, "load_training_data", garbage_labels)
    garbage = tmp_path / "garbage"
    train(ring_cfg("train.steps=30", "train.ckpt_every=30", "method.recluster_every=10"), garbage, progress=False)
    wa = load_checkpoint(list_checkpoints(straight)[-1])["model"]
    wb = load_checkpoint(list_checkpoints(garbage)[-1])["model"]
    assert set(wa) >= {"assignment", "cluster_sizes"}
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert rows(straight)[-1]["cluster/purity"] > 0.95 > rows(garbage)[-1]["cluster/purity"]


class Crash(Exception):
    pass


def test_resume_after_crash_equals_uninterrupted_run(tmp_path):
    """Re-clusterings at 15, 30, 45, 60 straddle the checkpoints at 20 and 40 and the crash at 50."""
    extra = ("train.steps=60", "method.recluster_every=15")
    straight = tmp_path / "straight"
    train(ring_cfg(*extra), straight, progress=False)

    def crash_at_50(method, step):
        if step == 50:
            raise Crash()
        return {}

    crashed = tmp_path / "crashed"
    with pytest.raises(Crash):
        train(ring_cfg(*extra), crashed, progress=False, monitors=[(10, crash_at_50)])
    assert list_checkpoints(crashed)[-1].name == "ckpt-00000040.pt"
    train(None, crashed, resume=True, progress=False)
    drop = ("images_per_sec",)
    a = [{k: v for k, v in r.items() if k not in drop} for r in rows(straight)]
    b = [{k: v for k, v in r.items() if k not in drop} for r in rows(crashed)]
    assert a == b and any("cluster/changed" in r for r in a)
    wa = load_checkpoint(list_checkpoints(straight)[-1])["model"]
    wb = load_checkpoint(list_checkpoints(crashed)[-1])["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_bad_cluster_counts_are_refused_with_one_line(tmp_path, capsys):
    with pytest.raises(ConfigError, match="method.num_clusters: expected >= 2, found 1"):
        ring_cfg("method.num_clusters=1")
    with pytest.raises(ConfigError, match="method.num_clusters: expected at most the 100 training samples, found 101"):
        train(ring_cfg("data.num_samples=100", "method.num_clusters=101", "train.batch_size=10"),
              tmp_path / "a", progress=False)
    with pytest.raises(ConfigError, match=r"method.cluster_fit_size: expected >= method.num_clusters \(8\), found 4"):
        train(ring_cfg("method.cluster_fit_size=4"), tmp_path / "b", progress=False)
    code = cli.main(["train", "--out", str(tmp_path / "c"), "--no-progress", "--set", "method.name=selfcond",
                     "--data", "ring", "--set", "data.num_samples=50", "--set", "method.num_clusters=51",
                     "--batch-size", "10"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "method.num_clusters" in err


def test_selfcond_covers_more_ring_modes_after_training(tmp_path):
    """No labels: generated clusters spread over the 8 modes (within 0.1 of a mode, ≥ 10 of 1000 samples)."""
    means, _ = ring_modes()

    def modes_covered(method):
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            x = method.generate(method.latent(1000, generator=g), method.sample_classes(1000, generator=g))
        dist = torch.cdist(x, means)
        near = dist.min(1).values < 0.1
        return int((torch.bincount(dist.argmin(1)[near], minlength=8) >= 10).sum())

    fast = ["optim.g_lr=1e-3", "optim.d_lr=1e-3", "method.g_source_loss=non_saturating", "method.recluster_every=100"]
    run = tmp_path / "run"
    train(ring_cfg("train.steps=1", "train.ckpt_every=1", *fast), run, progress=False)
    before = modes_covered(load_run(run).method)
    train(ring_cfg("train.steps=250", "train.ckpt_every=250", *fast), run, resume=True, progress=False)
    loaded = load_run(run)
    after = modes_covered(loaded.method)
    assert before <= 1 and after >= 6, (before, after)
    assert loaded.method.num_classes == 8 and int(loaded.method.cluster_sizes.sum()) == 2000
    assert [r["cluster/purity"] for r in rows(run) if "cluster/purity" in r][-1] > 0.95  # the step-200 re-clustering
    assert cli.main(["sample", str(run), "--n", "16", "--out", str(tmp_path / "s.npz"), "--device", "cpu"]) == 0
    with np.load(tmp_path / "s.npz") as f:  # cluster ids as labels, balanced over the k clusters
        assert f["points"].shape == (16, 2) and f["labels"].tolist() == list(range(8)) * 2


def test_the_figures_script_reads_every_reclustering_from_the_log(tmp_path):
    """benchmarks/lapgan_selfcond_figures.py --selfcond: one entry per clustering (the first, in
    `prepare`, is logged with the first row), each with purity and NMI against the true labels."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import lapgan_selfcond_figures

    run = tmp_path / "run"
    train(ring_cfg("train.steps=40", "train.ckpt_every=40", "method.recluster_every=20"), run, progress=False)
    found = lapgan_selfcond_figures.reclusterings(run)
    assert [r["step"] for r in found] == [10, 20, 40]
    assert all(0 < r["cluster/purity"] <= 1 and 0 <= r["cluster/nmi"] <= 1 for r in found)
    assert "cluster/changed" not in found[0] and all("cluster/changed" in r for r in found[1:])
