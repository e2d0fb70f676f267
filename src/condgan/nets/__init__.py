"""Network architectures, chosen by `model.arch` and the data's shape."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from condgan.config import ModelConfig
from condgan.errors import ConfigError
from condgan.nets.acgan_paper import PAPER_G, PaperDiscriminator, PaperGenerator, paper_resolution
from condgan.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from condgan.nets.mlp import MaxoutDiscriminator, MLPDiscriminator, MLPGenerator, SelfCondGenerator


@dataclass(frozen=True)
class DataSpec:
    """What a network needs to know about the data: per-sample shape and number of classes."""

    sample_shape: tuple[int, ...]  # (C, H, W) for images, (2,) for points
    num_classes: int
    num_samples: int = 0  # training-set size, for methods with per-sample state (Self-Cond GAN); 0: unknown

    @property
    def is_image(self) -> bool:
        return len(self.sample_shape) == 3


MLP_ARCHS = ("mlp", "mlp_selfcond")  # nets for 2D points


def resolve_arch(model: ModelConfig, spec: DataSpec) -> str:
    arch = model.arch
    if arch == "auto":
        arch = "dcgan" if spec.is_image else "mlp"
    if (arch in MLP_ARCHS) == spec.is_image:
        kind = "images" if spec.is_image else "2D points"
        raise ConfigError(f"config field model.arch: {arch!r} cannot model {kind} of shape {spec.sample_shape}")
    return arch


def build_pair(model: ModelConfig, spec: DataSpec, num_classes: int) -> tuple[nn.Module, nn.Module]:
    """(G, D) for the data; `num_classes` = 0 builds an unconditional pair."""
    arch = resolve_arch(model, spec)
    if arch == "mlp":
        (dim,) = spec.sample_shape
        return (
            MLPGenerator(model.z_dim, num_classes, dim, model.hidden),
            MLPDiscriminator(num_classes, dim, model.hidden, dropout=model.dropout),
        )
    if arch == "mlp_selfcond":  # the Self-Conditioned GAN code's 2D nets, at its sizes
        (dim,) = spec.sample_shape
        return SelfCondGenerator(model.z_dim, num_classes, dim), MaxoutDiscriminator(num_classes, dim)
    channels, height, width = spec.sample_shape
    if arch in PAPER_G:  # the AC-GAN paper's appendix nets: fixed widths, one resolution each
        paper_resolution(arch, height, width)
        return (PaperGenerator(arch, model.z_dim, num_classes, channels),
                PaperDiscriminator(arch, num_classes, channels, model.dropout))
    if height != width:
        raise ConfigError(f"model.arch dcgan: expected square images, found {height}x{width}")
    return (
        DCGANGenerator(model.z_dim, num_classes, channels, height, model.g_channels),
        DCGANDiscriminator(num_classes, channels, height, model.d_channels, model.dropout),
    )
