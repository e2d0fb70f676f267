"""cGAN: Mirza & Osindero's value function from probabilities, the two ways D reads c, and learning."""

import pytest
import torch

from condgan.config import resolve_config
from condgan.methods import StepInputs, build_method
from condgan.nets import DataSpec
from condgan.nets.conditional import ConcatDiscriminator, ProjectionDiscriminator

from ring_learning import right_mode_share, train_ring


def _method(*overrides, spec=DataSpec((2,), 3)):
    cfg = resolve_config(overrides=["method.name=cgan", "model.hidden=16", "model.z_dim=4", "model.g_channels=8",
                                    "model.d_channels=8", *overrides])
    torch.manual_seed(0)
    return build_method(cfg, spec)


def _inputs(n=16, shape=(2,), k=3):
    g = torch.Generator().manual_seed(1)
    return StepInputs(real_x=torch.randn(n, *shape, generator=g), real_c=torch.randint(0, k, (n,), generator=g),
                      real_idx=torch.arange(n), gen_z=torch.randn(n, 4, generator=g),
                      gen_c=torch.randint(0, k, (n,), generator=g), step=0)


@pytest.mark.parametrize("variant", ["concat", "projection"])
def test_losses_are_the_conditional_value_function(variant):
    method, step = _method(f"method.cgan_variant={variant}"), _inputs()
    d_loss, _ = method.loss(method.phase("D"), step)
    gen_x = method.G(step.gen_z, step.gen_c)
    D_real = torch.sigmoid(method.D(step.real_x, step.real_c))  # D(x|y)
    D_fake = torch.sigmoid(method.D(gen_x, step.gen_c))  # D(G(z|y)|y)
    V = torch.log(D_real).mean() + torch.log(1 - D_fake).mean()  # paper eq. 2
    torch.testing.assert_close(d_loss, -V, rtol=1e-5, atol=1e-6)
    g_loss, _ = method.loss(method.phase("G"), step)
    torch.testing.assert_close(g_loss, torch.log(1 - D_fake).mean(), rtol=1e-5, atol=1e-6)
    method, step = _method(f"method.cgan_variant={variant}", "method.g_source_loss=non_saturating"), _inputs()
    g_loss, _ = method.loss(method.phase("G"), step)
    D_fake = torch.sigmoid(method.D(step.cache["gen_x"], step.gen_c))
    torch.testing.assert_close(g_loss, -torch.log(D_fake).mean(), rtol=1e-5, atol=1e-6)


def test_concat_gives_image_d_one_hot_class_maps():
    method = _method(spec=DataSpec((1, 28, 28), 10))
    D = method.D
    assert isinstance(D, ConcatDiscriminator)
    first = D.body.body[0]
    assert first.in_channels == 1 + 10  # image channel + one map per class
    assert D.body.classes is None  # no auxiliary classifier: c is an input, not a target
    x, c = torch.randn(3, 1, 28, 28), torch.tensor([0, 4, 9])
    maps = torch.zeros(3, 10, 28, 28)
    maps[torch.arange(3), c] = 1.0
    D.eval()
    torch.testing.assert_close(D(x, c), D.body(torch.cat([x, maps], 1))[0])
    assert method.G.fc.in_features == 4 + 10  # G: z ++ one-hot


def test_projection_formula():
    method = _method("method.cgan_variant=projection", spec=DataSpec((1, 28, 28), 10))
    D = method.D
    assert isinstance(D, ProjectionDiscriminator)
    assert D.embed.weight.shape == (10, D.body.feature_dim) and D.body.classes is None
    D.eval()
    x, c = torch.randn(4, 1, 28, 28), torch.tensor([1, 1, 5, 9])
    phi = D.body.features(x)
    psi = phi @ D.body.source.weight[0] + D.body.source.bias[0]  # ψ(φ(x)), linear
    by_hand = psi + (D.embed.weight[c] * phi).sum(1)  # + yᵀ V φ(x), y one-hot
    torch.testing.assert_close(D(x, c), by_hand, rtol=1e-5, atol=1e-5)
    # only the inner product depends on c: D(x, a) − D(x, b) = ⟨V_a − V_b, φ(x)⟩
    a, b = torch.full((4,), 2), torch.full((4,), 7)
    torch.testing.assert_close(D(x, a) - D(x, b), phi @ (D.embed.weight[2] - D.embed.weight[7]), rtol=1e-4, atol=1e-4)


def test_image_step_shapes():
    method, step = _method(spec=DataSpec((1, 28, 28), 10)), _inputs(8, (1, 28, 28), 10)
    for phase in method.phases():
        loss, _ = method.loss(phase, step)
        assert loss.shape == () and torch.isfinite(loss)
    assert step.cache["gen_x"].shape == (8, 1, 28, 28)


@pytest.mark.parametrize("variant", ["concat", "projection"])
def test_learns_class_conditional_placement_on_the_ring(tmp_path, variant):
    before, after = train_ring(tmp_path, "method.name=cgan", f"method.cgan_variant={variant}",
                               "method.g_source_loss=non_saturating", steps=250)
    # Samples of class k land on mode k (not just on some mode).
    assert right_mode_share(before) < 0.05
    assert right_mode_share(after) > 0.6
