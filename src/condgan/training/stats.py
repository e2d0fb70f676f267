"""Report statistics by name from anywhere; collect them once per logging tick.

Modelled on stylegan2-ada's `training_stats`: code deep inside a method calls `report(name, value)`
without a logger being threaded through constructors; the loop calls `collect()` every
`log_every` steps to get the means since the last tick.
"""

from __future__ import annotations

from collections import defaultdict

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
