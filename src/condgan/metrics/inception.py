"""The reference FID network: Inception-v3 as ported from TensorFlow's 2015-12-05 FID graph.

FID, KID, PRDC and the Inception Score are only comparable with published numbers when they use
the same network and weights as the reference implementations: pytorch-fid
(`src/pytorch_fid/inception.py`, https://github.com/mseitzer/pytorch-fid) and torch-fidelity
(`torch_fidelity/feature_extractor_inceptionv3.py`). Both run torchvision's Inception-v3 layout
with 1008 classes, no auxiliary head, and the weights `pt_inception-2015-12-05-6726825d.pth`
converted from http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz.
The converted TF graph differs from torchvision's Inception-v3 in two places, kept here:

- the average-pool branch of the A, C and E blocks (Mixed_5b-d, Mixed_6b-e, Mixed_7b) ignores the
  zero padding (TF's `avg_pool` with SAME padding = `count_include_pad=False`);
- the last E block (Mixed_7c) pools its pool branch with a 3×3 *max* pool instead.

Module attribute names (`Conv2d_1a_3x3`, `Mixed_5b.branch1x1.conv`, ...) follow torchvision's
Inception-v3 because they are the keys of the weights file; `FIDInceptionV3().state_dict()` loads
that file with strict key and shape checks.

Input convention: float N×C×H×W in [-1, 1] (the package's image convention), C = 1 or 3. The
network resizes to 299×299 with `F.interpolate(mode="bilinear", align_corners=False)` as pytorch-fid
does. pytorch-fid resizes images in [0, 1] and then maps them to [-1, 1] by 2x - 1; bilinear resizing
is an affine combination (weights sum to 1), so resizing an image already in [-1, 1] gives the same
values up to float rounding. torch-fidelity instead resizes uint8 images with a TF1-compatible
bilinear kernel and maps by (x - 128) / 128, so its features differ slightly from pytorch-fid's and
from these.

The weights are never downloaded implicitly: `load_fid_inception` finds them (explicit path,
`$CONDGAN_INCEPTION_WEIGHTS`, user cache) or raises `CheckpointError` saying where to get them;
`download_fid_inception` fetches them for users who are online.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import safetensors.torch
import torch
import torch.nn.functional as F
from torch import nn

from condgan.data.paths import user_cache_dir
from condgan.errors import CheckpointError
from condgan.io import file_sha256, load_torch

INPUT_SIZE = 299  # Inception-v3's input resolution (TF graph: 299×299 after "ResizeBilinear")
POOL_DIM = 2048  # pool3 features, the FID/KID/PRDC feature space
NUM_LOGITS = 1008  # the 2015-12-05 graph's softmax has 1008 outputs (1000 ImageNet classes + 8 unused)

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"  # "-<first 8 hex of sha256>." as torch.hub names files
FID_WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_NAME
WEIGHTS_ENV_VAR = "CONDGAN_INCEPTION_WEIGHTS"
WEIGHTS_FLAG = "--inception-weights"
EXTRACTOR_NAME = "inception-v3-fid"


class _ConvBN(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, TF's default) and ReLU: torchvision's BasicConv2d."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_tf(x: torch.Tensor) -> torch.Tensor:
    """3×3 stride-1 average pool that, like TF's SAME padding, averages over in-image pixels only."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _InceptionA(nn.Module):
    """35×35 block (Mixed_5b/c/d): 1×1, 5×5, double 3×3 and pool branches; out 224 + pool_features."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = _ConvBN(in_channels, 64, 1)
        self.branch5x5_1 = _ConvBN(in_channels, 48, 1)
        self.branch5x5_2 = _ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, padding=1)
        self.branch_pool = _ConvBN(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg_pool_tf(x)),
            ],
            dim=1,
        )


class _InceptionB(nn.Module):
    """Grid reduction 35→17 (Mixed_6a): stride-2 3×3, double 3×3 and max-pool branches; out 480 + in."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = _ConvBN(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = _ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, kernel_size=3, stride=2),
            ],
            dim=1,
        )


class _InceptionC(nn.Module):
    """17×17 block (Mixed_6b-e) with factorised 7×7 convolutions of width channels_7x7; out 768."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = _ConvBN(in_channels, 192, 1)
        self.branch7x7_1 = _ConvBN(in_channels, c7, 1)
        self.branch7x7_2 = _ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _ConvBN(in_channels, c7, 1)
        self.branch7x7dbl_2 = _ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _ConvBN(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7dbl = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            b7dbl = conv(b7dbl)
        return torch.cat([self.branch1x1(x), b7, b7dbl, self.branch_pool(_avg_pool_tf(x))], dim=1)


class _InceptionD(nn.Module):
    """Grid reduction 17→8 (Mixed_7a): 3×3 and 7×7-then-3×3 stride-2 branches and a max pool; out 512 + in."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = _ConvBN(in_channels, 192, 1)
        self.branch3x3_2 = _ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _ConvBN(in_channels, 192, 1)
        self.branch7x7x3_2 = _ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7x3 = self.branch7x7x3_1(x)
        for conv in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7x3 = conv(b7x3)
        return torch.cat(
            [self.branch3x3_2(self.branch3x3_1(x)), b7x3, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1
        )


class _InceptionE(nn.Module):
    """8×8 block (Mixed_7b/c) with split 1×3 / 3×1 convolutions; out 2048.

    `max_pool=True` reproduces the TF graph's Mixed_7c, whose pool branch is a 3×3 max pool
    (pytorch-fid's FIDInceptionE_2); Mixed_7b uses the padding-excluding average pool.
    """

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = _ConvBN(in_channels, 320, 1)
        self.branch3x3_1 = _ConvBN(in_channels, 384, 1)
        self.branch3x3_2a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _ConvBN(in_channels, 448, 1)
        self.branch3x3dbl_2 = _ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _ConvBN(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool_tf(x)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(b3),
                self.branch3x3_2b(b3),
                self.branch3x3dbl_3a(b3dbl),
                self.branch3x3dbl_3b(b3dbl),
                self.branch_pool(pooled),
            ],
            dim=1,
        )


def fid_inception_input(x: torch.Tensor) -> torch.Tensor:
    """Images float N×C×H×W in [-1, 1] (C = 1 or 3) → the network's input, N×3×299×299 in [-1, 1].

    Bilinear resize with `align_corners=False` (half-pixel centres, no antialiasing), as pytorch-fid's
    `InceptionV3.forward`; grayscale is repeated to three channels after resizing (same result,
    a third of the work). Values are not clamped.
    """
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected images N×C×H×W with C = 1 or 3, found shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected float images in [-1, 1], found dtype {x.dtype}")
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class FIDInceptionV3(nn.Module):
    """Inception-v3 of the TF FID graph (2015-12-05), with torchvision's parameter names.

    Built with PyTorch's default initialisation; use `load_fid_inception` to get the reference
    weights. `forward` returns a dict:

    - ``pool``: N×2048 pool3 features (global average of Mixed_7c), the FID/KID/PRDC features;
    - ``logits``: N×1008, ``fc(pool)``;
    - ``logits_unbiased``: N×1008, ``pool @ fc.weight.T`` without the bias, which is what the
      original Inception Score code (Salimans et al. 2016, openai/improved-gan
      `inception_score.py`, "softmax/logits/MatMul") and torch-fidelity's ISC feed to the softmax.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = _ConvBN(3, 32, 3, stride=2)  # 299 → 149
        self.Conv2d_2a_3x3 = _ConvBN(32, 32, 3)  # → 147
        self.Conv2d_2b_3x3 = _ConvBN(32, 64, 3, padding=1)  # → 147, then max pool → 73
        self.Conv2d_3b_1x1 = _ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = _ConvBN(80, 192, 3)  # → 71, then max pool → 35
        self.Mixed_5b = _InceptionA(192, pool_features=32)  # → 256 channels
        self.Mixed_5c = _InceptionA(256, pool_features=64)  # → 288
        self.Mixed_5d = _InceptionA(288, pool_features=64)  # → 288
        self.Mixed_6a = _InceptionB(288)  # → 768 × 17×17
        self.Mixed_6b = _InceptionC(768, channels_7x7=128)
        self.Mixed_6c = _InceptionC(768, channels_7x7=160)
        self.Mixed_6d = _InceptionC(768, channels_7x7=160)
        self.Mixed_6e = _InceptionC(768, channels_7x7=192)
        self.Mixed_7a = _InceptionD(768)  # → 1280 × 8×8
        self.Mixed_7b = _InceptionE(1280, max_pool=False)  # → 2048
        self.Mixed_7c = _InceptionE(2048, max_pool=True)  # → 2048
        self.fc = nn.Linear(POOL_DIM, NUM_LOGITS)
        self.weights_sha256: str | None = None  # set by `load_fid_inception`

    @property
    def extractor_id(self) -> str:
        """``inception-v3-fid:<12 hex of the weights file's sha256>``, or ``...:unloaded`` for own weights."""
        return fid_extractor_id(self.weights_sha256) if self.weights_sha256 else f"{EXTRACTOR_NAME}:unloaded"

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Images float N×C×H×W in [-1, 1], C = 1 or 3, any H×W → dict(pool, logits, logits_unbiased)."""
        h = fid_inception_input(x).to(self.fc.weight.dtype)
        h = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(h)))
        h = F.max_pool2d(h, kernel_size=3, stride=2)
        h = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(h))
        h = F.max_pool2d(h, kernel_size=3, stride=2)
        for block in (
            self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
            self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c,
        ):  # fmt: skip
            h = block(h)
        pool = h.mean(dim=(2, 3))  # TF "pool_3": 8×8 average pool at 299×299 input
        logits_unbiased = pool @ self.fc.weight.T
        return {"pool": pool, "logits": logits_unbiased + self.fc.bias, "logits_unbiased": logits_unbiased}


def fid_extractor_id(weights_sha256: str) -> str:
    """Short id of the extractor for metric records, e.g. ``inception-v3-fid:6726825d....``.

    12 hex digits (48 bits) of the weights file's sha256 tell any two weight files apart in practice;
    the same weights stored as .pth and as .safetensors get different ids (the bytes differ).
    """
    return f"{EXTRACTOR_NAME}:{weights_sha256[:12]}"



def _how_to_get_weights() -> str:
    return (
        f"expected the file {FID_WEIGHTS_NAME} (pytorch-fid's Inception weights); download it from {FID_WEIGHTS_URL} "
        f"(or run condgan.metrics.inception.download_fid_inception()) and pass {WEIGHTS_FLAG} PATH, "
        f"set ${WEIGHTS_ENV_VAR}, or put it in {user_cache_dir()}"
    )


def find_fid_inception_weights(weights: str | Path | None = None) -> Path:
    """The weights file to use: `weights` if given, else ``$CONDGAN_INCEPTION_WEIGHTS`` if set, else the cache file.

    A path given explicitly (argument or variable) that does not exist is an error rather than a
    reason to look further, so that a typo is reported instead of silently replaced.

    Raises:
        CheckpointError: naming the place searched, the expected file name and where to get it.
    """
    if weights is not None:
        where, path = "given path", Path(weights).expanduser()
    elif os.environ.get(WEIGHTS_ENV_VAR):
        where, path = f"${WEIGHTS_ENV_VAR}", Path(os.environ[WEIGHTS_ENV_VAR]).expanduser()
    else:
        where, path = f"user cache (no {WEIGHTS_FLAG}, ${WEIGHTS_ENV_VAR} unset)", user_cache_dir() / FID_WEIGHTS_NAME
    if not path.is_file():
        raise CheckpointError(f"Inception weights not found: searched {where} {path}; {_how_to_get_weights()}")
    return path


def _parse_weights(data: bytes, path: Path) -> Mapping[str, torch.Tensor]:
    """Tensors from a .safetensors file or a torch.save file, the latter unpickled with weights_only=True."""
    if path.suffix == ".safetensors":
        try:
            state = safetensors.torch.load(data)
        except safetensors.SafetensorError as e:
            raise CheckpointError(f"{path}: not a valid safetensors file ({e})") from e
    else:
        state = load_torch(data, path, CheckpointError)
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(f"{path}: expected a dict of parameter name → tensor, found {type(state).__name__}")
    return state


def _load_checked(model: FIDInceptionV3, state: Mapping[str, torch.Tensor], path: Path) -> None:
    """`model.load_state_dict(state, strict=True)` after checking keys and shapes with clear messages.

    BatchNorm's ``num_batches_tracked`` counters are optional (the TF-converted files have none and
    they do not affect inference); missing ones keep the model's value.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        found = [f"{len(missing)} missing keys, first {missing[0]!r}"] if missing else []
        found += [f"{len(unexpected)} unexpected keys, first {unexpected[0]!r}"] if unexpected else []
        raise CheckpointError(
            f"{path}: not the FID Inception-v3 layout ({FID_WEIGHTS_NAME}): {'; '.join(found)}"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(
                f"{path}: {key!r} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)} "
                f"(FID Inception-v3 layout, {FID_WEIGHTS_NAME})"
            )
    model.load_state_dict({**expected, **state}, strict=True)


def load_fid_inception(weights: str | Path | None = None, *, device: str | torch.device = "cpu") -> FIDInceptionV3:
    """The reference FID Inception-v3 with its weights, frozen, in eval mode, on `device`.

    Args:
        weights: the weights file (.pth as published by pytorch-fid, or .safetensors with the same
            keys); None looks in ``$CONDGAN_INCEPTION_WEIGHTS`` and then the user cache
            (see `find_fid_inception_weights`). Nothing is downloaded.
        device: where to put the model.

    The returned model's `weights_sha256` and `extractor_id` identify the file, for metric records.

    Raises:
        CheckpointError: file not found, unreadable, unsafe (pickle with non-tensor objects), or
            with keys/shapes other than the reference layout.
    """
    path = find_fid_inception_weights(weights)
    try:
        data = path.read_bytes()  # hash and parse the same bytes
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror})") from e
    state = _parse_weights(data, path)
    model = FIDInceptionV3()
    _load_checked(model, state, path)
    model.weights_sha256 = hashlib.sha256(data).hexdigest()
    return model.requires_grad_(False).eval().to(device)


def download_fid_inception(dest: str | Path | None = None, url: str = FID_WEIGHTS_URL) -> Path:
    """Download the weights into the folder `dest` (default `user_cache_dir()`) and return the file's path.

    As torch.hub does, the file name in `url` must carry a prefix of the file's sha256
    (``...-6726825d.pth``); the download goes to a temporary file in `dest`, is refused and deleted
    if its sha256 does not start with that prefix, and is renamed into place otherwise. A file
    already in place with a matching hash is returned without downloading.

    Raises:
        CheckpointError: URL without a hash in its file name, network or disk failure, hash mismatch.
    """
    name = Path(urllib.parse.urlsplit(url).path).name
    match = re.search(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$", name)
    if match is None:
        raise CheckpointError(f"{url}: the file name should end in -<sha256 prefix>.<ext>, like {FID_WEIGHTS_NAME}")
    prefix = match.group(1)
    folder = Path(dest).expanduser() if dest is not None else user_cache_dir()
    target = folder / name
    if target.is_file() and file_sha256(target).startswith(prefix):
        return target
    tmp_path: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{name}.", suffix=".part", delete=False) as tmp:
            tmp_path = Path(tmp.name)
            with urllib.request.urlopen(url, timeout=60) as response:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    digest.update(chunk)
                    tmp.write(chunk)
        if not digest.hexdigest().startswith(prefix):
            raise CheckpointError(
                f"{url}: refused the download, its sha256 is {digest.hexdigest()}, expected it to start with "
                f"{prefix} (from the file name); nothing was saved"
            )
        os.replace(tmp_path, target)
        tmp_path = None
    except (OSError, ValueError) as e:  # URLError is an OSError; ValueError: malformed URL
        raise CheckpointError(
            f"downloading {url} to {target} failed ({e}); download it by hand and pass {WEIGHTS_FLAG} PATH"
        ) from e
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)
    return target
