"""Checkpoints: atomic writes, safe loads, architecture checks, pruning.

A checkpoint is one file `checkpoints/ckpt-<step:08d>.pt` holding only tensors and plain
containers: the method's state_dict, each optimiser's state_dict, the step, `meta` (the data
spec, resolved config and code version) and optional extra loop state (e.g. the running sums of
the logged statistics). It is written to a temporary file in the same folder and renamed into
place, so a crash never leaves a half-written checkpoint under a real name.
Loading uses `torch.load(weights_only=True)`, which refuses to run code from a pickle.

Nothing non-finite is saved: `save_checkpoint` checks every floating-point tensor of the model
(parameters and buffers) and of the optimiser states first and raises `NonFiniteState` naming
the first bad tensor instead of writing; `load_checkpoint` refuses such a file (one written by a
version before this check) the same way. So every checkpoint a run directory holds is one a run
can continue from.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from condgan.errors import CheckpointError, NonFiniteState
from condgan.io import atomic_write_bytes, load_torch

CKPT_DIR = "checkpoints"
_NAME = re.compile(r"ckpt-(\d{8})\.pt$")


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CKPT_DIR / f"ckpt-{step:08d}.pt"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints of a run, oldest first."""
    folder = Path(run_dir) / CKPT_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def _tensors(tree: Any, prefix: str):
    """(dotted name, tensor) for every tensor in nested dicts, lists and tuples."""
    if isinstance(tree, torch.Tensor):
        yield prefix, tree
    elif isinstance(tree, dict):
        for key, value in tree.items():
            yield from _tensors(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            yield from _tensors(value, f"{prefix}.{i}" if prefix else str(i))


def non_finite(state: dict[str, Any]) -> str | None:
    """The first tensor of `state["model"]` or `state["optimizers"]` holding a NaN or ±inf, as
    "name (n of m values)"; None when all are finite. One sync per device holding the state."""
    named = [(name, t) for key in ("model", "optimizers") for name, t in _tensors(state.get(key, {}), key)
             if t.is_floating_point() or t.is_complex()]
    if not named:
        return None
    flags: dict[torch.device, list[torch.Tensor]] = {}
    for _, t in named:
        flags.setdefault(t.device, []).append(torch.isfinite(t).all())
    if all(bool(torch.stack(f).all()) for f in flags.values()):
        return None
    name, t = next((name, t) for name, t in named if not bool(torch.isfinite(t).all()))
    return f"{name} ({int((~torch.isfinite(t)).sum())} of {t.numel()} values)"


def save_checkpoint(
    run_dir: Path, step: int, model: nn.Module, optimizers: dict[str, torch.optim.Optimizer],
    meta: dict[str, Any], keep: int, extra: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint of `step` atomically and keep only the newest `keep`.

    `extra` adds top-level entries (tensors and plain containers) beside the model and optimiser
    states. Raises `NonFiniteState`, writing nothing, when the model or an optimiser holds a NaN or inf.
    """
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "meta": meta,
        **(extra or {}),
    }
    bad = non_finite(state)
    if bad is not None:
        raise NonFiniteState(f"step {step}: non-finite values in {bad}; checkpoint not written")
    path = checkpoint_path(run_dir, step)
    # Serialised in memory, then written as plain bytes: a full disk is then an OSError (ENOSPC)
    # naming the file, where torch.save writing to the disk itself fails with an opaque RuntimeError.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        atomic_write_bytes(path, buffer.getbuffer())
    except OSError as exc:  # a failed write() names no file: name the checkpoint
        if exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink()
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint without executing code; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    state = load_torch(path, f"checkpoint {path}", CheckpointError)
    expected = {"step", "model", "optimizers", "meta"}
    if not isinstance(state, dict) or not expected <= set(state):
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"checkpoint {path}: expected keys {sorted(expected)}, found {found}")
    bad = non_finite(state)
    if bad is not None:
        raise NonFiniteState(f"checkpoint {path}: holds non-finite values in {bad} (written before condgan "
                             "refused to save such state); delete it to use an earlier checkpoint")
    return state


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Load weights after checking that every name and shape matches this architecture."""
    own = model.state_dict()
    for name, tensor in own.items():
        if name not in state:
            raise CheckpointError(f"checkpoint {path}: made for another architecture: missing {name}")
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"checkpoint {path}: made for another architecture: {name} expected shape "
                f"{tuple(tensor.shape)}, found {tuple(state[name].shape)}"
            )
    extra = sorted(set(state) - set(own))
    if extra:
        raise CheckpointError(f"checkpoint {path}: made for another architecture: unexpected {extra[0]}")
    model.load_state_dict(state)
