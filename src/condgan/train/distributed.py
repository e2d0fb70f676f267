"""torch.distributed for the training loop and the evaluation helpers.

Launch: `torchrun` (or SLURM/any launcher that sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT) or `condgan train --nproc N`, which spawns N local processes with the same
environment. Backend: NCCL for CUDA, gloo otherwise.

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
import os
import socket
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn

from condgan.errors import CondganError, ConfigError
from condgan.methods.base import Phase

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job; `world_size` 1 means no process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def info() -> DistInfo:
    """The current process group's ranks (world size 1 when none is initialised)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo()


def launched_by_torchrun() -> bool:
    """True when the launcher set the env:// rendezvous variables with more than one process."""
    return all(v in os.environ for v in ENV_VARS[:2]) and int(os.environ["WORLD_SIZE"]) > 1


def init_from_env(device_type: str) -> DistInfo:
    """Join the process group described by the environment (torchrun / SLURM / `--nproc`).

    A no-op returning world size 1 when the launcher started one process. CUDA ranks are pinned to
    `cuda:LOCAL_RANK` before the group is created (NCCL needs the device; untested here: the
    project's test machine has no GPU).
    """
    if dist.is_initialized():
        return info()
    if not launched_by_torchrun():
        return DistInfo()
    missing = [v for v in ENV_VARS if v not in os.environ and v != "LOCAL_RANK"]
    if missing:
        raise ConfigError(f"distributed launch: environment variable {missing[0]} not set; "
                          f"expected {', '.join(ENV_VARS)} (torchrun sets them)")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"distributed launch: LOCAL_RANK {local_rank} but only "
                              f"{torch.cuda.device_count()} CUDA devices on this node")
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, init_method="env://")
    return info()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def free_port() -> int:
    """An unused TCP port on this host for a local rendezvous."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawned(local_rank: int, nproc: int, port: int, fn: Callable[..., Any], args: tuple) -> None:
    os.environ.update(RANK=str(local_rank), LOCAL_RANK=str(local_rank), WORLD_SIZE=str(nproc),
                      LOCAL_WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    fn(*args)


def spawn(nproc: int, fn: Callable[..., Any], *args: Any) -> None:
    """Run `fn(*args)` in `nproc` local processes that see torchrun's environment variables.

    `fn` must call `init_from_env` (the loop does). An exception in any process is raised here
    after the others are terminated: a condgan user error (a `CondganError` subclass) as a
    `CondganError` with the same one-line message, anything else as torch's ProcessRaisedException.
    """
    if nproc < 1:
        raise ConfigError(f"--nproc: expected a positive number of processes, found {nproc}")
    try:
        torch.multiprocessing.spawn(_spawned, args=(nproc, free_port(), fn, args), nprocs=nproc, join=True)
    except torch.multiprocessing.ProcessRaisedException as exc:
        # The child's exception arrives as its formatted traceback; its last line is "module.Class: message".
        last = str(exc).strip().splitlines()[-1]
        kind, _, message = last.partition(": ")
        if kind.startswith("condgan.errors."):
            raise CondganError(message) from None
        raise


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


def mean_scalar(x: torch.Tensor) -> torch.Tensor:
    """The mean of scalar `x` over ranks (e.g. a loss, so that every rank sees a NaN on any rank)."""
    y = x.detach().clone()
    dist.all_reduce(y)
    return y / dist.get_world_size()


def broadcast_module(module: nn.Module, *, params: bool = True) -> None:
    """Copy rank 0's buffers (and parameters unless `params` is False) to every rank."""
    tensors = list(module.buffers()) + (list(module.parameters()) if params else [])
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t, src=0)


def broadcast_object(obj: Any) -> Any:
    """Rank 0's `obj` (picklable) on every rank."""
    box = [obj if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Per-key means of scalar statistics over ranks (keys must be the same on every rank)."""
    keys = sorted(values)
    if keys != broadcast_object(keys):  # a mismatch would silently average different statistics
        raise RuntimeError(f"rank {dist.get_rank()} reports statistics {keys}, rank 0 others")
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(keys, (t / dist.get_world_size()).tolist()))


def gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's `x` along dim 0, in rank order (sizes may differ between ranks).

    For evaluation: each rank generates or extracts features for its share, `gather` returns the
    whole set on every rank. Without a process group it returns `x`. Tensors travel on the
    backend's device (CUDA for NCCL) and come back on `x`'s device.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    comm_device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    y = x.to(comm_device).contiguous()
    sizes = [torch.zeros(1, dtype=torch.long, device=comm_device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([len(y)], device=comm_device))
    biggest = int(max(s.item() for s in sizes))
    padded = torch.zeros((biggest, *y.shape[1:]), dtype=y.dtype, device=comm_device)
    padded[:len(y)] = y
    out = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(out, padded)
    return torch.cat([o[:int(s.item())] for o, s in zip(out, sizes)]).to(x.device)


def shard(n: int, dist_info: DistInfo | None = None) -> range:
    """The contiguous part of `range(n)` this rank handles (balanced: sizes differ by at most one)."""
    d = dist_info or info()
    per, extra = divmod(n, d.world_size)
    start = d.rank * per + min(d.rank, extra)
    return range(start, start + per + (d.rank < extra))
