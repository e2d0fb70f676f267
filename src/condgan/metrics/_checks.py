"""Boundary checks shared by the metric functions (STYLE #7).

Metrics accept numpy arrays or torch tensors; these helpers convert them to one type and
raise `SamplesError` (bad arrays) or `ConfigError` (bad parameters) with a message that names
the argument, what was expected and what was found.
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch

from condgan.errors import ConfigError, SamplesError

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence[float]]


def to_numpy(x: ArrayLike, name: str) -> np.ndarray:
    """`x` as a numpy array (tensors are detached and copied to the CPU, lists converted)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple)):
        return np.asarray(x)
    raise SamplesError(f"{name}: expected a numpy array, torch tensor or list, found {type(x).__name__}")


def features(x: ArrayLike, name: str, min_rows: int = 1, keep_float32: bool = False) -> np.ndarray:
    """A finite float64 matrix (N, D) with N >= `min_rows` (float32 input stays float32 with
    `keep_float32`, for callers that convert while computing, without an extra float64 copy)."""
    a = to_numpy(x, name)
    if a.ndim != 2:
        raise SamplesError(f"{name}: expected a 2-D array (samples, features), found shape {tuple(a.shape)}")
    if a.shape[0] < min_rows:
        raise SamplesError(f"{name}: expected at least {min_rows} rows, found {a.shape[0]}")
    if not (keep_float32 and a.dtype == np.float32):
        a = a.astype(np.float64, copy=False)
    if not np.isfinite(a).all():
        raise SamplesError(f"{name}: expected finite values, found NaN or infinity")
    return a


def features_tensor(x: ArrayLike, name: str, min_rows: int = 1) -> torch.Tensor:
    """A finite float64 tensor (N, D) on the input's device (numpy input goes to the CPU)."""
    t = x.detach() if isinstance(x, torch.Tensor) else torch.from_numpy(to_numpy(x, name))
    if t.dim() != 2:
        raise SamplesError(f"{name}: expected a 2-D array (samples, features), found shape {tuple(t.shape)}")
    if t.shape[0] < min_rows:
        raise SamplesError(f"{name}: expected at least {min_rows} rows, found {t.shape[0]}")
    t = t.to(torch.float64)
    if not torch.isfinite(t).all():
        raise SamplesError(f"{name}: expected finite values, found NaN or infinity")
    return t


def same_width(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, name_a: str, name_b: str) -> None:
    """Both matrices must have the same number of columns (features)."""
    if a.shape[1] != b.shape[1]:
        raise SamplesError(
            f"{name_b}: expected {a.shape[1]} features per sample like {name_a}, found {b.shape[1]}"
        )


def labels(y: ArrayLike, n: int, name: str, num_classes: int | None = None) -> np.ndarray:
    """An int64 vector of length `n` (with values in [0, num_classes) when given)."""
    a = to_numpy(y, name)
    if a.ndim != 1 or a.shape[0] != n:
        raise SamplesError(f"{name}: expected a 1-D array of {n} labels, found shape {tuple(a.shape)}")
    if a.dtype.kind not in "iu":
        raise SamplesError(f"{name}: expected integer labels, found dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    if num_classes is not None and n > 0 and (a.min() < 0 or a.max() >= num_classes):
        raise SamplesError(
            f"{name}: expected labels in [0, {num_classes}), found values in [{a.min()}, {a.max()}]"
        )
    return a


def images(x: torch.Tensor, name: str) -> torch.Tensor:
    """A floating tensor (N, C, H, W)."""
    if not isinstance(x, torch.Tensor):
        raise SamplesError(f"{name}: expected a torch tensor (N, C, H, W), found {type(x).__name__}")
    if x.dim() != 4:
        raise SamplesError(f"{name}: expected a 4-D tensor (N, C, H, W), found shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise SamplesError(f"{name}: expected a floating tensor in [-1, 1], found dtype {x.dtype}")
    return x


def positive_int(value: int, name: str) -> int:
    """`value` must be an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name}: expected an integer >= 1, found {value!r}")
    return int(value)
