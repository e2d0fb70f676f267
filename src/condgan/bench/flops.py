"""FLOP totals for the benchmarks: torch's FlopCounterMode without its per-module attribution.

FlopCounterMode credits each operation to the modules running it through backward hooks (its
ModuleTracker), and those hooks fail inside `torch.autograd.grad` ("A leaf node was passed to
_will_engine_execute_node …"), which R1's gradient penalty (recipe.r1_gamma) calls in every D step.
The benchmarks need only the total, so the tracker is swapped for one that knows only the global
scope; where a torch version has no such tracker, the counter is used as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from torch.utils.flop_counter import FlopCounterMode

if TYPE_CHECKING:
    from condgan.methods import Method, StepInputs


class _GlobalScopeOnly:
    """Stands in for ModuleTracker: every FLOP counts toward "Global" and no hooks are installed."""

    parents = {"Global"}

    def __enter__(self) -> "_GlobalScopeOnly":
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matmuls and convolutions `fn` runs, forward, backward and double backward."""
    counter = FlopCounterMode(display=False)
    if hasattr(counter, "mod_tracker"):
        counter.mod_tracker = _GlobalScopeOnly()
    with counter:
        fn()
    return counter.get_total_flops()


def training_step_flops(method: "Method", inputs: "StepInputs") -> int:
    """FLOPs of one training step as the loop runs it: every phase's loss, forward and backward, with
    the parameters that no phase from i on updates frozen while phase i runs (so G's phase
    backpropagates through D without D's weight gradients)."""
    phases = method.phases()

    def step() -> None:
        for i, phase in enumerate(phases):
            owned = {id(q) for p in phases[i:] for q in p.module.parameters()}
            for q in method.parameters():
                q.requires_grad_(id(q) in owned)
            method.loss(phase, inputs)[0].backward()

    return count_flops(step)
