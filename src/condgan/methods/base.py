"""What every training objective provides to the one training loop.

A method is an `nn.Module` holding its networks (so one `state_dict` is the whole model), a list
of `Phase`s (which module an optimiser step updates, and how often), and `loss(phase, step)`.
The loop never branches on the method's name (STYLE 1–2).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import nn

from condgan.methods.recipe import DiscriminatorTerms, GeneratorTerms


@dataclass(frozen=True)
class Phase:
    """One optimiser update: `module`'s parameters, stepped every `interval` training steps.

    The phase carries what it optimises, so `Method.loss` dispatches on `role` and `level` (and a
    class-split phase on `split` and `inner`), never on `name`. `name` keys the optimiser state in
    checkpoints ("D", "G", "D0", "G1", "D.s0", ...) and the logged `<name>/loss`.
    """

    name: str
    role: str  # "D" or "G": whose objective this is
    module: nn.Module
    lr: float
    interval: int = 1
    level: int | None = None  # LAPGAN: the pyramid level k of the pair (D_k, G_k)
    split: int | None = None  # class splits: the sub-model this phase updates ...
    inner: Phase | None = None  # ... and that sub-model's own phase

    def __post_init__(self) -> None:
        assert self.role in ("D", "G"), f"phase {self.name}: role must be D or G, found {self.role!r}"


def every_n_dis(phases: list[Phase], n_dis: int) -> list[Phase]:
    """`phases` with G's run every `n_dis`-th step: n_dis D updates per G update (`recipe.n_dis`;
    Miyato et al. 2018 train SN-GANs with n_dis = 1 or 5, as WGAN's n_critic)."""
    return [replace(p, interval=p.interval * n_dis) if p.role == "G" else p for p in phases]


@dataclass
class StepInputs:
    """One training step's inputs; `cache` lets phases share work (e.g. one G forward per step)."""

    real_x: torch.Tensor
    real_c: torch.Tensor  # true labels (a method that must not read them, e.g. Self-Cond GAN, ignores them)
    real_idx: torch.Tensor  # indices of the real batch in the training set
    gen_z: torch.Tensor
    gen_c: torch.Tensor
    step: int
    cache: dict[str, torch.Tensor] = field(default_factory=dict)


class Method(nn.Module):
    """Base class of training objectives; see the module docstring."""

    conditional: bool = True
    # False when a step may leave some of a phase's parameters without a gradient (under DDP they
    # then get zero gradients: distributed.PhaseObjective).
    uses_all_parameters_every_step: bool = True
    # The recipe's DiffAugment and R1 (methods/recipe.py), set by build_method; call them where D runs.
    d_terms: DiscriminatorTerms = DiscriminatorTerms()
    # The recipe's mode-seeking term (methods/recipe.py), set by build_method; G's losses return through it.
    g_terms: GeneratorTerms = GeneratorTerms()
    # False when `generate` takes integer classes only, not class vectors (e.g. blends of one-hots).
    takes_class_vectors: bool = True

    def __init__(self, num_classes: int, z_dim: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.z_dim = z_dim

    @property
    def label_kind(self) -> str:
        """What the conditioning labels are: "class" (dataset classes), "cluster" (the method's
        own pseudo-classes, e.g. Self-Cond GAN), or "none" (unconditional); see condgan.samples."""
        return "class" if self.conditional else "none"

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    def phase(self, name: str) -> Phase:
        """The phase called `name` (e.g. to compute one phase's loss outside the loop)."""
        phases = {p.name: p for p in self.phases()}
        if name not in phases:
            raise KeyError(f"no phase {name!r}; phases: {', '.join(phases)}")
        return phases[name]

    def loss(self, phase: Phase, step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The scalar to minimise for `phase` (one of `phases()`) and named statistics to log."""
        raise NotImplementedError

    def generate(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """Samples in the data's range ([-1, 1] images or 2D points) for noise `z` and classes `c`."""
        raise NotImplementedError

    def latent(self, n: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=device, generator=generator)

    def sample_classes(
        self, n: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Classes to condition generated samples on during training (uniform by default)."""
        return torch.randint(0, max(self.num_classes, 1), (n,), device=device, generator=generator)

    def prepare(self, data_x: torch.Tensor, data_y: torch.Tensor) -> dict[str, float]:
        """Hook before the first step of a (new or resumed) run, with the whole training set.

        `data_x` is indexable like a tensor (a slice or integer indices give float samples on the
        device, images in [-1, 1]) and has `len` and `device`: in training a
        `condgan.data.storage.SampleView`, which reads the uint8 set (or a streamed one) on demand
        rather than holding it as float. `data_y` holds every label, on the device."""
        return {}

    def on_step_end(self, step: int, data_x: torch.Tensor, data_y: torch.Tensor) -> dict[str, float]:
        """Hook after each step (e.g. periodic re-clustering); returns statistics to log.

        `data_y` are the true labels, for diagnostics only (e.g. cluster purity)."""
        return {}


class AdversarialPair(Method):
    """One G and one D, D's phase then G's each step (GAN, cGAN, AC-GAN): the parts they share."""

    def __init__(self, G: nn.Module, D: nn.Module, num_classes: int, z_dim: int, g_source_loss: str,
                 d_lr: float, g_lr: float, d_source_loss: str = "bce") -> None:
        super().__init__(num_classes, z_dim)
        self.G, self.D = G, D
        self.g_source_loss, self.d_source_loss = g_source_loss, d_source_loss
        self._lrs = (d_lr, g_lr)

    def phases(self) -> list[Phase]:
        return [Phase("D", "D", self.D, self._lrs[0]), Phase("G", "G", self.G, self._lrs[1])]

    def generate(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return self.G(z, c)

    def generated(self, step: StepInputs) -> torch.Tensor:
        """This step's samples: one G forward shared by both phases (D sees it detached)."""
        if "gen_x" not in step.cache:
            step.cache["gen_x"] = self.generate(step.gen_z, step.gen_c)
        return step.cache["gen_x"]

    def with_mode_seeking(self, loss: torch.Tensor, stats: dict[str, torch.Tensor],
                          step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G's `loss` and `stats` with the recipe's mode-seeking term over this step's samples of one class."""
        return self.g_terms.of_batch(loss, stats, self.generated(step), step.gen_z,
                                     step.gen_c if self.conditional else None)
