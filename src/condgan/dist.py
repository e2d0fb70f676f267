"""torch.distributed helpers for any stage: the process group, collectives, work sharding.

Launch: `torchrun` (or SLURM/any launcher that sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT) or `condgan train --nproc N`, which starts N local processes through torch's elastic
launcher (`spawn`, the engine of `torchrun --standalone`). Backend: NCCL for CUDA, gloo otherwise. How the training loop uses them:
condgan.training.distributed and docs/distributed-and-speed.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn

from condgan import errors
from condgan.errors import EXIT_USER_ERROR, CondganError, ConfigError, TrainingStopped, one_line

SPAWN_GRACE_S = 60  # seconds a rank gets after the launcher's SIGTERM (another rank failed, or a signal) before SIGKILL
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job; `group` False (the default) means no process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    group: bool = False  # in a process group: a launcher started this process (possibly as its only rank)

    @property
    def enabled(self) -> bool:
        """Whether the distributed code runs (DDP objectives, collectives); with one rank too, so that
        `--nproc 1` / `torchrun --nproc-per-node 1` exercise it (NCCL on one GPU)."""
        return self.group

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def info() -> DistInfo:
    """The current process group's ranks (world size 1 when none is initialised)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), True)
    return DistInfo()


def launched_by_torchrun() -> bool:
    """True when a launcher set the env:// rendezvous variables (RANK and WORLD_SIZE), for any number of ranks."""
    return all(v in os.environ for v in ENV_VARS[:2])


def init_from_env(device_type: str) -> DistInfo:
    """Join the process group described by the environment (torchrun / SLURM / `--nproc`).

    A no-op returning `DistInfo()` (no group) when no launcher started this process; a launcher's
    single rank joins a group of one. CUDA ranks are pinned to
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


def spawn(nproc: int, fn: Callable[..., Any], *args: Any) -> None:
    """Run `fn(*args)` in `nproc` local processes started by torch's elastic launcher, as
    `torchrun --standalone --nproc-per-node nproc` does (a c10d rendezvous on a free local port, no
    restarts). `fn` must call `init_from_env` (the loop does).

    How a rank ended comes back through the launcher's per-rank error file (the protocol of
    `torch.distributed.elastic.multiprocessing.errors`): a rank that raises a condgan user error
    or stops on a signal writes a record of it there (`_entry`) and exits with the CLI's code (2,
    or 128 + the signal number). The first rank to fail ends the job: the others get SIGTERM and
    30 s (torch's grace) before SIGKILL; after a signal to this process, `SPAWN_GRACE_S` (a rank
    stopped by a signal finishes its checkpoint first). Raised here: the recorded `CondganError` subclass with the rank's
    one-line message, `TrainingStopped` (step -1 and no checkpoint when the launcher itself was
    signalled), or the launcher's `ChildFailedError` for anything else (a crash, with its traceback).

    Signals: SIGTERM (and SIGHUP, SIGQUIT) sent to this process are passed on to the ranks.
    SIGINT is ignored here and left to the ranks: Ctrl-C reaches every process of the terminal's
    group already, and passing it on as well would be a second Ctrl-C (stop without saving).
    """
    if nproc < 1:
        raise ConfigError(f"--nproc: expected a positive number of processes, found {nproc}")
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    with tempfile.TemporaryDirectory(prefix="condgan-launch-") as logs, _launcher_quiet(), _sigint_ignored():
        config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"condgan-{uuid.uuid4().hex}",
                              rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, start_method="spawn",
                              signals_to_handle="SIGTERM,SIGHUP,SIGQUIT", shutdown_timeout=SPAWN_GRACE_S,
                              logs_specs=DefaultLogsSpecs(log_dir=logs))
        try:
            elastic_launch(config, _entry)(fn, *args)
        except ChildFailedError as failed:
            rank, failure = failed.get_first_failure()
            record = failure.error_file_data.get("condgan") if isinstance(failure.error_file_data, dict) else None
            if not isinstance(record, dict):
                raise  # not a condgan error: a crash, reported with the rank's traceback
            raise _recorded_error(record, str(failure.message)) from None
        except SignalException as stop:
            sig = signal.Signals(stop.sigval)
            raise TrainingStopped(f"stopped by {sig.name}", int(sig), -1, None) from None


def _entry(fn: Callable[..., Any], *args: Any) -> None:
    """One rank of `spawn` (module level: the spawn start method pickles it by name)."""
    try:
        fn(*args)
    except CondganError as exc:
        _exit_recorded({"error": type(exc).__name__}, one_line(exc), EXIT_USER_ERROR)
    except TrainingStopped as stop:
        _exit_recorded({"error": "TrainingStopped", "signum": stop.signum, "step": stop.step,
                        "checkpoint": None if stop.checkpoint is None else str(stop.checkpoint)},
                       str(stop), stop.exit_code)


def _exit_recorded(record: dict[str, Any], message: str, code: int) -> None:
    """Write this rank's end into the launcher's error file (its JSON layout: message, timestamp) and exit."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if path:
        with open(path, "w") as fh:
            json.dump({"message": message, "timestamp": int(time.time()), "condgan": record}, fh)
    sys.exit(code)


def _recorded_error(record: dict[str, Any], message: str) -> Exception:
    """The exception a rank recorded (`_exit_recorded`), rebuilt in the launching process."""
    if record.get("error") == "TrainingStopped":
        ckpt = record.get("checkpoint")
        return TrainingStopped(message, int(record.get("signum", signal.SIGTERM)), int(record.get("step", -1)),
                               None if ckpt is None else Path(ckpt))
    kind = getattr(errors, str(record.get("error")), None)
    return kind(message) if isinstance(kind, type) and issubclass(kind, CondganError) else CondganError(message)


@contextlib.contextmanager
def _launcher_quiet():
    """The launcher logs each rank's failure (with a traceback) and its shutdown steps; the caller
    reports the outcome in one line instead."""
    # Each of the launcher's modules sets its own logger's level, so each is quietened (all are
    # imported by now: spawn imports the launcher first).
    logs = [log for name, log in logging.Logger.manager.loggerDict.items() if isinstance(log, logging.Logger)
            and name.startswith(("torch.distributed.elastic", "torch.distributed.launcher", "torch.multiprocessing"))]
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for log, level in zip(logs, levels):
            log.setLevel(level)


@contextlib.contextmanager
def _sigint_ignored():
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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
