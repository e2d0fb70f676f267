"""Which training samples each step reads: seeded epochs, per-rank slices, a resumable position.

The samples form an endless sequence perm_0 ++ perm_1 ++ …, where perm_e is a permutation of
range(N) drawn from a generator seeded by (train.seed, STREAM_EPOCH, e). Step t's global batch of B
is the next B items of that sequence: items [o + (t − t0)·B, o + (t − t0 + 1)·B), with (t0, o) the
origin, (0, 0) for a new run. A batch may straddle two epochs, so nothing is dropped: every sample
is read exactly once per epoch. With W ranks (B divisible by W) rank r takes the contiguous slice
[r·B/W, (r + 1)·B/W) of every global batch: each sample of an epoch goes to exactly one rank, the
ranks need no communication, and the trajectory does not depend on W.

The position is saved in every checkpoint (`state_dict(step)`: the step, the epoch and the position
in it at which that step's batch begins, and N) and restored on resume (`load_state_dict`), which
refuses a data set of another size. The same sampler drives every storage kind (memory, stream,
packed), so they read the same samples in the same order.
"""

from __future__ import annotations

import torch

from condgan.errors import ConfigError, DataError
from condgan.seeds import STREAM_EPOCH, derive_seed

_CACHED_EPOCHS = 3  # permutations kept (a prefetching loader runs ahead of the step being trained)


class EpochSampler:
    """The indices of step t's batch for one rank (see the module docstring)."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if batch_size > n:
            raise ConfigError(f"config field train.batch_size: expected at most the {n} training samples, "
                              f"found {batch_size}")
        if batch_size % world_size:
            raise ValueError(f"train.batch_size {batch_size} is not divisible by the {world_size} ranks")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.local = batch_size // world_size
        self.offset = rank * self.local  # where this rank's slice starts in the global batch
        self.origin = (0, 0)  # (step, item of the endless sequence at which that step's batch begins)
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) >= _CACHED_EPOCHS:
                del self._perms[min(self._perms)]
            gen = torch.Generator().manual_seed(derive_seed(self.seed, STREAM_EPOCH, epoch))
            self._perms[epoch] = torch.randperm(self.n, generator=gen)
        return self._perms[epoch]

    def start(self, step: int) -> int:
        """The item of the endless sequence at which step `step`'s global batch begins."""
        t0, o = self.origin
        if step < t0:
            raise ValueError(f"step {step} lies before the sampler's origin, step {t0}")
        return o + (step - t0) * self.batch_size

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, position in that epoch's permutation) where step `step`'s global batch begins."""
        return divmod(self.start(step), self.n)

    def items(self, start: int, count: int) -> torch.Tensor:
        """Items [start, start + count) of the endless sequence (int64 indices into the data)."""
        parts = []
        while count > 0:
            epoch, pos = divmod(start, self.n)
            take = min(count, self.n - pos)
            parts.append(self._perm(epoch)[pos:pos + take])
            start, count = start + take, count - take
        return torch.cat(parts)

    def indices(self, step: int) -> torch.Tensor:
        """This rank's B/W indices of step `step`."""
        return self.items(self.start(step) + self.offset, self.local)

    def state_dict(self, step: int) -> dict[str, int]:
        """What a checkpoint of step `step` (the next step to run) keeps: where its batch begins."""
        epoch, position = self.position(step)
        return {"step": step, "epoch": epoch, "position": position, "num_samples": self.n}

    def load_state_dict(self, state: dict[str, int], where: str = "checkpoint") -> None:
        """Continue from a saved position; refuses one made for a data set of another size."""
        try:
            step, epoch, position, n = (int(state[k]) for k in ("step", "epoch", "position", "num_samples"))
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{where}: sampler state: expected step, epoch, position and num_samples, "
                            f"found {state!r:.200}") from None
        if n != self.n:
            raise DataError(f"{where}: the run was trained on {n} samples, the data holds {self.n}; "
                            "resume with the data it was trained on")
        if not (0 <= position < n and epoch >= 0 and step >= 0):
            raise DataError(f"{where}: sampler state: position {position} of epoch {epoch} at step {step} "
                            f"is not a position in {n} samples")
        self.origin = (step, epoch * n + position)
