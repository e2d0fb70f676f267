"""Images read one at a time by index (the streaming storage), and the record of bad files.

An `ImageItems` is a map-style `torch.utils.data.Dataset` of uint8 C×H×W images whose labels are
known up front (`y`): DataLoader workers call `items[i]` while training, the main process reads
random subsets with `read`, and `load` decodes everything into a `LabelledData` (memory storage).
The two kinds are `FolderImages` (image files, decoded, center-cropped and resized in the workers;
condgan.data.folder) and `PackedImages` (memory-mapped shards written by `condgan data pack`;
condgan.data.packed). Both give the same uint8 values whichever way they are read, so the storage
kind never changes what a run computes.

Bad files (`data.on_bad_file`): an item that cannot be decoded comes back with a `Failure`
(file name and reason) instead of silently: with "error" its image is empty and the reader raises
a DataError naming the file; with "skip" the next good file of the same class takes its place and
the failure is reported by name (`BadFiles`).
"""

from __future__ import annotations

import math
import sys
from typing import Iterable, Iterator, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from condgan.data.base import LabelledData, check_class_indices
from condgan.errors import DataError

ON_BAD_FILE = ("error", "skip")
NAMED_IN_WARNING = 5  # bad files named in the warning line (all of them are counted)
NAMED_IN_RECORD = 50  # bad files named in a run's checkpoint meta
MAX_MEMORY_BYTES = 4 << 30  # the most uint8 image bytes `load` holds in memory (larger sets stream)
_LOAD_BATCH = 256  # images per worker batch when loading a whole set


class Failure(NamedTuple):
    """A file that could not be used: its name (relative to the dataset's root) and why."""

    name: str
    reason: str


class BadFiles:
    """The bad files of one dataset, in the order found, each named once; `where` is its root."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.found: list[Failure] = []
        self._names: set[str] = set()

    def add(self, failure: Failure) -> bool:
        """Record `failure`; False when its file was recorded already."""
        if failure.name in self._names:
            return False
        self._names.add(failure.name)
        self.found.append(failure)
        return True

    def __len__(self) -> int:
        return len(self.found)

    def warning(self) -> str:
        """One line: how many files were skipped and the first few by name, with their reasons."""
        shown = ", ".join(f"{f.name} ({f.reason})" for f in self.found[:NAMED_IN_WARNING])
        more = len(self.found) - NAMED_IN_WARNING
        return (f"condgan: warning: {self.where}: skipped {len(self.found)} bad file{'s' * (len(self.found) != 1)} "
                f"(data.on_bad_file=skip): {shown}" + (f" and {more} more" if more > 0 else ""))

    def error(self, first: Failure | None = None) -> DataError:
        """The DataError of on_bad_file=error: the first bad file by name, and how many there are."""
        first = first or self.found[0]
        others = len(self.found) - 1 if self.found else 0
        count = f"; {others} more bad file{'s' * (others != 1)}" if others > 0 else ""
        return DataError(f"{self.where}/{first.name}: {first.reason}{count} (data.on_bad_file=error; "
                         "data.on_bad_file=skip leaves bad files out and names them)")

    def record(self) -> dict:
        """What a run keeps of them (checkpoint meta): the count and the first NAMED_IN_RECORD."""
        return {"count": len(self.found), "first": [f"{f.name}: {f.reason}" for f in self.found[:NAMED_IN_RECORD]]}


class Item(NamedTuple):
    """`ImageItems[i]`: the uint8 C×H×W image, the index asked for, the failures met on the way (a
    bad file replaced by another of its class), and whether the image is usable (False: a bad file
    that was not replaced; its image is zeros)."""

    image: torch.Tensor
    index: int
    failures: tuple[Failure, ...]
    ok: bool = True


class Batch(NamedTuple):
    """Items collated: uint8 N×C×H×W images, their indices, every failure met, and which items are usable."""

    images: torch.Tensor
    indices: list[int]
    failures: list[Failure]
    ok: list[bool]


def collate(items: list[Item]) -> Batch:
    return Batch(torch.stack([it.image for it in items]), [it.index for it in items],
                 [f for it in items for f in it.failures], [it.ok for it in items])


class ImageItems(Dataset):
    """uint8 C×H×W images by index, with their labels known up front (see the module docstring).

    Subclasses set `name`, `root` (where file names are relative to), `class_names`, `y` (int64 N),
    `sample_shape` (C, H, W), `on_bad_file` and `bad`, and implement `_item(i)` and `select(keep)`;
    they may override `read` and `load` with faster bulk reads.
    """

    name: str
    root: str
    class_names: tuple[str, ...]
    y: torch.Tensor
    sample_shape: tuple[int, int, int]
    on_bad_file: str
    bad: BadFiles

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_image(self) -> bool:
        return True

    @property
    def nbytes(self) -> int:
        """Bytes the whole set takes decoded, as uint8."""
        return len(self) * math.prod(self.sample_shape)

    def __getitem__(self, i: int) -> Item:
        return self._item(int(i))

    def _item(self, i: int) -> Item:
        raise NotImplementedError

    def select(self, keep: np.ndarray) -> "ImageItems":
        """The items at indices `keep` (sorted, distinct), as a new set."""
        raise NotImplementedError

    def with_classes(self, classes: Sequence[int]) -> "ImageItems":
        """The items of `classes` (indices into `class_names`), relabelled 0..k-1 in the order given,
        with their names (`data.classes`, as `condgan.data.select_classes` for sets in memory)."""
        check_class_indices(classes, self.num_classes, self.name)
        local = torch.full((self.num_classes,), -1, dtype=torch.long)
        local[torch.tensor(list(classes))] = torch.arange(len(classes))
        keep = torch.nonzero(local[self.y] >= 0).flatten().numpy()
        out = self.select(keep)
        out.y, out.class_names = local[out.y], tuple(self.class_names[c] for c in classes)
        return out

    def check(self, batch: Batch) -> None:
        """Record a batch's failures in `bad`: a DataError under on_bad_file=error, else one warning per new
        file; a DataError too when a bad file found no replacement (no file of its class decodes)."""
        for failure in batch.failures:
            if self.on_bad_file == "error":
                raise self.bad.error(failure)
            if self.bad.add(failure):
                print(f"condgan: warning: {self.root}/{failure.name}: {failure.reason}; replaced by the next good "
                      "file of its class (data.on_bad_file=skip)", file=sys.stderr, flush=True)
        if not all(batch.ok):
            raise DataError(f"{self.root}/{batch.failures[-1].name}: {batch.failures[-1].reason}; no file of its "
                            "class decodes, so none can take its place")

    def read(self, index: np.ndarray | torch.Tensor | list[int]) -> torch.Tensor:
        """The images at `index` as uint8 N×C×H×W, read in this process."""
        index = np.asarray(torch.as_tensor(index).cpu(), dtype=np.int64).reshape(-1)
        items = [self._item(int(i)) for i in index]
        batch = collate(items) if items else Batch(torch.empty((0, *self.sample_shape), dtype=torch.uint8), [], [], [])
        self.check(batch)
        return batch.images

    def batches(self, index_batches: Iterable[list[int]], num_workers: int, pin_memory: bool = False,
                prefetch: int = 4, check: bool = True) -> Iterator[Batch]:
        """Batches of the given index lists, in order, read by `num_workers` DataLoader workers (0: here);
        their failures are `check`ed unless `check` is False (the caller handles them)."""
        loader = DataLoader(self, batch_sampler=index_batches, num_workers=num_workers, collate_fn=collate,
                            pin_memory=pin_memory, worker_init_fn=_worker_init if num_workers else None,
                            prefetch_factor=prefetch if num_workers else None,
                            generator=torch.Generator())  # the global RNG is the training loop's
        for batch in loader:
            if check:
                self.check(batch)
            yield batch

    def load(self, num_workers: int = 0) -> LabelledData:
        """Every image in memory (uint8), decoded by `num_workers` workers."""
        if self.nbytes > MAX_MEMORY_BYTES:
            raise DataError(f"{self.root}: {len(self)} images of {'×'.join(map(str, self.sample_shape))} need "
                            f"{self.nbytes} bytes in memory, more than the limit of {MAX_MEMORY_BYTES}; "
                            "stream them (data.storage=stream) or choose a smaller resolution")
        out = torch.empty((len(self), *self.sample_shape), dtype=torch.uint8)
        order = [list(range(i, min(i + _LOAD_BATCH, len(self)))) for i in range(0, len(self), _LOAD_BATCH)]
        start = 0
        for batch in self.batches(order, num_workers):
            out[start:start + len(batch.indices)] = batch.images
            start += len(batch.indices)
        return LabelledData(out, self.y.clone(), self.class_names, self.name)


def _worker_init(worker_id: int) -> None:
    """DataLoader workers leave SIGINT and SIGTERM to the main process, which saves at the next step
    and then ends them (a worker killed by the terminal's Ctrl-C would fail the next batch instead)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
