"""Report statistics by name from anywhere; collect them once per logging tick.

Modelled on stylegan2-ada's `training_stats`: code deep inside a method calls `report(name, value)`
without a logger being threaded through constructors; the loop calls `collect()` every
`log_every` steps to get the means since the last tick.

The accumulators (per name: the sum of the observations and their count) are part of a run's
state: `state()` and `load_state()` carry them through a checkpoint, so that when checkpoints and
logging ticks do not coincide the first row after a resume averages the same observations, in the
same order, as an uninterrupted run.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch

_sums: dict[str, torch.Tensor] = {}
_counts: dict[str, int] = defaultdict(int)


def report(name: str, value: torch.Tensor | float) -> None:
    """Add one observation of `name` (tensors are accumulated without a device sync)."""
    value = value.detach().float() if isinstance(value, torch.Tensor) else torch.tensor(float(value))
    _sums[name] = _sums[name] + value if name in _sums else value.clone()
    _counts[name] += 1


def collect() -> dict[str, float]:
    """Means of everything reported since the last call; resets the accumulators."""
    out = {name: float(total) / _counts[name] for name, total in sorted(_sums.items())}
    _sums.clear()
    _counts.clear()
    return out


def state() -> dict[str, Any]:
    """The accumulators since the last `collect()`: {"sums": {name: float32 tensor (CPU)}, "counts": {name: int}}."""
    return {"sums": {name: total.detach().cpu().clone() for name, total in _sums.items()},
            "counts": dict(_counts)}


def load_state(saved: dict[str, Any]) -> None:
    """Replace the accumulators with `saved` (from `state()`), as if its observations had just been reported."""
    _sums.clear()
    _counts.clear()
    for name, total in saved["sums"].items():
        _sums[name] = total.clone()
        _counts[name] = int(saved["counts"][name])
