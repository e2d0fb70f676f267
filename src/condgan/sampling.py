"""Generation from a trained run: load its model, and the one sampling function.

`generate(method, n, classes)` is how every part of condgan draws samples (`condgan sample`, grids,
the collapse monitor, `condgan eval --run`, the benchmarks). Which classes the samples are
conditioned on is always explicit, a `Classes`:

    Classes.balanced([3, 7])   ⌊n/K⌋ or ⌈n/K⌉ samples of each listed class (default: all classes)
    Classes.prior()            the method's training distribution (`Method.sample_classes`: uniform
                               classes, or Self-Cond GAN's cluster sizes)
    Classes.given(labels)      exactly these labels (e.g. a grid's columns)

Unconditional methods ignore the classes and return no labels. Noise comes from one generator
seeded by `seed`, drawn batch by batch in order, so sample i is the same whatever the batch size
of the consumer, the number of ranks (batches are shared out over torch.distributed ranks and
gathered), or the output type.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from condgan.config import Config, RecipeConfig, load_config, resolve_config
from condgan.data.base import to_uint8_nhwc
from condgan.dist import DistInfo, gather, shard
from condgan.errors import CheckpointError, ConfigError, one_line
from condgan.methods import Method, build_method
from condgan.methods.class_splits import ClassSplits
from condgan.nets import DataSpec
from condgan.report.grid import tile
from condgan.run.checkpoint import latest_checkpoint, load_checkpoint, load_ema_state, load_model_state
from condgan.run.directory import CONFIG_FILE
from condgan.run.splits import MANIFEST, is_splits_root, read_manifest
from condgan.samples import Samples, make_samples


def generator_weights(recipe: RecipeConfig, ema: bool) -> str:
    """What samples come from, as every output says it: "G-EMA (recipe.ema_decay 0.999, from step 0)"
    (with ", ramp-up 0.05" before "from" when recipe.ema_rampup is on) for the averaged generator
    (condgan.training.ema), else "live G"."""
    if not ema:
        return "live G"
    rampup = f", ramp-up {recipe.ema_rampup:g}" if recipe.ema_rampup else ""
    return f"G-EMA (recipe.ema_decay {recipe.ema_decay:g}{rampup}, from step {recipe.ema_start})"


@dataclass
class LoadedRun:
    """A trained model and what it was trained on. For a class-splits root (`parts` non-empty) the
    method routes each global class to its split's generator, `step` is the smallest of the
    splits' steps and `checkpoint` the root's splits.json."""

    method: Method
    config: Config
    class_names: list[str]
    sample_shape: tuple[int, ...]
    step: int
    checkpoint: Path
    ema: bool = False  # the generator holds the checkpoint's G-EMA weights
    parts: tuple["LoadedRun", ...] = ()  # a splits root: each split's run, in split order

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def weights(self) -> str:
        """Which generator weights the samples come from (`generator_weights`)."""
        return generator_weights(self.config.recipe, self.ema)


def load_run(run: str | Path, checkpoint: str | Path | None = None, device: str | torch.device = "cpu",
             use_ema: bool = True) -> LoadedRun:
    """The model of a run directory (its newest checkpoint unless `checkpoint` is given), in eval mode.

    When the checkpoint holds G-EMA weights (`recipe.ema_decay` > 0), the generator is the average
    unless `use_ema` is False; `LoadedRun.ema` and `.weights` say which.

    A class-splits root (condgan.run.splits) loads as one model over all the dataset's classes:
    every split's newest checkpoint, behind the routing of `ClassSplits.generate` (global class →
    its split's generator with the local label), so samples carry global labels."""
    run = Path(run)
    if is_splits_root(run):
        if checkpoint:
            raise ConfigError(f"--checkpoint: {run} is a class-splits root, one run per split; give a split's "
                              f"directory (e.g. {run}/split-000) to use one of its checkpoints")
        return _load_splits(run, device, use_ema)
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
    ema = use_ema and state.get("ema") is not None
    if ema:
        load_ema_state(method, state["ema"], path)
    method.to(device).eval()
    return LoadedRun(method, cfg, names, spec.sample_shape, int(state["step"]), path, ema)


def _load_splits(root: Path, device: str | torch.device, use_ema: bool) -> LoadedRun:
    """Every split's newest checkpoint behind one routing `ClassSplits` (see `load_run`)."""
    manifest = read_manifest(root)
    parts: list[LoadedRun] = []
    for split in manifest.splits:
        where = manifest.path(split)
        if latest_checkpoint(where) is None:
            raise CheckpointError(f"splits root {root}: {split.dir} has no checkpoint (not trained yet); train it with "
                                  f"`condgan train --out {where}` or `condgan splits run {root}`")
        part = load_run(where, device=device, use_ema=use_ema)
        if tuple(part.class_names) != split.class_names:
            raise CheckpointError(f"splits root {root}: {split.dir} was trained on classes "
                                  f"{one_line(part.class_names, 80)}, {MANIFEST} gives it {one_line(split.class_names, 80)}")
        first = parts[0] if parts else part
        if (part.sample_shape, part.method.z_dim, part.method.conditional) != \
                (first.sample_shape, first.method.z_dim, True):
            raise CheckpointError(f"splits root {root}: {split.dir} generates {list(part.sample_shape)} from "
                                  f"z of {part.method.z_dim} (conditional: {part.method.conditional}), expected "
                                  f"{list(first.sample_shape)} from z of {first.method.z_dim}, conditional")
        parts.append(part)
    method = ClassSplits([p.method for p in parts], [list(s.classes) for s in manifest.splits]).to(device).eval()
    return LoadedRun(method, resolve_config(base=manifest.config), list(manifest.class_names), parts[0].sample_shape,
                     min(p.step for p in parts), root / MANIFEST, ema=all(p.ema for p in parts), parts=tuple(parts))


def _check_same_model(run_cfg: Config, ckpt_cfg: Config, path: Path) -> None:
    """Refuse a checkpoint whose data/model/method/recipe settings differ from the run's config."""
    for section in ("data", "model", "method", "recipe"):
        ours, theirs = getattr(run_cfg, section).__dict__, getattr(ckpt_cfg, section).__dict__
        for key in ours:
            if key != "data_dir" and ours[key] != theirs[key]:
                raise CheckpointError(
                    f"checkpoint {path}: made for another architecture: {section}.{key} is {theirs[key]!r} "
                    f"there, {ours[key]!r} in this run's {CONFIG_FILE}"
                )


def check_classes(classes: list[int] | None, num_classes: int) -> list[int]:
    """`classes` checked against the model's range (None or empty: all of them)."""
    if not classes:
        return list(range(num_classes))
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise ConfigError(f"--classes: expected class indices in [0, {num_classes}), found {bad[0]}")
    return list(classes)


@dataclass(frozen=True)
class Classes:
    """The class distribution of generated samples; build with `balanced`, `prior` or `given`."""

    kind: str
    classes: tuple[int, ...] = ()  # balanced: the classes cycled through (empty: all)
    labels: torch.Tensor | None = None  # given: one label per sample

    @staticmethod
    def balanced(classes: list[int] | None = None) -> "Classes":
        return Classes("balanced", tuple(classes or ()))

    @staticmethod
    def prior() -> "Classes":
        return Classes("prior")

    @staticmethod
    def given(labels: torch.Tensor) -> "Classes":
        return Classes("given", labels=labels.long().cpu())

    def draw(self, method: Method, n: int, seed: int) -> torch.Tensor | None:
        """n labels for `method` (None for an unconditional method)."""
        if not method.conditional:
            return None
        if self.kind == "balanced":
            order = torch.tensor(check_classes(list(self.classes), method.num_classes), dtype=torch.long)
            return order.repeat(n // len(order) + 1)[:n]
        if self.kind == "prior":  # a stream of its own, apart from the noise's
            label_seed = int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
            return method.sample_classes(n, generator=torch.Generator().manual_seed(label_seed))
        if self.labels is None or len(self.labels) != n:
            raise ValueError(f"Classes.given: expected {n} labels, found {None if self.labels is None else len(self.labels)}")
        return self.labels


@torch.no_grad()
def generate(
    method: Method, n: int, classes: Classes = Classes.balanced(), *, z: torch.Tensor | None = None, seed: int = 0,
    batch_size: int = 500, device: str | torch.device = "cpu", uint8: bool = False, all_ranks: bool = True,
) -> tuple[torch.Tensor | np.ndarray, torch.Tensor | None]:
    """n samples of `method` and the labels they were conditioned on (None when unconditional).

    Returns float samples in the data's range (N×C×H×W images or N×2 points) as a tensor, or with
    `uint8` the samples-file layout as a numpy array (uint8 N×H×W×C images, float32 N×2 points),
    converted batch by batch so that memory holds the result and one float batch. `z` fixes the
    noise (n rows) instead of drawing it from `seed`. Under torch.distributed every rank calls it,
    each generates its share of the batches and every rank returns the whole set; `all_ranks=False`
    is for a call that one rank makes alone (rank 0's grids).
    """
    if n < 1:
        raise ConfigError(f"--n: expected a positive number of samples, found {n}")
    labels = classes.draw(method, n, seed)
    gen = torch.Generator().manual_seed(seed)
    mine = shard(-(-n // batch_size), None if all_ranks else DistInfo())
    parts = []
    for b, start in enumerate(range(0, n, batch_size)):
        stop = min(n, start + batch_size)
        zb = z[start:stop] if z is not None else method.latent(stop - start, generator=gen)
        if b not in mine:
            continue  # the draw above keeps later batches' noise in place
        c = labels[start:stop].to(device) if labels is not None else None
        x = method.generate(zb.to(device), c).float().cpu()
        parts.append(_convert(x, uint8))
    if not parts:  # more ranks than batches: an empty share of the right shape for `gather`
        x = method.generate(method.latent(1).to(device), labels[:1].to(device) if labels is not None else None)
        parts = [_convert(x.float().cpu(), uint8)[:0]]
    out = torch.cat(parts) if not uint8 else torch.from_numpy(np.concatenate(parts))
    out = gather(out) if all_ranks else out
    return (out.numpy() if uint8 else out), labels


def _convert(x: torch.Tensor, uint8: bool) -> torch.Tensor | np.ndarray:
    if not uint8:
        return x
    return to_uint8_nhwc(x) if x.dim() == 4 else x.numpy()


def draw_samples(method: Method, n: int, classes: Classes = Classes.balanced(), *, seed: int = 0,
                 device: str | torch.device = "cpu") -> Samples:
    """`generate` in the samples-file layout, with what the labels mean (`Method.label_kind`).

    The whole uint8 set is held in memory (then compressed into the file), so a request larger than
    the memory available now is refused before any sample is drawn."""
    _check_fits_in_memory(method, n)
    data, labels = generate(method, n, classes, seed=seed, device=device, uint8=True)
    return make_samples(data, labels, method.label_kind if labels is not None else "none")


def _check_fits_in_memory(method: Method, n: int) -> None:
    with torch.no_grad():
        one = method.generate(method.latent(1).to(next(method.parameters()).device), None if not method.conditional
                              else torch.zeros(1, dtype=torch.long, device=next(method.parameters()).device))
    per_sample = one[0].numel() * (1 if one.dim() == 4 else 4)  # uint8 pixels, float32 points
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if 2 * n * per_sample > available:  # the array and its compressed copy
        raise ConfigError(f"--n: {n} samples of {per_sample} bytes need {2 * n * per_sample / 2**30:.1f} GiB, "
                          f"found {available / 2**30:.1f} GiB of memory available; ask for fewer samples")


@torch.no_grad()
def class_grid(method: Method, z: torch.Tensor, classes: list[int], device: str | torch.device = "cpu") -> np.ndarray:
    """The AC-GAN paper's fig. 9 layout as uint8 pixels: row i uses z[i] for every class, column j
    is class classes[j] (an unconditional method: every cell of a row is the same sample). Drawn by
    the calling process alone, also under torch.distributed."""
    rows, cols = z.shape[0], len(classes)
    labels = torch.tensor(classes, dtype=torch.long).repeat(rows)
    x, _ = generate(method, rows * cols, Classes.given(labels), z=z.cpu().repeat_interleave(cols, dim=0),
                    device=device, uint8=True, all_ranks=False)
    return tile(x, rows, cols)
