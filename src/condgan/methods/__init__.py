"""Training objectives, selected by `method.name`."""

from __future__ import annotations

from typing import Callable

from condgan.config import Config, RecipeConfig
from condgan.errors import ConfigError
from condgan.methods.acgan import ACGAN
from condgan.methods.adcgan import ADCGAN
from condgan.methods.base import Method, Phase, StepInputs, every_n_dis
from condgan.methods.cgan import CGAN
from condgan.methods.class_splits import ClassSplitConfig, build_class_splits
from condgan.methods.diffaugment import parse_policy
from condgan.methods.gan import GAN
from condgan.methods.lapgan import LAPGAN
from condgan.methods.reacgan import ReACGAN
from condgan.methods.recipe import DiscriminatorTerms, GeneratorTerms, apply_spectral_norm
from condgan.methods.selfcond import SelfCondGAN
from condgan.methods.tacgan import TACGAN
from condgan.nets import DataSpec, build_pair
from condgan.nets.conditional import build_cgan_pair
from condgan.registry import Registry

MethodFactory = Callable[[Config, DataSpec], Method]
METHODS: Registry[MethodFactory] = Registry("method")


@METHODS.register("acgan")
def _acgan(cfg: Config, spec: DataSpec) -> Method:
    G, D = build_pair(cfg.model, spec, spec.num_classes)
    return ACGAN(G, D, cfg, spec.num_classes)


@METHODS.register("lapgan")
def _lapgan(cfg: Config, spec: DataSpec) -> Method:
    return LAPGAN(cfg, spec, class_conditional=False)


@METHODS.register("cclapgan")
def _cclapgan(cfg: Config, spec: DataSpec) -> Method:
    return LAPGAN(cfg, spec, class_conditional=True)


@METHODS.register("selfcond")
def _selfcond(cfg: Config, spec: DataSpec) -> Method:
    G, D = build_pair(cfg.model, spec, cfg.method.num_clusters)  # conditional on k clusters, not the classes
    return SelfCondGAN(G, D, cfg, spec.num_samples)


@METHODS.register("gan")
def _gan(cfg: Config, spec: DataSpec) -> Method:
    G, D = build_pair(cfg.model, spec, 0)  # unconditional: no class input, no class head
    return GAN(G, D, cfg)


@METHODS.register("cgan")
def _cgan(cfg: Config, spec: DataSpec) -> Method:
    G, D = build_cgan_pair(cfg.model, spec, cfg.method.cgan_variant)
    return CGAN(G, D, cfg, spec.num_classes)


@METHODS.register("tacgan")
def _tacgan(cfg: Config, spec: DataSpec) -> Method:
    G, _ = build_pair(cfg.model, spec, spec.num_classes)
    _, D = build_pair(cfg.model, spec, 2 * spec.num_classes)  # class head: C and its twin C_mi, K logits each
    return TACGAN(G, D, cfg, spec.num_classes)


@METHODS.register("adcgan")
def _adcgan(cfg: Config, spec: DataSpec) -> Method:
    G, _ = build_pair(cfg.model, spec, spec.num_classes)
    _, D = build_pair(cfg.model, spec, 2 * spec.num_classes)  # class head: real class k, generated class k
    return ADCGAN(G, D, cfg, spec.num_classes)


@METHODS.register("reacgan")
def _reacgan(cfg: Config, spec: DataSpec) -> Method:
    G, _ = build_pair(cfg.model, spec, spec.num_classes)
    _, D = build_pair(cfg.model, spec, cfg.method.embed_dim)  # class head: the embedding layer
    return ReACGAN(G, D, cfg, spec.num_classes)


def build_method(cfg: Config, spec: DataSpec) -> Method:
    """The method named by `cfg.method.name`, with freshly initialised networks and the recipe's
    spectral normalisation, DiffAugment, R1 and mode seeking (`apply_recipe`).

    With `method.class_splits` > 1 it is the class-split wrapper of that many such methods."""
    factory = METHODS.get(cfg.method.name)
    if isinstance(cfg.method, ClassSplitConfig) and cfg.method.class_splits > 1:
        method = build_class_splits(cfg, spec, factory)
    else:
        method = factory(cfg, spec)
    return apply_recipe(method, cfg.recipe, spec)


SPECTRAL_NORM_ROLES = {"none": (), "d": ("D",), "g_and_d": ("D", "G")}


def apply_recipe(method: Method, recipe: RecipeConfig, spec: DataSpec) -> Method:
    """`method` with the recipe's method-side parts (condgan.methods.recipe), whatever the method:
    spectral normalisation of the modules of its D (and G) phases, and on every `Method` in its
    tree (class splits' sub-models included) the `DiscriminatorTerms` and `GeneratorTerms` its
    losses call."""
    policy = parse_policy(recipe.diffaugment)
    if policy and not spec.is_image:
        raise ConfigError(f"config field recipe.diffaugment: augments images, found samples of shape "
                          f"{spec.sample_shape}; expected none")
    for phase in method.phases():
        if phase.role in SPECTRAL_NORM_ROLES[recipe.spectral_norm]:
            apply_spectral_norm(phase.module)
    d_terms = DiscriminatorTerms(policy, recipe.r1_gamma, recipe.r1_interval)
    g_terms = GeneratorTerms(recipe.mode_seeking)
    for module in method.modules():
        if isinstance(module, Method):
            module.d_terms, module.g_terms = d_terms, g_terms
    return method


__all__ = ["METHODS", "Method", "Phase", "StepInputs", "apply_recipe", "build_method", "every_n_dis"]
