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
from condgan.errors import CheckpointError, ConfigError
from condgan.methods import Method, build_method
from condgan.nets import DataSpec
from condgan.data.base import to_uint8_nhwc
from condgan.io import atomic_write_bytes
from condgan.run.checkpoint import latest_checkpoint, load_checkpoint, load_model_state
from condgan.run.directory import CONFIG_FILE


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
    state = load_checkpoint(path)  # structure and meta checked (run.checkpoint.validate_checkpoint)
    meta = state["meta"]
    cfg = resolve_config(base=meta["config"])
    spec = DataSpec(tuple(meta["sample_shape"]), meta["num_classes"], meta["num_samples"])
    names = list(meta["class_names"])
    run_config = run / CONFIG_FILE
    if run_config.exists():  # the checkpoint must be one of this run's model
        _check_same_model(load_config(run_config), cfg, path)
    try:
        method = build_method(cfg, spec)
    except ConfigError as exc:  # e.g. a resolution the architecture does not support
        raise CheckpointError(f"checkpoint {path}: cannot build its model ({exc})") from None
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


def _batches(
    method: Method, n: int, classes: list[int] | None, seed: int, batch_size: int, device: str | torch.device,
    keep: range | None = None,
):
    """Yield (start, stop, samples on CPU, labels or None) per batch of `batch_size`, in order.

    Noise comes from one generator seeded by `seed`, drawn for every batch in order, so batch b
    holds the same samples whichever batches (`keep`, indices of batches) a caller runs G on.
    """
    gen = torch.Generator().manual_seed(seed)
    labels = balanced_labels(n, check_classes(classes, method.num_classes)) if method.conditional else None
    for b, start in enumerate(range(0, n, batch_size)):
        stop = min(n, start + batch_size)
        z = method.latent(stop - start, generator=gen)
        if keep is not None and b not in keep:
            continue  # the draw above keeps later batches' noise in place
        c = labels[start:stop] if labels is not None else None
        x = method.generate(z.to(device), c.to(device) if c is not None else None).float().cpu()
        yield start, stop, x, c


@torch.no_grad()
def generate(
    method: Method, n: int, classes: list[int] | None = None, seed: int = 0, batch_size: int = 500,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n samples (float, data range) and their conditioning labels, balanced over `classes`.

    Float32 for all n at once (50,000 RGB 128×128 samples: 9.8 GB); for the samples file use
    `generate_uint8`, which converts batch by batch (2.5 GB).
    """
    labels = balanced_labels(n, check_classes(classes, method.num_classes)) if method.conditional else None
    out: torch.Tensor | None = None
    for start, stop, x, _ in _batches(method, n, classes, seed, batch_size, device):
        if out is None:  # filled in place: no list of batches plus a concatenated copy
            out = torch.empty((n, *x.shape[1:]), dtype=torch.float32)
        out[start:stop] = x
    assert out is not None  # n > 0: at least one batch
    return out, labels


@torch.no_grad()
def generate_uint8(
    method: Method, n: int, classes: list[int] | None = None, seed: int = 0, batch_size: int = 500,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, torch.Tensor | None]:
    """Like `generate`, in the samples-file layout: images uint8 N×H×W×C, 2D points float32 N×2.

    Streams: each batch is converted as soon as it is generated, so memory holds the uint8 result
    and one float batch. Under torch.distributed every rank generates its contiguous share of the
    batches and `gather` gives every rank the whole set, identical to a single-process call.
    """
    from condgan.dist import gather, shard

    labels = balanced_labels(n, check_classes(classes, method.num_classes)) if method.conditional else None
    keep = shard(-(-n // batch_size))
    parts = [to_uint8_nhwc(x) if x.dim() == 4 else x.numpy()
             for _, _, x, _ in _batches(method, n, classes, seed, batch_size, device, keep)]
    if not parts:  # more ranks than batches: an empty share of the right shape for `gather`
        z, c = method.latent(1).to(device), labels[:1].to(device) if labels is not None else None
        x = method.generate(z, c).float().cpu()
        parts = [(to_uint8_nhwc(x) if x.dim() == 4 else x.numpy())[:0]]
    return gather(torch.from_numpy(np.concatenate(parts))).numpy(), labels


def save_samples(path: str | Path, x: torch.Tensor | np.ndarray, labels: torch.Tensor | None) -> Path:
    """Write samples in the interchange format, atomically.

    `x`: float samples (as from `generate`) or the arrays of `generate_uint8` (uint8 N×H×W×C images,
    float32 N×2 points), written as they are.
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    if isinstance(x, np.ndarray):
        arrays["images" if x.ndim == 4 else "points"] = x
    elif x.dim() == 4:
        arrays["images"] = to_uint8_nhwc(x)
    else:
        arrays["points"] = x.float().numpy()
    if labels is not None:
        arrays["labels"] = labels.numpy().astype(np.int64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())  # a failed write is a WriteError naming the file
    return path
