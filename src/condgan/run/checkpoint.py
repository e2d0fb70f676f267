"""Checkpoints: atomic writes, safe loads, architecture checks, pruning.

A checkpoint is one file `checkpoints/ckpt-<step:08d>.pt` holding only tensors and plain
containers: the method's state_dict, each optimiser's state_dict, the step, and `meta` (the data
spec, resolved config and code version). It is written to a temporary file in the same folder
and renamed into place, so a crash never leaves a half-written checkpoint under a real name.
Loading uses `torch.load(weights_only=True)`, which refuses to run code from a pickle.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from condgan.errors import CheckpointError
from condgan.io import atomic_write, load_torch

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


def save_checkpoint(
    run_dir: Path, step: int, model: nn.Module, optimizers: dict[str, torch.optim.Optimizer],
    meta: dict[str, Any], keep: int,
) -> Path:
    """Write the checkpoint of `step` atomically and keep only the newest `keep`."""
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "meta": meta,
    }
    path = checkpoint_path(run_dir, step)
    atomic_write(path, lambda tmp: torch.save(state, tmp))
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
