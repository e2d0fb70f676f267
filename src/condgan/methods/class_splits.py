"""Class splits: N independent sub-models, each a conditional method over its own subset of classes.

The AC-GAN paper trains ImageNet's 1000 classes as 100 AC-GANs of 10 classes each (Odena et al.
2017, §4: "we train 100 AC-GAN models — each on images from just 10 classes — for 50000
mini-batches of size 100"), finding that many classes per model lowers sample quality.
`method.class_splits: N` reproduces that with any conditional method (`method.name`):

* the K classes are cut into N groups of ⌈K/N⌉ or ⌊K/N⌋ classes, either contiguous
  (0..k−1 → split 0, ...) or after a random permutation seeded by `train.seed`
  (`method.split_mode`); each group is a sub-model with local class indices 0..|group|−1;
* the wrapper's phases are the sub-models' phases renamed "<phase>.s<i>" (e.g. "D.s0", "G.s0",
  "D.s1", ...), so every sub-model has its own optimisers and the loop needs no change;
* each step's real batch and generated classes are routed by class: sub-model i sees the real
  samples and the (z, c) pairs whose class lies in its group, with c mapped to local indices.
  `train.batch_size` is therefore the batch of all sub-models together; each sees about
  batch_size / N real and generated samples per step (the paper's 100 per model ⇔ 100·N here).
  A sub-model whose classes are absent from the real or the generated batch skips the step;
* `generate(z, c)` sends each requested global class to its sub-model, so sampling, grids and
  evaluation see one model over all K classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from condgan.config import Config, MethodConfig, setting
from condgan.errors import ConfigError
from condgan.methods.base import Method, Phase, StepInputs
from condgan.nets import DataSpec

SUFFIX = ".s"  # phase "D" of sub-model 3 is "D.s3"


@dataclass(frozen=True)
class ClassSplitConfig(MethodConfig):
    """The keys of methods that class splits can wrap: conditional on the dataset's classes,
    without state over the whole training set."""

    # N sub-models, each trained on its own subset of the classes; 1 = one model for all classes.
    class_splits: int = setting(1, positive=True, needs="a conditional method")
    # contiguous: classes 0..k-1 → split 0, ...; random: a permutation seeded by train.seed
    split_mode: str = setting("contiguous", choices=("contiguous", "random"), needs="a conditional method")


def split_classes(num_classes: int, splits: int, mode: str, seed: int) -> list[list[int]]:
    """The classes of each split: np.array_split of 0..K−1 ("contiguous") or of a seeded permutation ("random")."""
    order = np.arange(num_classes)
    if mode == "random":
        order = torch.randperm(num_classes, generator=torch.Generator().manual_seed(seed)).numpy()
    return [sorted(int(c) for c in group) for group in np.array_split(order, splits)]


class ClassSplits(Method):
    """N conditional sub-models behind one `Method` interface; see the module docstring."""

    conditional = True
    uses_all_parameters_every_step = False  # a sub-model without its classes in the batch skips the step
    takes_class_vectors = False  # a blend of two classes has no one sub-model to go to

    def __init__(self, subs: list[Method], groups: list[list[int]]) -> None:
        num_classes = sum(len(g) for g in groups)
        super().__init__(num_classes, subs[0].z_dim)
        self.subs = nn.ModuleList(subs)
        split_of = torch.empty(num_classes, dtype=torch.long)
        local_of = torch.empty(num_classes, dtype=torch.long)
        for i, group in enumerate(groups):
            split_of[group] = i
            local_of[group] = torch.arange(len(group))
        # Saved with the weights, so a checkpoint records which classes each sub-model learnt.
        self.register_buffer("split_of", split_of)  # global class → sub-model
        self.register_buffer("local_of", local_of)  # global class → class index inside its sub-model
        self._routed_for: StepInputs | None = None
        self._routed: list[StepInputs | None] = []

    def groups(self) -> list[list[int]]:
        """The global classes of each sub-model, in local index order."""
        return [torch.nonzero(self.split_of == i).flatten().tolist() for i in range(len(self.subs))]

    def phases(self) -> list[Phase]:
        return [Phase(f"{p.name}{SUFFIX}{i}", p.role, p.module, p.lr, p.interval, p.level, split=i, inner=p)
                for i, sub in enumerate(self.subs) for p in sub.phases()]

    def latent(self, n: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> torch.Tensor:
        return self.subs[0].latent(n, device=device, generator=generator)

    def _route(self, step: StepInputs, i: int) -> StepInputs | None:
        real = self.split_of[step.real_c] == i
        gen = self.split_of[step.gen_c] == i
        if not (real.any() and gen.any()):
            return None
        return StepInputs(
            real_x=step.real_x[real], real_c=self.local_of[step.real_c[real]], real_idx=step.real_idx[real],
            gen_z=step.gen_z[gen], gen_c=self.local_of[step.gen_c[gen]], step=step.step,
        )

    def loss(self, phase: Phase, step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self._routed_for is not step:  # route once per step; each sub-model's cache lives in its inputs
            self._routed_for = step
            self._routed = [self._route(step, i) for i in range(len(self.subs))]
        i = phase.split
        assert i is not None and phase.inner is not None, f"phase {phase.name} is not a class-split phase"
        inputs = self._routed[i]
        if inputs is None:  # no real or no generated sample of this split's classes: no update
            return torch.zeros((), device=step.real_x.device, requires_grad=True), {}
        # Statistics keep the sub-model's names, so each logged value is the mean over sub-models.
        return self.subs[i].loss(phase.inner, inputs)

    def generate(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        if c is None or c.is_floating_point():
            raise TypeError("class splits route integer classes to their sub-model; class vectors "
                            "(e.g. a blend of two one-hots) cannot be routed")
        out: torch.Tensor | None = None
        split = self.split_of[c]
        for i, sub in enumerate(self.subs):
            mask = split == i
            if not mask.any():
                continue
            x = sub.generate(z[mask], self.local_of[c[mask]])
            if out is None:
                out = x.new_empty((len(z), *x.shape[1:]))
            out[mask] = x
        if out is None:
            raise ValueError("generate: expected at least one class, found an empty batch")
        return out


def build_class_splits(cfg: Config, spec: DataSpec, factory: Callable[[Config, DataSpec], Method]) -> Method:
    """`method.class_splits` sub-models made by `factory` (the method named by `method.name`)."""
    m = cfg.method
    assert isinstance(m, ClassSplitConfig), f"method {m.name} has no class_splits setting"
    if m.class_splits > spec.num_classes:
        raise ConfigError(f"config field method.class_splits: expected at most the {spec.num_classes} classes "
                          f"of the data, found {m.class_splits}")
    groups = split_classes(spec.num_classes, m.class_splits, m.split_mode, cfg.train.seed)
    subs: list[Method] = []
    for group in groups:
        sub = factory(cfg, DataSpec(spec.sample_shape, len(group), spec.num_samples))
        if not sub.conditional:
            raise ConfigError(f"config field method.class_splits: needs a conditional method, found "
                              f"method.name {m.name!r} (unconditional) with class_splits {m.class_splits}")
        if type(sub).prepare is not Method.prepare or type(sub).on_step_end is not Method.on_step_end:
            raise ConfigError(f"config field method.class_splits: method.name {m.name!r} keeps state over the whole "
                              "training set (prepare/on_step_end hooks), which class splits do not route; "
                              f"found class_splits {m.class_splits}")
        subs.append(sub)
    return ClassSplits(subs, groups)
