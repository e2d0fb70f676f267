"""The AC-GAN paper presets run end to end with their own nets: `acgan-imagenet-paper` on a small
ImageNet-layout folder (class sub-folders of PNG/JPEG images of varied sizes, resized to 128 px) and
`acgan-cifar10-paper` on a tiny cifar-10-batches-py; only steps and batch are cut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from condgan.cli import main
from condgan.config import PRESET_DIR, resolve_config
from condgan.methods import build_method
from condgan.nets import DataSpec
from condgan.run.splits import read_manifest
from test_data_cifar import make_cifar

CLASSES, PER_CLASS = 20, 30
# A 128 px step costs about 2.9 GFLOP per image pair through G and D (benchmarks/preset_cost.py): batch 2,
# and a one-row grid (one sample per class).
SHORT = ["--steps", "2", "--batch-size", "2", "--threads", "2", "--set", "train.ckpt_every=2",
         "--set", "train.grid_every=2", "--set", "train.grid_rows=1", "--no-progress"]


def _imagenet_like(root: Path) -> Path:
    """CLASSES class folders (WordNet-like ids) of PER_CLASS images of varied sizes and aspect
    ratios, PNG and JPEG, RGB and grayscale; class k has its own mean colour."""
    rng = np.random.default_rng(0)
    for k in range(CLASSES):
        folder = root / f"n{k:08d}"
        folder.mkdir(parents=True)
        for i in range(PER_CLASS):
            w, h = int(rng.integers(60, 200)), int(rng.integers(60, 200))
            pixels = np.clip(rng.normal(12 * k, 40, (h, w, 3)), 0, 255).astype(np.uint8)
            im = Image.fromarray(pixels) if i % 5 else Image.fromarray(pixels[..., 0])  # some grayscale
            im.save(folder / f"{i}.JPEG" if i % 2 else folder / f"{i}.png", **({"quality": 85} if i % 2 else {}))
    return root


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_imagenet_preset_trains_and_samples_at_128px(tmp_path, capsys):
    data = _imagenet_like(tmp_path / "train")
    run = tmp_path / "run"
    assert main(["train", "--config", "acgan-imagenet-paper", "--data-dir", str(data), "--out", str(run),
                 *SHORT]) == 0
    ckpt = torch.load(run / "checkpoints" / "ckpt-00000002.pt", weights_only=True)
    assert ckpt["meta"]["sample_shape"] == [3, 128, 128] and ckpt["meta"]["num_samples"] == CLASSES * PER_CLASS
    # The preset's nets (model.arch acgan_imagenet, dropout 0.5), not cut down: its G and D sizes.
    cfg = resolve_config([PRESET_DIR / "acgan-imagenet-paper.yaml"])
    reference = build_method(cfg, DataSpec((3, 128, 128), CLASSES))
    assert {k: v.shape for k, v in ckpt["model"].items()} == {k: v.shape for k, v in reference.state_dict().items()}
    assert ckpt["meta"]["config"]["model"] == cfg.to_dict()["model"]
    assert _params(reference.G) > 16e6  # 768·8·8 maps from z ++ one-hot, then 384, 256, 192, 3
    samples = tmp_path / "s.npz"
    assert main(["sample", str(run), "--n", "2", "--out", str(samples), "--classes", "0,19"]) == 0
    with np.load(samples) as f:
        assert f["images"].shape == (2, 128, 128, 3) and f["labels"].tolist() == [0, 19]
    width, height = Image.open(run / "grids" / "step-00000002.png").size
    assert width >= CLASSES * 128 and 128 <= height < 2 * 128  # one row, a column per class


def test_imagenet_preset_as_class_splits(tmp_path, capsys):
    data = tmp_path / "train"  # splits init reads the class folders' names only
    for k in range(CLASSES):
        (data / f"n{k:08d}").mkdir(parents=True)
    assert main(["splits", "init", "--config", "acgan-imagenet-paper", "--data-dir", str(data), "--splits", "2",
                 "--out", str(tmp_path / "R")]) == 0
    manifest = read_manifest(tmp_path / "R")
    assert [s.class_names[:2] for s in manifest.splits] == [("n00000000", "n00000001"), ("n00000010", "n00000011")]
    cfg = resolve_config(base=manifest.config)
    assert (cfg.train.batch_size, cfg.model.arch, cfg.method.class_splits) == (100, "acgan_imagenet", 1)


def test_cifar10_preset_reads_the_python_batches(tmp_path):
    make_cifar(tmp_path, per_batch=8)  # 40 training images
    run = tmp_path / "run"
    assert main(["train", "--config", "acgan-cifar10-paper", "--data-dir", str(tmp_path), "--out", str(run),
                 *SHORT]) == 0
    ckpt = torch.load(run / "checkpoints" / "ckpt-00000002.pt", weights_only=True)
    assert ckpt["meta"]["dataset"] == "cifar10" and ckpt["meta"]["num_samples"] == 40
    assert ckpt["meta"]["class_names"][0] == "airplane" and ckpt["meta"]["config"]["model"]["arch"] == "acgan_cifar"
    reference = build_method(resolve_config([PRESET_DIR / "acgan-cifar10-paper.yaml"]), DataSpec((3, 32, 32), 10))
    assert (_params(reference.G), _params(reference.D)) == (2_993_763, 1_663_883)  # docs/methods.md
    assert {k: v.shape for k, v in ckpt["model"].items()} == {k: v.shape for k, v in reference.state_dict().items()}
