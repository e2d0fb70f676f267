"""Vanilla GAN: Goodfellow et al.'s value function written out from probabilities, no labels anywhere."""

import numpy as np
import pytest
import torch

from condgan.cli import main
from condgan.config import resolve_config
from condgan.methods import StepInputs, build_method
from condgan.nets import DataSpec
from condgan.samples import make_samples, write_samples
from condgan.sampling import generate

from ring_learning import mean_nearest_distance, near_mode_share, train_ring


def _method(*overrides):
    cfg = resolve_config(overrides=["method.name=gan", "model.hidden=16", "model.z_dim=4", *overrides])
    torch.manual_seed(0)
    return build_method(cfg, DataSpec((2,), 3))


def _inputs(n=16):
    g = torch.Generator().manual_seed(1)
    return StepInputs(real_x=torch.randn(n, 2, generator=g), real_c=torch.randint(0, 3, (n,), generator=g),
                      real_idx=torch.arange(n), gen_z=torch.randn(n, 4, generator=g),
                      gen_c=torch.zeros(n, dtype=torch.long), step=0)


def _D(method, x):
    s, k = method.D(x)
    assert k is None  # no class head
    return torch.sigmoid(s)


def test_d_loss_is_minus_value_function():
    method, step = _method(), _inputs()
    loss, _ = method.loss(method.phase("D"), step)
    gen_x = method.G(step.gen_z)
    V = torch.log(_D(method, step.real_x)).mean() + torch.log(1 - _D(method, gen_x)).mean()  # eq. 1
    torch.testing.assert_close(loss, -V, rtol=1e-5, atol=1e-6)


def test_g_loss_minimax_and_non_saturating():
    method, step = _method(), _inputs()
    loss, _ = method.loss(method.phase("G"), step)
    torch.testing.assert_close(loss, torch.log(1 - _D(method, step.cache["gen_x"])).mean(), rtol=1e-5, atol=1e-6)
    method, step = _method("method.g_source_loss=non_saturating"), _inputs()
    loss, _ = method.loss(method.phase("G"), step)
    torch.testing.assert_close(loss, -torch.log(_D(method, step.cache["gen_x"])).mean(), rtol=1e-5, atol=1e-6)


def test_unconditional_nets_and_samples_without_labels(tmp_path):
    method = _method()
    assert not method.conditional and method.G.num_classes == 0 and method.D.classes is None
    assert method.G.net[0].in_features == 4  # z only, no one-hot
    z = torch.randn(5, 4)
    method.eval()
    torch.testing.assert_close(method.generate(z, torch.zeros(5, dtype=torch.long)), method.generate(z, None))
    x, labels = generate(method, 7)
    assert labels is None and x.shape == (7, 2)
    with np.load(write_samples(tmp_path / "s.npz", make_samples(x.numpy(), labels, "none"))) as f:
        assert sorted(f.files) == ["label_kind", "points"] and str(f["label_kind"]) == "none"


def test_learns_the_ring(tmp_path):
    # An unconditional GAN hops between the ring's modes early on (the Self-Cond GAN paper's point);
    # Adam β = (0, 0.9) keeps this short run steady: samples leave the origin for the modes.
    before, after = train_ring(tmp_path, "method.name=gan", "method.g_source_loss=non_saturating",
                               "optim.beta1=0.0", "optim.beta2=0.9")
    assert near_mode_share(after) > near_mode_share(before) + 0.1
    assert mean_nearest_distance(after) < 0.6 * mean_nearest_distance(before)


def test_cli_method_flag(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--method", "gan", "--data", "ring", "--out", str(run), "--dry-run"]) == 0
    assert "name: gan" in capsys.readouterr().out
    assert main(["train", "--method", "nope", "--data", "ring", "--out", str(run), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("condgan: error: unknown method 'nope'") and "gan" in err and len(err.splitlines()) == 1
    assert main(["train", "--method", "gan", "--data", "ring", "--out", str(tmp_path / "split"), "--steps", "1",
                 "--set", "method.class_splits=2", "--set", "data.num_samples=100", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("condgan: error: config field method.class_splits: needs a conditional method") and \
        len(err.splitlines()) == 1


@pytest.mark.parametrize("preset", ["gan-ring", "cgan-ring", "cgan-fashion-mnist", "acgan-cifar10-paper", "acgan-imagenet-paper"])
def test_presets_resolve(preset, tmp_path, capsys):
    assert main(["train", "--config", preset, "--out", str(tmp_path / "r"), "--dry-run"]) == 0
