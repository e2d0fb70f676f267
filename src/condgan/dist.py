"""torch.distributed helpers for any stage: the process group, collectives, work sharding.

Launch: `torchrun` (or SLURM/any launcher that sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT) or `condgan train --nproc N`, which spawns N local processes with the same
environment. Backend: NCCL for CUDA, gloo otherwise. How the training loop uses them:
condgan.training.distributed and docs/distributed-and-speed.md.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn

from condgan.errors import CondganError, ConfigError, TrainingStopped

SPAWN_GRACE_S = 60  # seconds the other ranks get to end by themselves after one fails
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
    context = torch.multiprocessing.start_processes(_spawned, args=(nproc, free_port(), fn, args), nprocs=nproc,
                                                    join=False, start_method="spawn")
    # Signals for the job reach the children: a SIGTERM sent to this process alone is passed on (the
    # training loop saves on it); Ctrl-C reaches every process of the terminal's group already.
    def forward(signum: int, frame: object) -> None:
        for process in context.processes:
            if process.is_alive() and process.pid:
                os.kill(process.pid, signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
                    signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN)}
    try:
        # When one rank fails the others get time to end by themselves (a rank stopped by a signal
        # finishes writing its checkpoint) before torch terminates them.
        while not context.join(grace_period=SPAWN_GRACE_S):
            pass
    except torch.multiprocessing.ProcessRaisedException as exc:
        # The child's exception arrives as its formatted traceback; its last line is "module.Class: message".
        last = str(exc).strip().splitlines()[-1]
        kind, _, message = last.partition(": ")
        if kind == "condgan.errors.TrainingStopped":
            name = message.split()[2] if message.startswith("stopped by ") else "SIGTERM"
            raise TrainingStopped(message, int(getattr(signal, name, signal.SIGTERM)), -1, None) from None
        if kind.startswith("condgan.errors."):
            raise CondganError(message) from None
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj` (picklable), in rank order, on every rank (`[obj]` without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def max_int(x: int) -> int:
    """The largest of the ranks' `x` (e.g. a signal number, so that every rank stops at the same step)."""
    if not (dist.is_available() and dist.is_initialized()):
        return x
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([x], dtype=torch.long, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


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


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward hands each rank the summed gradient of its own slice."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rows = (dist.get_rank() * len(x), (dist.get_rank() + 1) * len(x))
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        # Every rank's loss may depend on every slice: this rank's slice gets the sum over ranks.
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rows[0]:ctx.rows[1]]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Every rank's `x` (the same shape on each) concatenated in rank order, differentiable.

    For losses that couple the samples of a batch (e.g. ReACGAN's negatives): each rank computes
    the loss of its own samples against the global batch; gradients reach the rank that owns
    each sample, so with DDP's averaging a W-rank run gets the single-process gradient. A
    collective: every rank must call it, with the same shape, in the same order. Without a
    process group it returns `x`.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)


def shard(n: int, dist_info: DistInfo | None = None) -> range:
    """The contiguous part of `range(n)` this rank handles (balanced: sizes differ by at most one)."""
    d = dist_info or info()
    per, extra = divmod(n, d.world_size)
    start = d.rank * per + min(d.rank, extra)
    return range(start, start + per + (d.rank < extra))
