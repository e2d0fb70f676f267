"""The in-memory dataset type and the image conversions shared by the whole project.

Images are stored as uint8 N×C×H×W (0..255; 4× less memory than float32) and handed to their users
as float32 in [-1, 1], a batch at a time, on the device that uses them (`LabelledData.x`). On disk and
between tools (the samples .npz interchange format) they are uint8 NHWC. The conversions
u ↦ u/127.5 − 1 (`uint8_to_unit`, `images_to_unit_range`) and x ↦ round((x + 1)·127.5) clamped to
[0, 255] (`unit_to_uint8`, `to_uint8_nhwc`) round-trip every uint8 value exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from condgan.errors import ConfigError, DataError, one_line

# ITU-R BT.601 luma weights, the ones PIL's convert("L") uses, so that RGB→gray gives the same
# result whether it happens in PIL (image folders) or on tensors.
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)
# Images converted at once when a whole uint8 set is resized in float (bounds the float copy).
_CONVERT_CHUNK = 4096

# What `LabelledData.x` and `subset` accept: a slice, or integer indices (tensor on any device, array, list).
Index = Union[slice, torch.Tensor, np.ndarray, list]


@dataclass(frozen=True)
class LabelledData:
    """A labelled dataset held in memory.

    Attributes:
        stored: the samples as held: uint8 N×C×H×W images (what every loader returns), float32
            N×C×H×W images in [-1, 1] (sets made in memory: generated, resized or hand-built), or
            float32 N×D points (the 2D toys). Read them as float with `x()`.
        y: int64, shape N, class indices in [0, num_classes).
        class_names: one name per class, index = label.
        name: where the data came from, e.g. "fashion-mnist", "cifar10", "folder:/path", "ring".
    """

    stored: torch.Tensor
    y: torch.Tensor
    class_names: tuple[str, ...]
    name: str

    def __post_init__(self) -> None:
        # A LabelledData can be built by hand from Python, so check what every consumer relies on.
        s = self.stored
        if s.dim() not in (2, 4):
            raise DataError(f"{self.name}: samples must be N×C×H×W images or N×D points, found shape {tuple(s.shape)}")
        if not (s.dtype == torch.float32 or (s.dtype == torch.uint8 and s.dim() == 4)):
            raise DataError(f"{self.name}: samples must be uint8 or float32 images or float32 points, "
                            f"found {s.dtype} of shape {tuple(s.shape)}")
        if self.y.dtype != torch.int64 or self.y.dim() != 1:
            raise DataError(f"{self.name}: y must be int64 of shape N, found {self.y.dtype} {tuple(self.y.shape)}")
        if len(s) != len(self.y):
            raise DataError(f"{self.name}: {len(s)} samples but {len(self.y)} labels")
        if not self.class_names:
            raise DataError(f"{self.name}: no class names")
        if len(self.y) and (int(self.y.min()) < 0 or int(self.y.max()) >= len(self.class_names)):
            raise DataError(
                f"{self.name}: labels must lie in [0, {len(self.class_names)}), "
                f"found [{int(self.y.min())}, {int(self.y.max())}]"
            )

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_image(self) -> bool:
        return self.stored.dim() == 4

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample: (C, H, W) for images, (2,) for 2D points."""
        return tuple(self.stored.shape[1:])

    @property
    def nbytes(self) -> int:
        """Bytes the stored samples take."""
        return self.stored.numel() * self.stored.element_size()

    def x(self, index: Index | None = None, device: torch.device | str | None = None) -> torch.Tensor:
        """The samples as float32 (images in [-1, 1]): all of them, or those at `index`, on `device`.

        Only the selected uint8 bytes are copied and moved; the conversion to float runs where they
        arrive. Float storage is returned as held (not copied) when neither is given.
        """
        s = self.stored if index is None else self.stored[index]
        if device is not None:
            s = s.to(device, non_blocking=True)
        return uint8_to_unit(s) if s.dtype == torch.uint8 else s

    def subset(self, index: Index) -> "LabelledData":
        """The samples and labels at `index`, stored as they are here."""
        index = torch.as_tensor(index, dtype=torch.long) if not isinstance(index, slice) else index
        return LabelledData(self.stored[index], self.y[index], self.class_names, self.name)

    def to_uint8_nhwc(self) -> np.ndarray:
        """The images as uint8 N×H×W×C (the on-disk convention); images only."""
        if not self.is_image:
            raise DataError(f"{self.name} holds points of shape {self.sample_shape}, not images")
        if self.stored.dtype == torch.uint8:
            return self.stored.permute(0, 2, 3, 1).contiguous().numpy()
        return to_uint8_nhwc(self.stored)


def random_subset(n: int, k: int, seed: int, what: str) -> torch.Tensor | None:
    """Sorted indices of a random k of range(n), drawn with `seed` (file order kept); None when k = n.
    A ConfigError when `what` (e.g. "fashion-mnist train") holds fewer than k samples."""
    if k > n:
        raise ConfigError(f"num_samples: {what} holds {n} samples, fewer than the {k} asked for")
    if k == n:
        return None
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values


def uint8_to_unit(u: torch.Tensor) -> torch.Tensor:
    """uint8 images (any layout, any device) → float32 in [-1, 1]: u/127.5 − 1, the same float32
    operations as `images_to_unit_range`, so both give identical values."""
    return u.float().div_(127.5).sub_(1.0)


def unit_to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float images in [-1, 1] → uint8 of the same layout: round((x + 1)·127.5), clamped to [0, 255]."""
    return ((x.detach().float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


def nhwc_to_stored(images: np.ndarray) -> torch.Tensor:
    """uint8 N×H×W×C (or N×H×W, taken as C = 1) array → the uint8 N×C×H×W tensor `LabelledData` stores."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim not in (3, 4):
        found = f"{images.dtype} array of shape {images.shape}" if isinstance(images, np.ndarray) else type(images)
        raise DataError(f"images must be a uint8 N×H×W×C or N×H×W array, found {found}")
    if images.ndim == 3:
        images = images[..., None]
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def check_class_indices(classes: Sequence[int], num_classes: int, dataset: str) -> None:
    """Refuse a `data.classes` selection that is empty, repeats a class or leaves [0, num_classes)."""
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad or not classes or len(set(classes)) != len(classes):
        found = f"class {bad[0]}" if bad else one_line(list(classes), 80)
        raise ConfigError(f"config field data.classes: expected distinct class indices in [0, {num_classes}) of "
                          f"{dataset}, found {found}")


def images_to_unit_range(images: np.ndarray) -> torch.Tensor:
    """uint8 N×H×W×C (or N×H×W, taken as C = 1) → float32 N×C×H×W tensor in [-1, 1] (u/127.5 − 1)."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim not in (3, 4):
        found = f"{images.dtype} array of shape {images.shape}" if isinstance(images, np.ndarray) else type(images)
        raise DataError(f"images must be a uint8 N×H×W×C or N×H×W array, found {found}")
    if images.ndim == 3:
        images = images[..., None]
    # astype copies, so read-only inputs (np.frombuffer over file bytes) are fine for from_numpy.
    x = torch.from_numpy(images.astype(np.float32)).permute(0, 3, 1, 2).contiguous()
    return x.div_(127.5).sub_(1.0)


def to_uint8_nhwc(x: torch.Tensor) -> np.ndarray:
    """float N×C×H×W tensor in [-1, 1] → uint8 N×H×W×C array: round((x + 1)·127.5), clamped to [0, 255]."""
    if x.dim() != 4 or not x.is_floating_point():
        raise DataError(f"images must be a float N×C×H×W tensor, found {x.dtype} of shape {tuple(x.shape)}")
    return unit_to_uint8(x).permute(0, 2, 3, 1).contiguous().cpu().numpy()


def map_images(stored: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """`fn` (float N×C×H×W in [-1, 1] → the same) applied to stored images, stored as they came.

    uint8 images are converted a chunk at a time and the result rounded back to uint8 (what any
    8-bit image pipeline does after resizing), so the float copy never holds the whole set.
    """
    if stored.dtype != torch.uint8:
        return fn(stored)
    return torch.cat([unit_to_uint8(fn(uint8_to_unit(stored[i:i + _CONVERT_CHUNK])))
                      for i in range(0, len(stored), _CONVERT_CHUNK)])


def resize_images(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Resize N×C×H×W images to resolution×resolution: bilinear, antialiased when shrinking.

    Antialiasing (a box prefilter scaled to the shrink factor) keeps downsized images free of
    aliasing, like PIL's resize; it has no effect when enlarging.
    """
    if tuple(x.shape[2:]) == (resolution, resolution):
        return x
    shrinking = resolution < max(x.shape[2], x.shape[3])
    y = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=shrinking)
    return y.clamp_(-1.0, 1.0)


def convert_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert N×C×H×W images between 1 (gray) and 3 (RGB) channels; gray = BT.601 luma."""
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    if x.shape[1] == 3 and channels == 1:
        weights = torch.tensor(_LUMA_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * weights).sum(dim=1, keepdim=True)
    raise DataError(f"cannot convert {x.shape[1]}-channel images to {channels} channels; expected 1 or 3")
