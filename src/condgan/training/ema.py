"""G-EMA: an exponential moving average of the generator's weights (`recipe.ema_decay`, `recipe.ema_start`).

Karras, Aila, Laine, Lehtinen 2018 ("Progressive Growing of GANs", ICLR, §A.1: samples from an
exponential running average of G's weights, decay 0.999) and Yazici, Foo, Winkler, Yap,
Piliouras, Chandrasekhar 2019 ("The Unusual Effectiveness of Averaging in GAN Training", ICLR):
after every step in which G was updated,

    θ_EMA ← β · θ_EMA + (1 − β) · θ_G        (steps ≥ ema_start; before it, θ_EMA ← θ_G)

with β = `ema_decay`, per G update (with `recipe.n_dis` = n, one per n steps). With `ema_rampup`
= r > 0 the half-life of the average, ln ½ / ln β updates, is at most r · t for t the steps since
ema_start (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", whose
code caps the EMA's half-life at ema_rampup × the images seen): β_t = min(β, ½^(1 / (r · t))).
Without it, a run of a few times 1/(1 − β) steps samples from an average that still weighs its
first weights heavily (0.999^234 = 0.79 of it 234 steps after the start). G's buffers
(BatchNorm running statistics, spectral-norm u, v) are copied, not averaged, as stylegan2-ada
does; so is everything outside G (D, and method state such as Self-Cond GAN's clusters or the
class-split routing), at every step. The average is a whole copy of the method (`.method`), so
that generation (LAPGAN's chain of G_k, class splits' routing) works on it unchanged: the grids,
the collapse monitor and, through the checkpoint's "ema" entry, `condgan sample` and `eval --run`
draw from it (`condgan.sampling.load_run`).

"Which weights are G's": the modules of the method's G-role phases, found by name in the method's
state_dict ("G.", "G.0.", "subs.1.G.", ...), so every method, built-in or new, is covered.
The checkpoint holds those entries of the average (`state_dict`); a resume rebuilds the copy from
the restored method and puts them back (`load_state_dict`), which continues the average exactly.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from condgan.methods import Method, Phase
from condgan.run.checkpoint import load_ema_state


def generator_prefixes(method: Method, phases: list[Phase]) -> tuple[str, ...]:
    """State-dict prefixes ("G.", "subs.0.G.", ...) of the modules that G-role phases update."""
    g_modules = {id(p.module) for p in phases if p.role == "G"}
    return tuple(f"{name}." for name, module in method.named_modules() if id(module) in g_modules)


class GeneratorEMA:
    """The average of G's weights in a copy of `method`; see the module docstring."""

    def __init__(self, method: Method, phases: list[Phase], decay: float, start: int, rampup: float = 0.0) -> None:
        self.decay, self.start, self.rampup = decay, start, rampup
        self.method = copy.deepcopy(method).eval().requires_grad_(False)
        self.prefixes = generator_prefixes(method, phases)
        live, ours = dict(method.named_parameters()), dict(self.method.named_parameters())
        g_names = {n for n in live if n.startswith(self.prefixes)}
        # (average, trained) pairs: G's parameters are averaged, every other parameter and every buffer copied.
        self._averaged = [(ours[n], live[n]) for n in sorted(g_names)]
        ours_buffers = dict(self.method.named_buffers())
        self._copied = [(ours[n], t) for n, t in live.items() if n not in g_names] + \
            [(ours_buffers[n], t) for n, t in method.named_buffers()]

    def decay_at(self, step: int) -> float:
        """β for the update after training step `step` (≥ ema_start): `ema_decay`, ramped up if asked."""
        if self.rampup == 0:
            return self.decay
        return min(self.decay, 0.5 ** (1.0 / (self.rampup * (step - self.start + 1))))

    @torch.no_grad()
    def update(self, step: int, g_updated: bool) -> None:
        """After training step `step`: average G's parameters if G was updated, copy the rest."""
        if g_updated:
            weight = None if step < self.start else 1.0 - self.decay_at(step)
            for average, trained in self._averaged:
                if weight is None:
                    average.copy_(trained)
                else:
                    average.lerp_(trained, weight)  # θ + (1 − β)(θ_G − θ) = βθ + (1 − β)θ_G
        for copy_, trained in self._copied:
            copy_.copy_(trained)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged G's entries (parameters and buffers) under the method's state-dict names."""
        return {n: t for n, t in self.method.state_dict().items() if n.startswith(self.prefixes)}

    def load_state_dict(self, entries: dict[str, torch.Tensor], path: Path) -> None:
        """Put back the entries `state_dict` saved in checkpoint `path` (the rest of the copy is the
        restored method's); names and shapes are checked first."""
        load_ema_state(self.method, entries, path)
