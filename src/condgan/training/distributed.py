"""Data-parallel training: how the loop uses torch.distributed (process helpers: condgan.dist).

Data parallelism, as the loop uses it (docs/distributed-and-speed.md):
- `train.batch_size` is the *global* batch; each of the W ranks takes its contiguous slice of
  B/W items of the same global batch (same permutation, same noise), so a W-rank run computes
  the gradients of the single-process run, up to float summation order and BatchNorm (per-rank
  batch statistics unless `train.sync_bn`).
- Each phase's objective is one `DistributedDataParallel` module (`PhaseObjective`): its
  parameters are the phase module's (G for G's phase, D for D's) and its forward is the method's
  loss for that phase. DDP therefore sees exactly one forward and one backward per phase, however
  often the loss calls D (real and generated batches) or backpropagates through the other player
  (frozen in that phase), and its bucketed all-reduce averages the phase module's gradients while
  the backward still runs. The method's own modules stay unwrapped, so module names (checkpoint
  keys), sampling and grids are the same as in one process.
- Buffers (BatchNorm running statistics, method state such as Self-Cond GAN clusters) are
  broadcast from rank 0 after each step (`broadcast_module`), which covers state outside the phase
  modules too; DDP's own per-forward `broadcast_buffers` is off.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from condgan.methods.base import Phase


class PhaseObjective(nn.Module):
    """One phase's loss as a module that owns exactly the phase's parameters (what DDP wraps).

    `forward(inputs)` returns `method.loss(phase, inputs)`. The method is held outside the module
    tree, so `parameters()` are the phase module's alone. With `touch_all_parameters` the loss gets
    a zero-weighted sum of every parameter, so a rank whose step leaves parameters unused (class
    splits without the split's classes in its slice) still hands DDP a zero gradient for each and
    every rank joins the same all-reduce.
    """

    def __init__(self, method: nn.Module, phase: Phase, touch_all_parameters: bool) -> None:
        super().__init__()
        self.module = phase.module
        self.phase = phase
        self.touch_all_parameters = touch_all_parameters
        object.__setattr__(self, "_method", method)  # not a submodule: DDP must not own its other parameters

    def forward(self, inputs: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, stats = self._method.loss(self.phase, inputs)
        if self.touch_all_parameters:
            loss = loss + 0.0 * sum(p.sum() for p in self.module.parameters() if p.requires_grad)
        return loss, stats


def wrap_phase(method: nn.Module, phase: Phase, device: torch.device, touch_all_parameters: bool) -> nn.Module:
    """`PhaseObjective` of `phase` in DistributedDataParallel (gradients averaged over ranks in backward)."""
    ddp = nn.parallel.DistributedDataParallel
    # No buffer sync before each forward: the loop broadcasts every buffer of the method once per
    # step. torch >= 2.13 names the switch forward_sync_buffers (broadcast_buffers is deprecated).
    no_forward_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp).parameters
                       else {"broadcast_buffers": False})
    return ddp(PhaseObjective(method, phase, touch_all_parameters),
               device_ids=[device] if device.type == "cuda" else None, **no_forward_sync)
