"""Distributed training on 2 gloo processes (CPU): same trajectory as one process, exact resume, gather."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from condgan.config import resolve_config
from condgan.data.base import to_uint8_nhwc
from condgan.errors import CondganError, ConfigError
from condgan.methods import build_method
from condgan.nets import DataSpec
from condgan.sampling import generate
from condgan import dist as distributed
from condgan.run.checkpoint import load_checkpoint
from condgan.data.sampler import EpochSampler
from condgan.training.loop import train, train_spawned

# MLP nets on the 2D ring: no BatchNorm and no dropout, so the only difference between one process
# with batch 64 and two with 32 each is the summation order of the gradient means.
RING = ["data.name=ring", "data.num_samples=2000", "model.hidden=64", "model.z_dim=8", "train.batch_size=64",
        "train.log_every=1", "train.grid_every=1000", "train.ckpt_every=15", "train.keep_ckpts=5", "train.threads=1"]
TOL = 1e-4  # relative, per logged statistic and per weight, after 30 Adam steps


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints" / f"ckpt-{step:08d}.pt")["model"]


def _tiny_method():
    torch.manual_seed(0)
    spec = DataSpec((1, 28, 28), 10)
    return build_method(resolve_config(overrides=["model.g_channels=8", "model.d_channels=8"]), spec).eval()


def _gather_worker(out: Path) -> None:
    info = distributed.init_from_env("cpu")
    try:
        x = torch.arange(3 + info.rank, dtype=torch.float32).unsqueeze(1) + 10 * info.rank  # sizes 3 and 4
        torch.save(distributed.gather(x), out / f"rank{info.rank}.pt")
        np.save(out / f"samples{info.rank}.npy", generate(_tiny_method(), 25, seed=4, batch_size=10, uint8=True)[0])
        if info.rank == 1:
            raise ConfigError("config field train.batch_size: rank 1 refuses")
    finally:
        distributed.shutdown()


def test_two_gloo_ranks_match_one_process_and_resume(tmp_path):
    single = tmp_path / "single"
    train(resolve_config(overrides=RING + ["train.steps=30"]), single, progress=False)

    ddp = tmp_path / "ddp"
    train_spawned(2, resolve_config(overrides=RING + ["train.steps=15"]), ddp, progress=False)
    # Resume the distributed run from its step-15 checkpoint, with more steps.
    train_spawned(2, resolve_config(overrides=RING + ["train.steps=30"]), ddp, resume=True, progress=False)

    ours, ref = rows(ddp), rows(single)
    assert [r["step"] for r in ours] == list(range(1, 31)), "rank 0 alone logs, once per step"
    for a, b in zip(ours, ref):
        for key in ("D/loss", "G/loss", "D/loss_class", "D/acc_real_class"):
            assert a[key] == pytest.approx(b[key], rel=TOL, abs=1e-6), (a["step"], key)
    for name, w in weights(single, 30).items():
        torch.testing.assert_close(weights(ddp, 30)[name], w, rtol=TOL, atol=1e-6)
    # The trajectories differ at all (the comparison can fail): training moved the weights.
    assert not torch.allclose(weights(ddp, 15)["G.net.0.weight"], weights(ddp, 30)["G.net.0.weight"])


def test_gather_concatenates_uneven_shards_in_rank_order_and_user_errors_surface(tmp_path):
    with pytest.raises(CondganError, match="^config field train.batch_size: rank 1 refuses$"):
        distributed.spawn(2, _gather_worker, tmp_path)
    expected = torch.tensor([0.0, 1, 2, 10, 11, 12, 13]).unsqueeze(1)
    whole = generate(_tiny_method(), 25, seed=4, batch_size=10, uint8=True)[0]  # one process, all 3 batches
    for rank in (0, 1):
        torch.testing.assert_close(torch.load(tmp_path / f"rank{rank}.pt"), expected)
        np.testing.assert_array_equal(np.load(tmp_path / f"samples{rank}.npy"), whole)


def test_sampler_slices_the_global_batch():
    with pytest.raises(ValueError, match="not divisible by the 2 ranks"):
        EpochSampler(100, 9, seed=3, rank=0, world_size=2)
    whole = EpochSampler(100, 8, seed=3)
    parts = [EpochSampler(100, 8, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for step in (0, 11, 12, 30):  # 12 batches per epoch: crosses an epoch boundary
        assert torch.equal(torch.cat([p.indices(step) for p in parts]), whole.indices(step))


def test_shard_is_balanced_and_covers_everything():
    ranges = [distributed.shard(10, distributed.DistInfo(r, 3)) for r in range(3)]
    assert [list(r) for r in ranges] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_uint8_generation_streams_the_same_samples_as_float():
    method = _tiny_method()
    x, labels = generate(method, 25, seed=4, batch_size=10)
    u, labels_u = generate(method, 25, seed=4, batch_size=10, uint8=True)
    assert u.dtype == np.uint8 and u.shape == (25, 28, 28, 1)
    np.testing.assert_array_equal(u, to_uint8_nhwc(x))
    assert torch.equal(labels, labels_u)


def _single_and_ddp(tmp_path: Path, overrides: list[str]) -> tuple[Path, Path]:
    cfg = resolve_config(overrides=RING + overrides + ["train.steps=20", "train.ckpt_every=10"])
    train(cfg, tmp_path / "single", progress=False)
    train_spawned(2, cfg, tmp_path / "ddp", progress=False)
    return tmp_path / "single", tmp_path / "ddp"


def test_self_conditioned_gan_reclusters_under_ddp_as_in_one_process(tmp_path):
    # Re-clustering at steps 10 and 20 runs on every rank from identical D weights; the cluster
    # centres (buffers) and the weights must come out as in one process.
    single, ddp = _single_and_ddp(tmp_path, ["method.name=selfcond", "method.num_clusters=8",
                                             "method.recluster_every=10", "method.cluster_fit_size=500"])
    ours, ref = weights(ddp, 20), weights(single, 20)
    assert ours.keys() == ref.keys()
    for name, w in ref.items():
        torch.testing.assert_close(ours[name], w, rtol=TOL, atol=1e-6, msg=name)


def test_class_splits_train_every_sub_model_under_ddp(tmp_path):
    # A rank whose slice lacks a split's classes leaves that sub-model without gradients there
    # (it takes part in the all-reduce with zeros). Each rank averages over its own routed samples, so
    # the result follows one process only approximately (ranks, not samples, weigh equally).
    # 4 splits of 2 classes, 8 samples per rank: most steps some rank lacks some split.
    single, ddp = _single_and_ddp(tmp_path, ["method.name=acgan", "method.class_splits=4", "train.batch_size=16"])
    for i in range(4):
        name = f"subs.{i}.G.net.0.weight"
        assert not torch.allclose(weights(ddp, 10)[name], weights(ddp, 20)[name]), f"sub-model {i} did not train"
        torch.testing.assert_close(weights(ddp, 20)[name], weights(single, 20)[name], rtol=0.05, atol=0.01)


# The recipe's techniques that act on 2D points (docs/quality.md), all at once.
RECIPE = ["recipe.spectral_norm=g_and_d", "recipe.ema_decay=0.8", "recipe.ema_start=4", "recipe.r1_gamma=0.5",
          "recipe.r1_interval=3", "recipe.n_dis=2", "method.d_source_loss=hinge", "method.g_source_loss=hinge",
          "optim.g_beta1=0.0", "optim.d_beta1=0.0", "optim.d_lr=4e-4"]


def test_recipe_under_two_gloo_ranks_matches_one_process_and_resumes(tmp_path):
    """SN (power iteration on identical weights), lazy R1 (its double backward inside DDP's forward),
    n_dis and G-EMA give one process's weights and average, also across a distributed resume."""
    single = tmp_path / "single"
    train(resolve_config(overrides=RING + RECIPE + ["train.steps=20"]), single, progress=False)
    ddp = tmp_path / "ddp"
    train_spawned(2, resolve_config(overrides=RING + RECIPE + ["train.steps=10", "train.ckpt_every=10"]), ddp,
                  progress=False)
    train_spawned(2, resolve_config(overrides=RING + RECIPE + ["train.steps=20", "train.ckpt_every=10"]), ddp,
                  resume=True, progress=False)
    ref, ours = (load_checkpoint(run / "checkpoints" / "ckpt-00000020.pt") for run in (single, ddp))
    # 10× TOL: with beta1 = 0 Adam divides each gradient by its own running magnitude, which
    # magnifies the summation-order differences of small gradients (measured: 1.8e-4 at most).
    for key in ("model", "ema"):
        assert ours[key].keys() == ref[key].keys()
        for name, w in ref[key].items():
            torch.testing.assert_close(ours[key][name], w, rtol=10 * TOL, atol=1e-5)
    assert [r["D/r1"] for r in rows(ddp) if "D/r1" in r] == pytest.approx(
        [r["D/r1"] for r in rows(single) if "D/r1" in r], rel=10 * TOL)
    # the weights moved after the resume (the comparison can fail)
    name = "G.net.0.parametrizations.weight.original"  # spectrally normalised
    assert not torch.allclose(load_checkpoint(ddp / "checkpoints" / "ckpt-00000010.pt")["ema"][name], ours["ema"][name])
