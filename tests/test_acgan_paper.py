"""The AC-GAN paper's appendix networks: layer layout, parameter counts, resolutions, refusals."""

import pytest
import torch
from torch import nn

from condgan.config import PRESET_DIR
from condgan.config import resolve_config
from condgan.errors import ConfigError
from condgan.methods import StepInputs, build_method
from condgan.nets import DataSpec, build_pair


def _pair(arch, resolution, num_classes=10, dropout=0.5):
    cfg = resolve_config(overrides=[f"model.arch={arch}", f"model.dropout={dropout}"])
    torch.manual_seed(0)
    return build_pair(cfg.model, DataSpec((3, resolution, resolution), num_classes), num_classes)


def _layers(module, kind):
    return [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0]) for m in module.modules() if isinstance(m, kind)]


def _count(module):
    return sum(p.numel() for p in module.parameters())


# D of both tables: 3×3 convolutions, strides 2,1,2,1,2,1, maps 16..512.
D_LAYOUT = [(3, 16, 3, 2), (16, 32, 3, 1), (32, 64, 3, 2), (64, 128, 3, 1), (128, 256, 3, 2), (256, 512, 3, 1)]


def _d_params(feature_dim, outputs=11):
    convs = 3 * 16 * 9 + 16  # first conv has a bias and no BN
    convs += sum(i * o * 9 + 2 * o for i, o, _, _ in D_LAYOUT[1:])  # no bias, BN γ and β
    return convs + feature_dim * outputs + outputs  # linear: 1 source + 10 classes ("11")


def test_cifar_layout_and_parameter_counts():
    G, D = _pair("acgan_cifar", 32)
    assert G.fc.in_features == 110 and G.fc.out_features == 384 * 4 * 4  # z(100) ++ one-hot(10) → 384 maps, 4×4
    assert _layers(G, nn.ConvTranspose2d) == [(384, 192, 5, 2), (192, 96, 5, 2), (96, 3, 5, 2)]
    assert [m.num_features for m in G.modules() if isinstance(m, nn.BatchNorm2d)] == [192, 96]
    assert _layers(D, nn.Conv2d) == D_LAYOUT
    assert [m.num_features for m in D.modules() if isinstance(m, nn.BatchNorm2d)] == [32, 64, 128, 256, 512]
    assert [m.p for m in D.modules() if isinstance(m, nn.Dropout)] == [0.5] * 6
    assert D.feature_dim == 512 * 4 * 4
    g_params = (110 * 6144 + 6144) + (384 * 192 * 25 + 2 * 192) + (192 * 96 * 25 + 2 * 96) + (96 * 3 * 25 + 3)
    assert _count(G) == g_params == 2_993_763
    assert _count(D) == _d_params(8192) == 1_663_883


def test_imagenet_layout_and_parameter_counts():
    G, D = _pair("acgan_imagenet", 128)
    assert G.fc.out_features == 768 * 8 * 8
    assert _layers(G, nn.ConvTranspose2d) == [(768, 384, 5, 2), (384, 256, 5, 2), (256, 192, 5, 2), (192, 3, 5, 2)]
    assert _layers(D, nn.Conv2d) == D_LAYOUT and D.feature_dim == 512 * 16 * 16
    g_params = (110 * 49152 + 49152) + (768 * 384 * 25 + 2 * 384) + (384 * 256 * 25 + 2 * 256) \
        + (256 * 192 * 25 + 2 * 192) + (192 * 3 * 25 + 3)
    assert _count(G) == g_params == 16_531_139
    assert _count(D) == _d_params(131072) == 3_015_563


def test_output_shapes_and_init():
    G, D = _pair("acgan_cifar", 32)
    z, c = torch.randn(2, 100), torch.tensor([3, 7])
    x = G(z, c)
    assert x.shape == (2, 3, 32, 32) and x.abs().max() <= 1
    G.eval()
    torch.testing.assert_close(G(z, torch.eye(10)[c]), G(z, c))  # class vectors (interpolation) as one-hots
    s, k = D(x)
    assert s.shape == (2,) and k.shape == (2, 10)
    conv = D.body[0]
    assert conv.bias.abs().max() == 0 and abs(conv.weight.std().item() - 0.02) < 0.005  # N(0, 0.02), bias 0
    G, D = _pair("acgan_imagenet", 128, num_classes=0, dropout=0.0)
    x = G(torch.randn(1, 100))
    assert x.shape == (1, 3, 128, 128)
    s, k = D(x)
    assert s.shape == (1,) and k is None


def test_acgan_step_with_paper_nets():
    cfg = resolve_config(overrides=["model.arch=acgan_cifar", "model.dropout=0.5"])
    method = build_method(cfg, DataSpec((3, 32, 32), 10))
    step = StepInputs(real_x=torch.rand(4, 3, 32, 32) * 2 - 1, real_c=torch.tensor([0, 1, 2, 3]),
                      real_idx=torch.arange(4), gen_z=torch.randn(4, 100), gen_c=torch.tensor([4, 5, 6, 7]), step=0)
    for phase in method.phases():
        loss, _ = method.loss(phase, step)
        assert torch.isfinite(loss)


@pytest.mark.parametrize("arch,shape,message", [
    ("acgan_imagenet", (1, 28, 28), "model.arch acgan_imagenet needs 128×128 images, found 28×28"),
    ("acgan_cifar", (3, 64, 64), "model.arch acgan_cifar needs 32×32 images, found 64×64"),
    ("acgan_cifar", (2,), "cannot model 2D points"),
])
def test_wrong_resolution_refused(arch, shape, message):
    cfg = resolve_config(overrides=[f"model.arch={arch}"])
    with pytest.raises(ConfigError, match=message):
        build_pair(cfg.model, DataSpec(shape, 10), 10)


def test_paper_presets():
    cfg = resolve_config([PRESET_DIR / "acgan-cifar10-paper.yaml"])
    assert (cfg.model.arch, cfg.model.dropout, cfg.optim.g_lr, cfg.optim.beta1, cfg.train.batch_size,
            cfg.train.steps) == ("acgan_cifar", 0.5, 2e-4, 0.5, 100, 50000)
    cfg = resolve_config([PRESET_DIR / "acgan-imagenet-paper.yaml"])
    # One of the paper's 100 models; the 100 are `condgan splits init --splits 100` (tests/test_splits.py).
    assert (cfg.model.arch, cfg.method.class_splits, cfg.train.batch_size, cfg.data.resolution) == \
        ("acgan_imagenet", 1, 100, 128)


@pytest.mark.parametrize("overrides", [["method.name=gan"], ["method.name=cgan", "method.cgan_variant=concat"],
                                       ["method.name=cgan", "method.cgan_variant=projection"]])
def test_paper_nets_serve_gan_and_cgan(overrides):
    cfg = resolve_config(overrides=["model.arch=acgan_cifar", *overrides])
    method = build_method(cfg, DataSpec((3, 32, 32), 10))
    step = StepInputs(real_x=torch.rand(2, 3, 32, 32) * 2 - 1, real_c=torch.tensor([0, 1]), real_idx=torch.arange(2),
                      gen_z=torch.randn(2, 100), gen_c=torch.tensor([2, 3]), step=0)
    for phase in method.phases():
        loss, _ = method.loss(phase, step)
        assert torch.isfinite(loss)
    assert step.cache["gen_x"].shape == (2, 3, 32, 32)
