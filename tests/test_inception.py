"""Tests of the FID Inception-v3: layout of the reference weights file, safe loading, lookup, download, input path.

The real weights (pt_inception-2015-12-05-6726825d.pth) are not available here; the tests save
random tensors in the reference file's layout, which `REFERENCE_CONVS` spells out independently of
the module: it lists every BasicConv2d of torchvision's Inception-v3 (the names the file uses, also
in torch-fidelity's utils/util_convert_inception_weights.py TF → PyTorch name map) with its conv
weight shape out × in × kh × kw.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shlex
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
import torch.nn.functional as F

from condgan.io import file_sha256
from condgan.errors import CheckpointError
from condgan.metrics import inception
from condgan.metrics.inception import (
    FID_WEIGHTS_NAME,
    FID_WEIGHTS_URL,
    FIDInceptionV3,
    download_fid_inception,
    fid_inception_input,
    find_fid_inception_weights,
    load_fid_inception,
)

# name, conv weight shape (out, in, kh, kw); each also has bn.{weight,bias,running_mean,running_var} of size out.
REFERENCE_CONVS = """
Conv2d_1a_3x3 32 3 3 3
Conv2d_2a_3x3 32 32 3 3
Conv2d_2b_3x3 64 32 3 3
Conv2d_3b_1x1 80 64 1 1
Conv2d_4a_3x3 192 80 3 3
Mixed_5b.branch1x1 64 192 1 1
Mixed_5b.branch5x5_1 48 192 1 1
Mixed_5b.branch5x5_2 64 48 5 5
Mixed_5b.branch3x3dbl_1 64 192 1 1
Mixed_5b.branch3x3dbl_2 96 64 3 3
Mixed_5b.branch3x3dbl_3 96 96 3 3
Mixed_5b.branch_pool 32 192 1 1
Mixed_5c.branch1x1 64 256 1 1
Mixed_5c.branch5x5_1 48 256 1 1
Mixed_5c.branch5x5_2 64 48 5 5
Mixed_5c.branch3x3dbl_1 64 256 1 1
Mixed_5c.branch3x3dbl_2 96 64 3 3
Mixed_5c.branch3x3dbl_3 96 96 3 3
Mixed_5c.branch_pool 64 256 1 1
Mixed_5d.branch1x1 64 288 1 1
Mixed_5d.branch5x5_1 48 288 1 1
Mixed_5d.branch5x5_2 64 48 5 5
Mixed_5d.branch3x3dbl_1 64 288 1 1
Mixed_5d.branch3x3dbl_2 96 64 3 3
Mixed_5d.branch3x3dbl_3 96 96 3 3
Mixed_5d.branch_pool 64 288 1 1
Mixed_6a.branch3x3 384 288 3 3
Mixed_6a.branch3x3dbl_1 64 288 1 1
Mixed_6a.branch3x3dbl_2 96 64 3 3
Mixed_6a.branch3x3dbl_3 96 96 3 3
Mixed_6b.branch1x1 192 768 1 1
Mixed_6b.branch7x7_1 128 768 1 1
Mixed_6b.branch7x7_2 128 128 1 7
Mixed_6b.branch7x7_3 192 128 7 1
Mixed_6b.branch7x7dbl_1 128 768 1 1
Mixed_6b.branch7x7dbl_2 128 128 7 1
Mixed_6b.branch7x7dbl_3 128 128 1 7
Mixed_6b.branch7x7dbl_4 128 128 7 1
Mixed_6b.branch7x7dbl_5 192 128 1 7
Mixed_6b.branch_pool 192 768 1 1
Mixed_6c.branch1x1 192 768 1 1
Mixed_6c.branch7x7_1 160 768 1 1
Mixed_6c.branch7x7_2 160 160 1 7
Mixed_6c.branch7x7_3 192 160 7 1
Mixed_6c.branch7x7dbl_1 160 768 1 1
Mixed_6c.branch7x7dbl_2 160 160 7 1
Mixed_6c.branch7x7dbl_3 160 160 1 7
Mixed_6c.branch7x7dbl_4 160 160 7 1
Mixed_6c.branch7x7dbl_5 192 160 1 7
Mixed_6c.branch_pool 192 768 1 1
Mixed_6d.branch1x1 192 768 1 1
Mixed_6d.branch7x7_1 160 768 1 1
Mixed_6d.branch7x7_2 160 160 1 7
Mixed_6d.branch7x7_3 192 160 7 1
Mixed_6d.branch7x7dbl_1 160 768 1 1
Mixed_6d.branch7x7dbl_2 160 160 7 1
Mixed_6d.branch7x7dbl_3 160 160 1 7
Mixed_6d.branch7x7dbl_4 160 160 7 1
Mixed_6d.branch7x7dbl_5 192 160 1 7
Mixed_6d.branch_pool 192 768 1 1
Mixed_6e.branch1x1 192 768 1 1
Mixed_6e.branch7x7_1 192 768 1 1
Mixed_6e.branch7x7_2 192 192 1 7
Mixed_6e.branch7x7_3 192 192 7 1
Mixed_6e.branch7x7dbl_1 192 768 1 1
Mixed_6e.branch7x7dbl_2 192 192 7 1
Mixed_6e.branch7x7dbl_3 192 192 1 7
Mixed_6e.branch7x7dbl_4 192 192 7 1
Mixed_6e.branch7x7dbl_5 192 192 1 7
Mixed_6e.branch_pool 192 768 1 1
Mixed_7a.branch3x3_1 192 768 1 1
Mixed_7a.branch3x3_2 320 192 3 3
Mixed_7a.branch7x7x3_1 192 768 1 1
Mixed_7a.branch7x7x3_2 192 192 1 7
Mixed_7a.branch7x7x3_3 192 192 7 1
Mixed_7a.branch7x7x3_4 192 192 3 3
Mixed_7b.branch1x1 320 1280 1 1
Mixed_7b.branch3x3_1 384 1280 1 1
Mixed_7b.branch3x3_2a 384 384 1 3
Mixed_7b.branch3x3_2b 384 384 3 1
Mixed_7b.branch3x3dbl_1 448 1280 1 1
Mixed_7b.branch3x3dbl_2 384 448 3 3
Mixed_7b.branch3x3dbl_3a 384 384 1 3
Mixed_7b.branch3x3dbl_3b 384 384 3 1
Mixed_7b.branch_pool 192 1280 1 1
Mixed_7c.branch1x1 320 2048 1 1
Mixed_7c.branch3x3_1 384 2048 1 1
Mixed_7c.branch3x3_2a 384 384 1 3
Mixed_7c.branch3x3_2b 384 384 3 1
Mixed_7c.branch3x3dbl_1 448 2048 1 1
Mixed_7c.branch3x3dbl_2 384 448 3 3
Mixed_7c.branch3x3dbl_3a 384 384 1 3
Mixed_7c.branch3x3dbl_3b 384 384 3 1
Mixed_7c.branch_pool 192 2048 1 1
"""
# torchvision's inception_v3 has 27,161,264 parameters (1000 classes, with the auxiliary head of
# 3,326,696); without it and with a 1008-way fc (+8 · 2049) the FID network has 23,850,960.
REFERENCE_NUM_PARAMETERS = 23_850_960


def reference_layout() -> dict[str, tuple[int, ...]]:
    """Key → shape of every tensor in pt_inception-2015-12-05-6726825d.pth (472 tensors)."""
    layout: dict[str, tuple[int, ...]] = {}
    for line in REFERENCE_CONVS.strip().splitlines():
        name, *dims = line.split()
        out, inp, kh, kw = map(int, dims)
        layout[f"{name}.conv.weight"] = (out, inp, kh, kw)
        for stat in ("weight", "bias", "running_mean", "running_var"):
            layout[f"{name}.bn.{stat}"] = (out,)
    layout["fc.weight"] = (1008, 2048)
    layout["fc.bias"] = (1008,)
    return layout


def random_reference_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors in the reference layout, scaled so activations stay finite through 94 layers."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in reference_layout().items():
        if key.endswith("running_var"):
            value = 0.5 + torch.rand(shape, generator=gen)
        elif key.endswith("conv.weight") or key == "fc.weight":
            value = torch.randn(shape, generator=gen) * (2.0 / np.prod(shape[1:])) ** 0.5
        else:
            value = 0.1 * torch.randn(shape, generator=gen)
        state[key] = value
    return state


@pytest.fixture(scope="module")
def reference_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torch.save'd state dict with the reference file's name, keys and shapes (random values)."""
    path = tmp_path_factory.mktemp("weights") / FID_WEIGHTS_NAME
    torch.save(random_reference_state(), path)
    return path


@pytest.fixture()
def no_lookup_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No $CONDGAN_INCEPTION_WEIGHTS and an empty user cache; returns the cache root."""
    monkeypatch.delenv(inception.WEIGHTS_ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_state_dict_matches_reference_layout() -> None:
    model = FIDInceptionV3()
    state = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    expected = reference_layout()
    assert len(expected) == 94 * 5 + 2 == 472
    assert sorted(state) == sorted(expected)
    assert state == expected
    assert sum(p.numel() for p in model.parameters()) == REFERENCE_NUM_PARAMETERS


def test_load_explicit_path_outputs_and_id(reference_file: Path) -> None:
    model = load_fid_inception(reference_file)
    saved = torch.load(reference_file, weights_only=True)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in saved.items())
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    sha = hashlib.sha256(reference_file.read_bytes()).hexdigest()
    assert file_sha256(reference_file) == model.weights_sha256 == sha
    assert model.extractor_id == f"inception-v3-fid:{sha[:12]}"
    torch.manual_seed(0)
    with torch.no_grad():
        for images in (torch.rand(2, 1, 28, 28) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1):
            out = model(images)
            assert out["pool"].shape == (2, 2048)
            assert out["logits"].shape == out["logits_unbiased"].shape == (2, 1008)
            assert all(torch.isfinite(v).all() for v in out.values())
            torch.testing.assert_close(out["logits"], out["logits_unbiased"] + model.fc.bias)
            torch.testing.assert_close(out["logits"], F.linear(out["pool"], model.fc.weight, model.fc.bias))


def test_grayscale_is_rgb_with_equal_channels(reference_file: Path) -> None:
    model = load_fid_inception(reference_file)
    gray = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        a, b = model(gray)["pool"], model(gray.repeat(1, 3, 1, 1))["pool"]
    # Same values up to float32 rounding (the thread count can change the conv's summation order).
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_env_var_then_user_cache(reference_file: Path, no_lookup_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CheckpointError):
        find_fid_inception_weights()
    cached = no_lookup_env / "condgan" / FID_WEIGHTS_NAME
    cached.parent.mkdir(parents=True)
    cached.symlink_to(reference_file)
    assert find_fid_inception_weights() == cached
    monkeypatch.setenv(inception.WEIGHTS_ENV_VAR, str(reference_file))
    assert find_fid_inception_weights() == reference_file
    assert load_fid_inception().weights_sha256 == file_sha256(reference_file)
    # an explicit path wins over the variable
    assert find_fid_inception_weights(cached) == cached


def test_missing_weights_message_says_where_and_how(no_lookup_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CheckpointError) as err:
        load_fid_inception()
    message = str(err.value)
    for part in (str(no_lookup_env / "condgan" / FID_WEIGHTS_NAME), FID_WEIGHTS_URL, "--inception-weights PATH"):
        assert part in message
    monkeypatch.setenv(inception.WEIGHTS_ENV_VAR, "/nowhere/inception.pth")
    with pytest.raises(CheckpointError, match=r"\$CONDGAN_INCEPTION_WEIGHTS /nowhere/inception.pth"):
        load_fid_inception()
    with pytest.raises(CheckpointError, match="given path /elsewhere/x.pth.*pt_inception-2015-12-05-6726825d.pth"):
        load_fid_inception("/elsewhere/x.pth")


def test_safetensors_with_same_keys_loads(tmp_path: Path) -> None:
    state = random_reference_state(seed=2)
    path = tmp_path / "inception.safetensors"
    safetensors.torch.save_file(state, path)
    model = load_fid_inception(path)
    assert torch.equal(model.Mixed_7c.branch_pool.bn.running_var, state["Mixed_7c.branch_pool.bn.running_var"])
    assert model.weights_sha256 == file_sha256(path)


def test_layout_errors_name_file_and_key(tmp_path: Path) -> None:
    state = random_reference_state()
    path = tmp_path / "bad.pth"
    # torchvision's ImageNet Inception-v3: an auxiliary head and 1000 classes
    torch.save({**state, "AuxLogits.fc.weight": torch.zeros(1000, 768)}, path)
    with pytest.raises(CheckpointError, match=rf"{path}: .*1 unexpected keys, first 'AuxLogits.fc.weight'"):
        load_fid_inception(path)
    torch.save({**state, "fc.weight": torch.zeros(1000, 2048)}, path)
    wrong_shape = rf"{path}: 'fc.weight' has shape \(1000, 2048\), expected \(1008, 2048\)"
    with pytest.raises(CheckpointError, match=wrong_shape):
        load_fid_inception(path)
    torch.save({k: v for k, v in state.items() if not k.startswith("Mixed_5b")}, path)
    with pytest.raises(CheckpointError, match=rf"{path}: .*35 missing keys, first 'Mixed_5b.branch1x1.conv.weight'"):
        load_fid_inception(path)
    torch.save([state["fc.bias"]], path)
    with pytest.raises(CheckpointError, match="expected a dict of parameter name → tensor, found list"):
        load_fid_inception(path)
    torch.save(state, path)
    path.write_bytes(path.read_bytes()[:100_000])  # an interrupted copy
    with pytest.raises(CheckpointError, match=rf"{path}: corrupted or not a PyTorch file"):
        load_fid_inception(path)


def test_num_batches_tracked_is_optional(tmp_path: Path) -> None:
    model = FIDInceptionV3()
    path = tmp_path / "with_counters.pth"
    torch.save(model.state_dict(), path)  # a torchvision-style save keeps the counters
    load_fid_inception(path)


class _Exploit:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dumps"])
def test_malicious_pickle_is_refused(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "pwned"
    payload = {"fc.bias": [0.0] * 1008, "evil": _Exploit(marker)}
    path = tmp_path / FID_WEIGHTS_NAME
    if writer == "torch.save":
        torch.save(payload, path)
    else:  # a bare pickle, read by torch.load's legacy (pre-zip) path; protocol 2 as torch wrote them
        path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(CheckpointError, match=rf"{path}: refused to load: .*GLOBAL \w+\.system"):
        load_fid_inception(path)
    assert not marker.exists()


def _numpy_bilinear(image: np.ndarray, size: int) -> np.ndarray:
    """Half-pixel-centre bilinear resize of H×W (PyTorch/TF2 convention, no antialiasing), in float64."""

    def weights(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.maximum((np.arange(size) + 0.5) * n_in / size - 0.5, 0.0)
        lo = np.floor(src).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), src - lo

    y0, y1, wy = weights(image.shape[0])
    x0, x1, wx = weights(image.shape[1])
    rows = image[y0] * (1 - wy)[:, None] + image[y1] * wy[:, None]
    return rows[:, x0] * (1 - wx) + rows[:, x1] * wx


def test_resize_is_reference_bilinear() -> None:
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(3)) * 2 - 1
    y = fid_inception_input(x)
    assert y.shape == (2, 3, 299, 299)
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 0], y[:, 2])
    expected = _numpy_bilinear(x[1, 0].double().numpy(), 299)
    np.testing.assert_allclose(y[1, 0].double().numpy(), expected, rtol=0, atol=1e-5)  # float32 source indices
    # pytorch-fid resizes images in [0, 1] and then maps to [-1, 1]: the same up to rounding
    rgb = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    pytorch_fid = 2 * F.interpolate(rgb, size=(299, 299), mode="bilinear", align_corners=False) - 1
    torch.testing.assert_close(fid_inception_input(2 * rgb - 1), pytorch_fid, rtol=0, atol=1e-6)
    full = torch.rand(1, 3, 299, 299)
    assert torch.equal(fid_inception_input(full), full)
    with pytest.raises(ValueError, match="C = 1 or 3"):
        fid_inception_input(torch.zeros(1, 4, 32, 32))


def _branch_pool_input(block: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    seen = []
    handle = block.branch_pool.register_forward_pre_hook(lambda _module, args: seen.append(args[0]))
    with torch.no_grad():
        block(x)
    handle.remove()
    return seen[0]


@pytest.mark.parametrize("block_name", ["Mixed_5b", "Mixed_6b", "Mixed_7b", "Mixed_7c"])
def test_tf_pool_quirks(block_name: str) -> None:
    """A/C/E blocks average over in-image pixels only; Mixed_7c max-pools (pytorch-fid FIDInception*)."""
    block = getattr(FIDInceptionV3(), block_name).eval()
    channels = block.branch1x1.conv.in_channels
    x = torch.rand(1, channels, 5, 5, generator=torch.Generator().manual_seed(5))
    pooled = _branch_pool_input(block, x)
    if block_name == "Mixed_7c":
        expected = F.max_pool2d(x, 3, stride=1, padding=1)
    else:
        expected = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        # constant images stay constant at the border only when padding is excluded
        ones = _branch_pool_input(block, torch.ones(1, channels, 5, 5))
        assert torch.equal(ones, torch.ones_like(ones))
    torch.testing.assert_close(pooled, expected, rtol=0, atol=0)


def test_download_refuses_checksum_mismatch(tmp_path: Path) -> None:
    source = tmp_path / "server" / FID_WEIGHTS_NAME
    source.parent.mkdir()
    source.write_bytes(b"tampered" * 1000)
    dest = tmp_path / "dest"
    with pytest.raises(CheckpointError, match=r"refused the download, its sha256 is [0-9a-f]{64}, expected .*6726825d"):
        download_fid_inception(dest, url=source.as_uri())
    assert list(dest.iterdir()) == []


def test_download_verifies_and_renames(tmp_path: Path, no_lookup_env: Path) -> None:
    data = b"weights" * 1000
    source = tmp_path / "server" / f"weights-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    source.parent.mkdir()
    source.write_bytes(data)
    target = download_fid_inception(url=source.as_uri())
    assert target == no_lookup_env / "condgan" / source.name
    assert target.read_bytes() == data
    assert [p.name for p in target.parent.iterdir()] == [source.name]
    source.unlink()  # already in place with the right hash: no second download
    assert download_fid_inception(url=source.as_uri()) == target
    with pytest.raises(CheckpointError, match="file name should end in -<sha256 prefix>"):
        download_fid_inception(tmp_path, url=(tmp_path / "weights.pth").as_uri())
    with pytest.raises(CheckpointError, match="downloading .* failed"):
        download_fid_inception(tmp_path / "d", url=(tmp_path / "absent-0123abcd.pth").as_uri())
