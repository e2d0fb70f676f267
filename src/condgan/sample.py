"""Load a trained run and draw samples in the interchange format.

Samples file: `.npz` with `images` uint8 N×H×W×C and `labels` int64 N (the class each sample was
conditioned on; absent for unconditional models). 2D models write `points` float32 N×2 instead.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from condgan.config import Config, load_config, resolve_config
from condgan.errors import CheckpointError, ConfigError, SamplesError
from condgan.methods import Method, build_method
from condgan.nets import DataSpec
from condgan.data.base import to_uint8_nhwc
from condgan.train.checkpoint import atomic_write, latest_checkpoint, load_checkpoint, load_model_state
from condgan.train.rundir import CONFIG_FILE


@dataclass
class LoadedRun:
    method: Method
    config: Config
    class_names: list[str]
    sample_shape: tuple[int, ...]
    step: int
    checkpoint: Path

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_run(run: str | Path, checkpoint: str | Path | None = None, device: str | torch.device = "cpu") -> LoadedRun:
    """The model of a run directory (its newest checkpoint unless `checkpoint` is given), in eval mode."""
    run = Path(run)
    path = Path(checkpoint) if checkpoint else latest_checkpoint(run)
    if path is None:
        raise CheckpointError(f"run {run}: no checkpoint found under {run / 'checkpoints'}")
    state = load_checkpoint(path)
    meta = state["meta"]
    try:
        cfg = resolve_config(base=meta["config"])
        spec = DataSpec(tuple(meta["sample_shape"]), int(meta["num_classes"]), int(meta.get("num_samples", 0)))
        names = list(meta["class_names"])
    except (KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"checkpoint {path}: metadata is incomplete or invalid ({exc})") from None
    run_config = run / CONFIG_FILE
    if run_config.exists():  # the checkpoint must be one of this run's model
        _check_same_model(load_config(run_config), cfg, path)
    method = build_method(cfg, spec)
    load_model_state(method, state["model"], path)
    method.to(device).eval()
    return LoadedRun(method, cfg, names, spec.sample_shape, int(state["step"]), path)


def _check_same_model(run_cfg: Config, ckpt_cfg: Config, path: Path) -> None:
    """Refuse a checkpoint whose data/model/method settings differ from the run's config."""
    for section in ("data", "model", "method"):
        ours, theirs = getattr(run_cfg, section).__dict__, getattr(ckpt_cfg, section).__dict__
        for key in ours:
            if key != "data_dir" and ours[key] != theirs[key]:
                raise CheckpointError(
                    f"checkpoint {path}: made for another architecture: {section}.{key} is {theirs[key]!r} "
                    f"there, {ours[key]!r} in this run's {CONFIG_FILE}"
                )


def balanced_labels(n: int, classes: list[int]) -> torch.Tensor:
    """n labels cycling through `classes`, so every class gets ⌊n/K⌋ or ⌈n/K⌉ samples."""
    return torch.tensor(classes, dtype=torch.long).repeat(n // len(classes) + 1)[:n]


def check_classes(classes: list[int] | None, num_classes: int) -> list[int]:
    if not classes:
        return list(range(num_classes))
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise ConfigError(f"--classes: expected class indices in [0, {num_classes}), found {bad[0]}")
    return list(classes)


@torch.no_grad()
def generate(
    method: Method, n: int, classes: list[int] | None = None, seed: int = 0, batch_size: int = 500,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n samples (float, data range) and their conditioning labels, balanced over `classes`."""
    gen = torch.Generator().manual_seed(seed)
    labels = balanced_labels(n, check_classes(classes, method.num_classes)) if method.conditional else None
    out = []
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        z = method.latent(stop - start, generator=gen).to(device)
        c = labels[start:stop].to(device) if labels is not None else None
        out.append(method.generate(z, c).cpu())
    return torch.cat(out), labels


def save_samples(path: str | Path, x: torch.Tensor, labels: torch.Tensor | None) -> Path:
    """Write samples in the interchange format, atomically."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    if x.dim() == 4:
        arrays["images"] = to_uint8_nhwc(x)
    else:
        arrays["points"] = x.float().numpy()
    if labels is not None:
        arrays["labels"] = labels.numpy().astype(np.int64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    try:
        atomic_write(path, lambda tmp: tmp.write_bytes(buf.getvalue()))
    except OSError as exc:
        raise SamplesError(f"samples file {path}: cannot write ({exc.strerror})") from None
    return path
