"""AC-GAN's losses are the paper's L_S and L_C, written out by hand from probabilities."""

import torch

from condgan.config import resolve_config
from condgan.methods import StepInputs, build_method
from condgan.nets import DataSpec


def _method(**overrides):
    cfg = resolve_config(overrides=[f"{k}={v}" for k, v in overrides.items()] + ["model.hidden=16", "model.z_dim=4"])
    torch.manual_seed(0)
    return build_method(cfg, DataSpec((2,), 3))


def _inputs(n=16):
    g = torch.Generator().manual_seed(1)
    return StepInputs(real_x=torch.randn(n, 2, generator=g), real_c=torch.randint(0, 3, (n,), generator=g), real_idx=torch.arange(n),
                      gen_z=torch.randn(n, 4, generator=g), gen_c=torch.randint(0, 3, (n,), generator=g), step=0)


def _log_probs(method, x, c):
    s, k = method.D(x)
    log_real, log_fake = torch.log(torch.sigmoid(s)), torch.log(1 - torch.sigmoid(s))
    log_class = torch.log(torch.softmax(k, 1)).gather(1, c[:, None]).squeeze(1)
    return log_real, log_fake, log_class


def test_d_loss_is_minus_ls_plus_lc():
    method, step = _method(), _inputs()
    loss, _ = method.loss(method.phase("D"), step)
    gen_x = method.G(step.gen_z, step.gen_c)
    lr_real, _, lc_real = _log_probs(method, step.real_x, step.real_c)
    _, lf_fake, lc_fake = _log_probs(method, gen_x, step.gen_c)
    L_S = lr_real.mean() + lf_fake.mean()
    L_C = lc_real.mean() + lc_fake.mean()
    torch.testing.assert_close(loss, -(L_S + L_C), rtol=1e-5, atol=1e-6)


def test_g_loss_minimax_is_ls_minus_lc_as_written():
    method, step = _method(), _inputs()
    loss, _ = method.loss(method.phase("G"), step)
    gen_x = step.cache["gen_x"]
    _, lf_fake, lc_fake = _log_probs(method, gen_x, step.gen_c)
    # G maximises L_C − L_S; the real-data part of L_S does not depend on G.
    torch.testing.assert_close(loss, lf_fake.mean() - lc_fake.mean(), rtol=1e-5, atol=1e-6)


def test_g_loss_non_saturating_option():
    method, step = _method(**{"method.g_source_loss": "non_saturating"}), _inputs()
    loss, _ = method.loss(method.phase("G"), step)
    lr_fake, _, lc_fake = _log_probs(method, step.cache["gen_x"], step.gen_c)
    torch.testing.assert_close(loss, -lr_fake.mean() - lc_fake.mean(), rtol=1e-5, atol=1e-6)


def test_one_generator_forward_per_step_and_d_phase_leaves_g_alone():
    method, step = _method(), _inputs()
    calls = []
    method.G.register_forward_hook(lambda *a: calls.append(1))
    d_loss, _ = method.loss(method.phase("D"), step)
    d_loss.backward()
    assert all(p.grad is None for p in method.G.parameters())
    g_loss, _ = method.loss(method.phase("G"), step)
    g_loss.backward()
    assert len(calls) == 1
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.G.parameters())


def test_class_weight_scales_class_term():
    step = _inputs()
    full_method, source_only_method = _method(), _method(**{"method.class_weight": 0.0})
    full, stats = full_method.loss(full_method.phase("D"), step)
    only_source, _ = source_only_method.loss(source_only_method.phase("D"), _inputs())
    torch.testing.assert_close(full - only_source, stats["D/loss_class"], rtol=1e-5, atol=1e-6)
