"""Checkpoints: atomic writes, safe loads, architecture checks, pruning.

A checkpoint is one file `checkpoints/ckpt-<step:08d>.pt` holding only tensors and plain
containers: the method's state_dict, each optimiser's state_dict, the step, `meta` (the data
spec, resolved config and code version) and optional extra loop state (e.g. the running sums of
the logged statistics, and with `recipe.ema_decay` > 0 the averaged generator's entries under
"ema", condgan.training.ema). It is written to a temporary file in the same folder and renamed
into place, so a crash never leaves a half-written checkpoint under a real name.
Loading uses `torch.load(weights_only=True)`, which refuses to run code from a pickle, then
`validate_checkpoint` checks the structure and `meta` before anything is built from them.

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

from condgan.config import resolve_config
from condgan.errors import CheckpointError, ConfigError, NonFiniteState, one_line
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
    """The first tensor of `state["model"]`, `state["optimizers"]` or `state["ema"]` holding a NaN or
    ±inf, as "name (n of m values)"; None when all are finite. One sync per device holding the state."""
    named = [(name, t) for key in ("model", "optimizers", "ema") for name, t in _tensors(state.get(key, {}), key)
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
    # Serialised in memory first: torch.save reports a full disk as a RuntimeError, a plain write as
    # an OSError, which atomic_write turns into a WriteError naming the file.
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink()
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint without executing code and check it with `validate_checkpoint`; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    return validate_checkpoint(load_torch(path, f"checkpoint {path}", CheckpointError), path)


MAX_SIDE = 4096  # largest image side (and point dimension) a checkpoint may declare
MAX_SAMPLES = 100_000_000  # largest training-set size (Self-Cond GAN keeps per-sample state of this length)


def _is_int(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _fail(path: Path, what: str, expected: str, value: Any) -> CheckpointError:
    found = one_line(repr(value), 80) if isinstance(value, (int, float, str, bool, type(None))) else type(value).__name__
    return CheckpointError(f"checkpoint {path}: {what}: expected {expected}, found {found}")


def validate_checkpoint(state: Any, path: str | Path) -> dict[str, Any]:
    """Check a loaded checkpoint's structure and `meta` before anything is built from it; returns it.

    Every load path (sampling, resuming, evaluating a run) goes through here, so a damaged or
    hand-edited file is one CheckpointError naming the file and the entry, never a traceback
    from deep inside model construction. Checked: the top-level keys and their types; `model`
    (and `ema`, when present) maps names to finite tensors; each optimiser state has `state` and
    `param_groups`; `meta` holds `sample_shape` ([D] points or [C, H, W] images, C in 1 or 3,
    sides in [1, MAX_SIDE]), `num_classes` >= 1 with as many `class_names` strings,
    `num_samples` >= 0, and a `config` that resolves to a valid Config agreeing with `sample_shape`.
    """
    path = Path(path)
    expected = ("step", "model", "optimizers", "meta")
    if not isinstance(state, dict) or not set(expected) <= set(state):
        found = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"checkpoint {path}: expected keys {sorted(expected)}, found {found}")
    if not _is_int(state["step"]):
        raise _fail(path, "step", "an int >= 0", state["step"])
    model = state["model"]
    if not isinstance(model, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in model.items()):
        raise _fail(path, "model", "a dict of parameter names to tensors", model)
    ema = state.get("ema")
    if ema is not None and not (isinstance(ema, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                              for k, v in ema.items())):
        raise _fail(path, "ema", "a dict of the averaged generator's entry names to tensors", ema)
    optimizers = state["optimizers"]
    if not isinstance(optimizers, dict):
        raise _fail(path, "optimizers", "a dict of optimiser states", optimizers)
    for name, opt in optimizers.items():
        groups = opt.get("param_groups") if isinstance(opt, dict) else None
        if (not isinstance(opt, dict) or not isinstance(opt.get("state"), dict) or not isinstance(groups, list)
                or not all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups)):
            raise _fail(path, f"optimizers[{one_line(repr(name), 40)}]", "an optimiser state_dict "
                        "(state, param_groups)", opt)
    meta = state["meta"]
    if not isinstance(meta, dict):
        raise _fail(path, "meta", "a dict", meta)
    for key in ("sample_shape", "num_classes", "num_samples", "class_names", "config"):
        if key not in meta:
            raise CheckpointError(f"checkpoint {path}: meta: missing {key}; found {sorted(map(str, meta))}")
    shape = meta["sample_shape"]
    if (not isinstance(shape, (list, tuple)) or len(shape) not in (1, 3)
            or not all(_is_int(d, 1) and d <= MAX_SIDE for d in shape) or (len(shape) == 3 and shape[0] not in (1, 3))):
        raise _fail(path, "meta.sample_shape", f"[D] or [C, H, W] (C 1 or 3, sides in [1, {MAX_SIDE}])",
                    shape if not isinstance(shape, (list, tuple)) else one_line(list(shape), 80))
    if not _is_int(meta["num_classes"], 1):
        raise _fail(path, "meta.num_classes", "an int >= 1", meta["num_classes"])
    names = meta["class_names"]
    if (not isinstance(names, (list, tuple)) or len(names) != meta["num_classes"]
            or not all(isinstance(n, str) for n in names)):
        raise _fail(path, "meta.class_names", f"a list of {meta['num_classes']} (meta.num_classes) strings", names)
    if not _is_int(meta["num_samples"]) or meta["num_samples"] > MAX_SAMPLES:
        raise _fail(path, "meta.num_samples", f"an int in [0, {MAX_SAMPLES}]", meta["num_samples"])
    for key in ("dataset", "condgan_version"):
        if key in meta and not isinstance(meta[key], str):
            raise _fail(path, f"meta.{key}", "a string", meta[key])
    if not isinstance(meta["config"], dict):
        raise _fail(path, "meta.config", "a dict (the resolved config)", meta["config"])
    try:
        cfg = resolve_config(base=meta["config"])
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {path}: meta.config is invalid ({exc})") from None
    d = cfg.data
    if len(shape) == 3 and ((d.channels is not None and d.channels != shape[0])
                            or (d.resolution is not None and tuple(shape[1:]) != (d.resolution, d.resolution))):
        raise CheckpointError(f"checkpoint {path}: meta.sample_shape {list(shape)} disagrees with meta.config "
                              f"(data.channels {d.channels}, data.resolution {d.resolution})")
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
        if not isinstance(state[name], torch.Tensor) or tuple(state[name].shape) != tuple(tensor.shape):
            found = tuple(state[name].shape) if isinstance(state[name], torch.Tensor) else type(state[name]).__name__
            raise CheckpointError(
                f"checkpoint {path}: made for another architecture: {name} expected shape "
                f"{tuple(tensor.shape)}, found {found}"
            )
    extra = sorted(set(state) - set(own))
    if extra:
        raise CheckpointError(f"checkpoint {path}: made for another architecture: unexpected {one_line(extra[0], 80)}")
    model.load_state_dict(state)


def load_ema_state(model: nn.Module, entries: dict[str, torch.Tensor], path: Path) -> None:
    """Overlay a checkpoint's "ema" entries (the averaged generator, condgan.training.ema) on
    `model`, after checking that each names one of its entries with the same shape."""
    own = model.state_dict()
    for name, tensor in entries.items():
        if name not in own:
            raise CheckpointError(f"checkpoint {path}: ema: made for another architecture: unexpected "
                                  f"{one_line(name, 80)}")
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise CheckpointError(f"checkpoint {path}: ema: made for another architecture: {name} expected shape "
                                  f"{tuple(own[name].shape)}, found {tuple(tensor.shape)}")
    model.load_state_dict({**own, **entries})


def load_optimizer_state(optimizer: torch.optim.Optimizer, states: dict[str, Any], name: str, path: Path) -> None:
    """Load optimiser `name`'s state from a checkpoint's `optimizers`, after checking that its groups,
    parameter counts and per-parameter state shapes fit `optimizer` (torch checks only the counts,
    and a wrong shape would fail later, inside a training step)."""
    if name not in states:
        raise CheckpointError(f"checkpoint {path}: optimizers: no state for {name}; found {sorted(map(str, states))}")
    saved = states[name]
    groups = saved["param_groups"]
    params = [p for group in optimizer.param_groups for p in group["params"]]
    ids = [i for group in groups for i in group["params"]]
    if len(groups) != len(optimizer.param_groups) or len(ids) != len(params):
        raise CheckpointError(f"checkpoint {path}: optimizers[{name}]: made for another architecture "
                              f"({len(ids)} parameters in {len(groups)} groups, expected {len(params)} in "
                              f"{len(optimizer.param_groups)})")
    for i, param in zip(ids, params):
        per_param = saved["state"].get(i, {})
        if not isinstance(per_param, dict):
            raise CheckpointError(f"checkpoint {path}: optimizers[{name}]: state of parameter {i} is not a dict")
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != param.shape:
                raise CheckpointError(f"checkpoint {path}: optimizers[{name}]: {key} of parameter {i} has shape "
                                      f"{tuple(value.shape)}, expected {tuple(param.shape)}")
    try:
        optimizer.load_state_dict(saved)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path}: optimizers[{name}]: cannot load ({one_line(exc, 200)})") from None
