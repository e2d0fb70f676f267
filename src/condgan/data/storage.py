"""The training set as the training loop reads it: where it lives, each step's batch, random access.

Storage kinds (`data.storage`):
- memory: every image decoded once into memory as uint8 (4× less than float32) and moved to the
  device whole; each step indexes its batch there and converts it to float in [-1, 1].
- stream: images read by index by `data.num_workers` DataLoader workers a few steps ahead of the
  step that uses them: an image folder (decoded, center-cropped and resized by PIL in the workers)
  or a pack (`condgan data pack`: memory-mapped uint8 shards). What stays in memory is tens of
  bytes per image (its path, label and place in the permutation), not its pixels.
- auto (the default): memory when the decoded uint8 size N×C×R×R is at most `auto_memory_limit()`
  = min(AUTO_MEMORY_BYTES = 2 GiB, a quarter of the machine's physical memory), else stream; the
  choice and its reason are printed and kept in every checkpoint's meta (`meta["data"]`).
Datasets read whole from their files (IDX, CIFAR-10, stacked, the 2D toys) are always in memory;
stream applies to `folder` and `packed`.

Every kind reads the same uint8 values in the same order (condgan.data.sampler), so the storage
kind, the number of workers and the choice of auto never change what a run computes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterator, Union

import numpy as np
import torch
from torch.utils.data import Sampler

from condgan.config import DataConfig
from condgan.data import load_dataset
from condgan.data.base import LabelledData, random_subset, uint8_to_unit
from condgan.data.folder import scan_folder
from condgan.data.items import BadFiles, Batch, ImageItems
from condgan.data.packed import open_pack
from condgan.data.sampler import EpochSampler
from condgan.errors import ConfigError

AUTO_MEMORY_BYTES = 2 << 30
STREAMABLE = ("folder", "packed")
_VIEW_BATCH = 256  # images per worker batch when a view reads many streamed images at once


def default_workers() -> int:
    """`data.num_workers` when unset: the usable cores less one (the training process), 1 to 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores - 1))


def auto_memory_limit() -> int:
    """The most uint8 bytes `data.storage=auto` keeps in memory: 2 GiB, or a quarter of the
    physical memory when that is less."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = None
    return min(AUTO_MEMORY_BYTES, physical // 4) if physical else AUTO_MEMORY_BYTES


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


@dataclass
class TrainingData:
    """The training set and how it is stored.

    Attributes:
        data: a LabelledData (memory) or the ImageItems read while training (stream).
        storage: "memory" or "stream".
        reason: why (`data.storage` given, or auto's comparison), for the announced line and the run's record.
        num_workers: DataLoader workers reading a streamed set.
        bad: the bad files left out or replaced (folders), named in the run's record.
        extra: what else identifies the data in the record (a pack's content hash).
        chosen: the storage was a choice (folders and packs), which training announces.
    """

    data: Union[LabelledData, ImageItems]
    storage: str
    reason: str
    num_workers: int = 0
    bad: BadFiles | None = None
    extra: dict = field(default_factory=dict)
    chosen: bool = False

    @property
    def name(self) -> str:
        return self.data.name

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.data.class_names

    @property
    def num_classes(self) -> int:
        return len(self.data.class_names)

    @property
    def y(self) -> torch.Tensor:
        return self.data.y

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.data.sample_shape)

    @property
    def is_image(self) -> bool:
        return self.data.is_image

    def __len__(self) -> int:
        return len(self.data)

    def describe(self) -> str:
        """One line: what was loaded and where it lives."""
        shape = "×".join(map(str, self.sample_shape))
        size = f", {_size(self.data.nbytes)} as {'uint8' if self.is_image else 'float32'}"
        workers = f"by {self.num_workers} worker{'s' * (self.num_workers != 1)}" if self.num_workers \
            else "in the training process"
        how = f"streamed {workers}" if self.storage == "stream" else "in memory"
        return f"condgan: data: {self.name}: {len(self)} samples of {shape}{size}; {how} ({self.reason})"

    def record(self) -> dict:
        """The run's record of the data (checkpoint meta): storage, reason, bad files, identity."""
        out = {"storage": self.storage, "reason": self.reason, **self.extra}
        if self.bad is not None:
            out["bad_files"] = self.bad.record()
        return out


def choose_storage(requested: str, nbytes: int, limit: int | None = None) -> tuple[str, str]:
    """(storage, reason) for `data.storage` = `requested` and a set of `nbytes` decoded bytes."""
    if requested != "auto":
        return requested, f"data.storage={requested}"
    limit = auto_memory_limit() if limit is None else limit
    if nbytes <= limit:
        return "memory", f"data.storage=auto: {_size(nbytes)} is at most the limit of {_size(limit)}"
    return "stream", f"data.storage=auto: {_size(nbytes)} is more than the limit of {_size(limit)}"


def open_training_data(d: DataConfig, seed: int) -> TrainingData:
    """The training split of `d`, stored as `d.storage` says (see the module docstring).

    `seed` draws the `data.num_samples` subset, taken after `data.classes` as `load_dataset` does.
    Folders are scanned (headers read, bad files refused or left out, `d.on_bad_file`) before the
    choice, which needs their size.
    """
    workers = d.num_workers if d.num_workers is not None else default_workers()
    if d.name not in STREAMABLE:
        if d.storage == "stream":
            raise ConfigError(f"config field data.storage: stream reads data.name {' or '.join(STREAMABLE)}; "
                              f"{d.name} is read whole from its files, found stream")
        data = load_dataset(d.name, "train", data_dir=d.data_dir, resolution=d.resolution, channels=d.channels,
                            num_samples=d.num_samples, seed=seed, classes=d.classes)
        return TrainingData(data, "memory", f"{d.name} is read whole from its files")
    if d.data_dir is None:
        raise ConfigError(f"config field data.data_dir: dataset {d.name!r} needs it (--data-dir), found none")
    if d.name == "folder":
        items: ImageItems = scan_folder(d.data_dir, d.resolution, d.channels, d.on_bad_file, workers,
                                        only_classes=d.classes)
        extra = {}
    else:
        items = open_pack(d.data_dir, d.resolution, d.channels)
        extra = {"content_sha256": items.index.content_sha256}
    if d.classes is not None:  # as load_dataset: the classes first, relabelled, then the subset
        items = items.with_classes(d.classes)
    if d.num_samples is not None:
        keep = random_subset(len(items), d.num_samples, seed, f"{d.name} train")
        items = items.select(keep.numpy()) if keep is not None else items
    storage, reason = choose_storage(d.storage, items.nbytes)
    data = items.load(workers) if storage == "memory" else items
    return TrainingData(data, storage, reason, workers, items.bad if d.name == "folder" else None, extra, chosen=True)


class _Steps(Sampler):
    """The DataLoader's batch sampler: this rank's indices of steps start … stop − 1, in order."""

    def __init__(self, sampler: EpochSampler, start: int, stop: int) -> None:
        self.sampler, self.start, self.stop = sampler, start, stop

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            yield self.sampler.indices(step).tolist()

    def __len__(self) -> int:
        return self.stop - self.start


class StepBatches:
    """The real batch of each step, in step order: (indices, float samples, labels), all on `device`.

    Memory: the stored set is moved to the device once (uint8) and indexed there. Stream: after
    `begin(start, stop)`, a DataLoader over the items reads steps start … stop − 1 ahead of use
    (pinned memory on CUDA); `close` ends its workers.
    """

    def __init__(self, td: TrainingData, sampler: EpochSampler, device: torch.device) -> None:
        self.td, self.sampler, self.device = td, sampler, device
        self.y = td.y.to(device)
        self.stored = td.data.stored.to(device) if isinstance(td.data, LabelledData) else None
        self._it: Iterator[Batch] | None = None
        self._next = 0

    def begin(self, start: int, stop: int) -> None:
        """Read steps `start` … `stop` − 1 from here on (streamed sets: start the loader)."""
        self._next = start
        if self.stored is None and start < stop:
            items: ImageItems = self.td.data
            self._it = iter(items.batches(_Steps(self.sampler, start, stop), self.td.num_workers,
                                          pin_memory=self.device.type == "cuda"))

    def get(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Step `step`'s batch; streamed sets give their steps in order only."""
        if self.stored is not None:
            idx = self.sampler.indices(step).to(self.device)
            x = self.stored[idx]
        else:
            if step != self._next or self._it is None:
                raise RuntimeError(f"streamed batches come in order: expected step {self._next}, asked for {step}")
            batch = next(self._it)
            idx = torch.tensor(batch.indices, dtype=torch.long, device=self.device)
            x = batch.images.to(self.device, non_blocking=True)
        self._next = step + 1
        return idx, (uint8_to_unit(x) if x.dtype == torch.uint8 else x), self.y[idx]

    def view(self) -> "SampleView":
        """Random access to the whole set (see SampleView), sharing the memory kind's device copy."""
        return SampleView(self.td, self.device, self.stored)

    def close(self) -> None:
        self._it = None  # the DataLoader iterator's finaliser ends its workers


class SampleView:
    """The training samples by index as float on `device` (images in [-1, 1]), without holding them as float.

    `view[index]` takes a slice or integer indices (a tensor on any device, an array, a list); `len(view)`
    and `view.device` as for a tensor. What whole-set hooks read (Self-Cond GAN's clustering,
    `Method.prepare`/`on_step_end`) and the collapse monitor: in memory it indexes the stored set, a
    streamed set is read (in the workers for large requests).
    """

    def __init__(self, td: TrainingData, device: torch.device, stored: torch.Tensor | None = None) -> None:
        self.td, self.device = td, torch.device(device)
        self.stored = stored if stored is not None else (td.data.stored if isinstance(td.data, LabelledData) else None)

    def __len__(self) -> int:
        return len(self.td)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.td.sample_shape)

    def __getitem__(self, index) -> torch.Tensor:
        if self.stored is not None:
            if isinstance(index, torch.Tensor) and self.stored.device != index.device:
                index = index.to(self.stored.device)
            x = self.stored[index].to(self.device, non_blocking=True)
            return uint8_to_unit(x) if x.dtype == torch.uint8 else x
        rows = np.arange(len(self))[index] if isinstance(index, slice) else \
            np.asarray(torch.as_tensor(index).cpu(), dtype=np.int64).reshape(-1)
        items: ImageItems = self.td.data
        if self.td.num_workers and len(rows) > _VIEW_BATCH:
            chunks = [rows[i:i + _VIEW_BATCH].tolist() for i in range(0, len(rows), _VIEW_BATCH)]
            x = torch.cat([b.images for b in items.batches(chunks, self.td.num_workers)])
        else:
            x = items.read(rows)
        return uint8_to_unit(x.to(self.device, non_blocking=True))
