"""The training loop: learns, logs, refuses to clobber runs, resumes exactly, stops on NaN."""

import json

import pytest
import torch

from condgan.config import resolve_config
from condgan.data.toy2d import ring_modes
from condgan.errors import RunDirError, TrainingDiverged
from condgan.methods.acgan import ACGAN
from condgan.sampling import load_run
from condgan.run.checkpoint import list_checkpoints, load_checkpoint
from condgan.training.loop import train

RING = ["data.name=ring", "data.num_samples=2000", "model.hidden=64", "model.z_dim=8", "train.batch_size=64",
        "train.log_every=10", "train.grid_every=1000", "train.ckpt_every=20", "train.keep_ckpts=5"]


def ring_cfg(*extra):
    return resolve_config(overrides=RING + list(extra))


def rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_run_directory_contents(tmp_path):
    run = tmp_path / "run"
    result = train(ring_cfg("train.steps=20"), run, progress=False)
    assert (run / "config.yaml").exists()
    assert [r["step"] for r in rows(run)] == [10, 20]
    assert {"D/loss", "G/loss", "D/loss_class", "images_per_sec"} <= set(rows(run)[-1])
    assert list((run / "events").iterdir()), "TensorBoard events written"
    assert (run / "grids" / "step-00000020.png").exists()
    assert result.checkpoint == list_checkpoints(run)[-1]
    assert result.images_per_sec > 0


def test_refuses_existing_run_without_resume_or_force(tmp_path):
    run = tmp_path / "run"
    train(ring_cfg("train.steps=20"), run, progress=False)
    before = (run / "config.yaml").read_text()
    with pytest.raises(RunDirError, match="already holds a run"):
        train(ring_cfg("train.steps=20", "train.seed=5"), run, progress=False)
    assert (run / "config.yaml").read_text() == before
    assert len(list_checkpoints(run)) == 1
    train(ring_cfg("train.steps=20", "train.seed=5"), run, force=True, progress=False)
    assert "seed: 5" in (run / "config.yaml").read_text()


class Crash(Exception):
    pass


def test_resume_after_crash_equals_uninterrupted_run(tmp_path):
    straight = tmp_path / "straight"
    train(ring_cfg("train.steps=60"), straight, progress=False)

    crashed = tmp_path / "crashed"

    def crash_at_50(method, step):
        if step == 50:
            raise Crash()
        return {}

    with pytest.raises(Crash):  # dies after the step-40 checkpoint, after logging step 50
        train(ring_cfg("train.steps=60"), crashed, progress=False, monitors=[(10, crash_at_50)])
    assert list_checkpoints(crashed)[-1].name == "ckpt-00000040.pt"
    train(None, crashed, resume=True, progress=False)

    drop = ("images_per_sec",)
    a = [{k: v for k, v in r.items() if k not in drop} for r in rows(straight)]
    b = [{k: v for k, v in r.items() if k not in drop} for r in rows(crashed)]
    assert a == b  # every logged loss is identical, and no row is duplicated
    wa = load_checkpoint(list_checkpoints(straight)[-1])["model"]
    wb = load_checkpoint(list_checkpoints(crashed)[-1])["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_may_extend_but_not_change_the_model(tmp_path):
    run = tmp_path / "run"
    train(ring_cfg("train.steps=20"), run, progress=False)
    train(ring_cfg("train.steps=40"), run, resume=True, progress=False)
    assert rows(run)[-1]["step"] == 40
    with pytest.raises(Exception, match="model.hidden: saved 64, given 32"):
        train(ring_cfg("train.steps=60", "model.hidden=32"), run, resume=True, progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    real_loss = ACGAN.loss

    def poisoned(self, phase, step):
        loss, stats = real_loss(self, phase, step)
        return (loss * float("nan"), stats) if step.step == 25 and phase.name == "G" else (loss, stats)

    monkeypatch.setattr(ACGAN, "loss", poisoned)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"step 25: G loss is nan.*ckpt-00000020.pt"):
        train(ring_cfg("train.steps=60"), run, progress=False)
    assert [p.name for p in list_checkpoints(run)] == ["ckpt-00000020.pt"]
    assert load_run(run).step == 20


def test_acgan_learns_the_ring(tmp_path):
    """After a short run, conditioned samples land near their own class's mode."""
    run = tmp_path / "run"
    means, std = ring_modes()

    def near_own_mode(loaded):
        g = torch.Generator().manual_seed(0)
        c = torch.arange(8).repeat(100)
        with torch.no_grad():
            x = loaded.method.generate(loaded.method.latent(800, generator=g), c)
        return float(((x - means[c]).norm(dim=1) < 0.1).float().mean())

    fast = ["optim.g_lr=1e-3", "optim.d_lr=1e-3"]
    train(ring_cfg("train.steps=1", "train.ckpt_every=1", *fast), run, progress=False)
    before = near_own_mode(load_run(run))
    train(ring_cfg("train.steps=600", "train.ckpt_every=600", *fast), run, resume=True, progress=False)
    after = near_own_mode(load_run(run))
    assert before < 0.05 and after > 0.5, (before, after)


def test_linear_lr_schedule_reaches_the_last_step(tmp_path):
    from condgan.training.loop import lr_factor

    cfg = resolve_config(overrides=["data.name=ring", "data.num_samples=500", "model.hidden=16", "train.steps=4",
                                    "train.batch_size=50", "train.grid_every=4", "train.ckpt_every=4",
                                    "optim.lr_schedule=linear", "optim.d_lr=1e-3", "optim.g_lr=2e-3"])
    assert [lr_factor(cfg, s) for s in range(4)] == [1.0, 0.75, 0.5, 0.25]
    assert lr_factor(cfg.replace(optim=cfg.optim.__class__()), 3) == 1.0  # constant is the default
    result = train(cfg, tmp_path / "run", progress=False)
    optimizers = load_checkpoint(result.checkpoint)["optimizers"]
    # The saved optimiser states carry the learning rates of the last step (3 of 4).
    assert optimizers["D"]["param_groups"][0]["lr"] == pytest.approx(1e-3 * 0.25)
    assert optimizers["G"]["param_groups"][0]["lr"] == pytest.approx(2e-3 * 0.25)


def test_resume_with_misaligned_intervals_equals_uninterrupted_run(tmp_path):
    """Checkpoints every 5 steps, rows every 7: the sums since the last row travel in the checkpoint."""
    extra = ("train.steps=30", "train.log_every=7", "train.ckpt_every=5")
    straight = tmp_path / "straight"
    train(ring_cfg(*extra), straight, progress=False)

    def crash_at_23(method, step):
        if step == 23:
            raise Crash()
        return {}

    crashed = tmp_path / "crashed"
    with pytest.raises(Crash):
        train(ring_cfg(*extra), crashed, progress=False, monitors=[(1, crash_at_23)])
    assert list_checkpoints(crashed)[-1].name == "ckpt-00000020.pt"  # 2 steps into the row of step 21..28
    train(None, crashed, resume=True, progress=False)
    drop = ("images_per_sec",)
    a = [{k: v for k, v in r.items() if k not in drop} for r in rows(straight)]
    b = [{k: v for k, v in r.items() if k not in drop} for r in rows(crashed)]
    assert [r["step"] for r in a] == [7, 14, 21, 28, 30] and a == b


def test_nan_gradient_under_finite_loss_stops_before_the_step(tmp_path, monkeypatch):
    real_loss = ACGAN.loss

    def poisoned(self, phase, step):
        loss, stats = real_loss(self, phase, step)
        if step.step == 25 and phase.name == "G":  # the loss stays finite; one weight's gradient does not
            weight = next(self.G.parameters())
            weight.register_hook(lambda g: torch.full_like(g, float("nan")))
        return loss, stats

    monkeypatch.setattr(ACGAN, "loss", poisoned)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"step 25: G gradient norm is nan under a finite loss .*"
                                               r"last good checkpoint: .*ckpt-00000020.pt"):
        train(ring_cfg("train.steps=60"), run, progress=False)
    assert [p.name for p in list_checkpoints(run)] == ["ckpt-00000020.pt"]
    monkeypatch.undo()
    train(None, run, resume=True, progress=False)  # continues from the good checkpoint
    assert all(torch.isfinite(v).all() for v in load_checkpoint(list_checkpoints(run)[-1])["model"].values())


def test_non_finite_buffer_is_refused_at_the_checkpoint(tmp_path):
    def poison_at_40(method, step):
        if step == 40:  # a buffer no gradient check sees (e.g. BatchNorm running statistics)
            method.register_buffer("probe", torch.tensor([1.0, float("inf")]))
        return {}

    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"step 40: non-finite values in model.probe \(1 of 2 values\); "
                                               r"checkpoint not written; training stopped, last good checkpoint: "
                                               r".*ckpt-00000020.pt"):
        train(ring_cfg("train.steps=60"), run, progress=False, monitors=[(10, poison_at_40)])
    assert [p.name for p in list_checkpoints(run)] == ["ckpt-00000020.pt"]
