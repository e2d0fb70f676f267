"""Phases carry what they optimise (role, level, sub-model), and every method's GAN source term is
the one pair of functions in condgan.methods.gan."""

import dataclasses

import pytest
import torch

import condgan.methods.gan as gan
import condgan.methods.lapgan as lapgan
import condgan.methods.selfcond as selfcond
from condgan.config import resolve_config
from condgan.methods import StepInputs, build_method
from condgan.nets import DataSpec

SMALL_IMAGES = ["model.g_channels=4", "model.d_channels=4", "model.hidden=32", "model.z_dim=8", "model.dropout=0"]
SMALL_POINTS = ["model.hidden=16", "model.z_dim=4", "model.dropout=0"]


def _method(spec, *overrides):
    torch.manual_seed(0)
    return build_method(resolve_config(overrides=list(overrides)), spec).eval()


def _step(method, spec, n=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *spec.sample_shape, generator=g) * 2 - 1
    c = torch.arange(n) % max(spec.num_classes, 1)
    return StepInputs(x, c, torch.arange(n), method.latent(n, generator=g), c.flip(0), step=0)


def _spy(monkeypatch, module, name):
    """Replace module.name by a wrapper that records what the real function returned."""
    calls = []
    real = getattr(module, name)

    def wrapper(*args):
        out = real(*args)
        calls.append(out)
        return out

    monkeypatch.setattr(module, name, wrapper)
    return calls


@pytest.mark.parametrize("module, spec, overrides", [
    (lapgan, DataSpec((1, 28, 28), 10), ["method.name=lapgan", *SMALL_IMAGES]),
    (lapgan, DataSpec((1, 28, 28), 10), ["method.name=cclapgan", *SMALL_IMAGES]),
    (selfcond, DataSpec((2,), 3, 12), ["method.name=selfcond", "method.num_clusters=3", *SMALL_POINTS]),
])
@pytest.mark.parametrize("kind", ["minimax", "non_saturating"])
def test_source_losses_are_the_shared_functions(monkeypatch, module, spec, overrides, kind):
    method = _method(spec, *overrides, f"method.g_source_loss={kind}")
    if module is selfcond:
        method.assignment.copy_(torch.arange(12) % 3)
    assert module.d_source_loss is gan.d_source_loss and module.g_source_loss is gan.g_source_loss
    d_calls, g_calls = _spy(monkeypatch, module, "d_source_loss"), _spy(monkeypatch, module, "g_source_loss")
    step = _step(method, spec)
    for phase in method.phases():
        calls = d_calls if phase.role == "D" else g_calls
        before = len(calls)
        loss, _ = method.loss(phase, step)
        assert len(calls) == before + 1, f"phase {phase.name} did not use the shared {phase.role} source loss"
        assert torch.equal(loss, calls[-1])


def _renamed(phase):
    inner = _renamed(phase.inner) if phase.inner is not None else None
    return dataclasses.replace(phase, name=f"renamed-{phase.name}", inner=inner)


@pytest.mark.parametrize("spec, overrides", [
    (DataSpec((1, 28, 28), 10), ["method.name=lapgan", *SMALL_IMAGES]),
    (DataSpec((1, 28, 28), 10), ["method.name=cclapgan", "method.class_splits=2", *SMALL_IMAGES]),
    (DataSpec((2,), 6), ["method.name=acgan", "method.class_splits=3", *SMALL_POINTS]),
    (DataSpec((2,), 6), ["method.name=cgan", "method.class_splits=2", *SMALL_POINTS]),
])
def test_loss_dispatches_on_phase_structure_not_its_name(spec, overrides):
    method = _method(spec, *overrides)
    step = _step(method, spec)
    for phase in method.phases():
        loss, _ = method.loss(phase, step)
        assert loss.shape == () and torch.isfinite(loss)
        torch.testing.assert_close(method.loss(_renamed(phase), step)[0], loss, rtol=0, atol=0)
        # the loss's gradient reaches the phase's own module
        method.zero_grad(set_to_none=True)
        method.loss(phase, step)[0].backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in phase.module.parameters()), phase.name


def test_lapgan_level_comes_from_the_phase():
    spec = DataSpec((1, 28, 28), 10)
    method = _method(spec, "method.name=lapgan", *SMALL_IMAGES)
    step = _step(method, spec)
    d0, d2 = method.phase("D0"), method.phase("D2")
    assert (d0.role, d0.level, d2.level) == ("D", 0, 2)
    # a phase named "D0" that holds level 2 trains level 2
    swapped = dataclasses.replace(d2, name="D0")
    torch.testing.assert_close(method.loss(swapped, step)[0], method.loss(d2, step)[0], rtol=0, atol=0)


def test_class_split_phases_hold_their_sub_model_and_inner_phase():
    spec = DataSpec((2,), 6)
    method = _method(spec, "method.name=acgan", "method.class_splits=3", *SMALL_POINTS)
    names = [p.name for p in method.phases()]
    assert names == ["D.s0", "G.s0", "D.s1", "G.s1", "D.s2", "G.s2"]  # checkpoint keys unchanged
    for p in method.phases():
        assert p.inner is not None and p.inner.name == p.role and p.module is p.inner.module
        assert p.module is getattr(method.subs[p.split], p.role)


def test_unknown_phase_name_lists_the_phases():
    method = _method(DataSpec((2,), 6), "method.name=gan", *SMALL_POINTS)
    with pytest.raises(KeyError, match="no phase 'D0'; phases: D, G"):
        method.phase("D0")
