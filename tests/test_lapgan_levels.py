"""benchmarks/lapgan_levels.py: a few steps of one level and its diagnosis on hand-made uint8 data,
so the script keeps up with the data and method APIs it reads."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import lapgan_levels  # noqa: E402

from condgan.config import preset_or_path, resolve_config  # noqa: E402
from condgan.data.base import LabelledData  # noqa: E402


def _data(n: int, seed: int) -> LabelledData:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 28, 28), generator=gen, dtype=torch.uint8)
    return LabelledData(images, torch.arange(n) % 10, [str(k) for k in range(10)], "hand-made")


def test_levels_train_alone_and_the_diagnosis_reads_every_level():
    train, test = _data(64, 0), _data(200, 1)  # 20 test images per class: 100 distinct pairs each
    cfg = resolve_config([preset_or_path("cclapgan-fashion-mnist")], ["train.batch_size=8"])
    method, cpu, last = lapgan_levels.train_levels(cfg, [2], 3, 0, train.x(), train.y)
    assert cpu >= 0 and {"D2/loss", "G2/loss", "G2/mode_seeking"} <= set(last)
    judge7 = nn.Sequential(nn.Flatten(), nn.Linear(49, 10)).eval()
    row = lapgan_levels.diagnose(method, train, test, judge7, n=200, pairs=100, chain_pairs=None)
    assert set(row["msssim"]) == {"I0", "I1", "I2", "final_I_K"} and set(row["noise"]) == {"level0", "level1", "level2"}
    kept = row["msssim"].pop("final_I_K")
    assert len(kept["gap_per_class"]) == 10 and kept["rms_from_coarse"] > 0
    for level in row["msssim"].values():  # the per-class gaps average to the gap of the means
        assert len(level["gap_per_class"]) == 10
        assert sum(level["gap_per_class"]) / 10 == pytest.approx(level["gen"] - level["real"], abs=2e-3)
    assert sum(row["coarse"]["pred_class_hist"]) == 200
    assert 0 < row["noise"]["level2"]["std_over_z"] and 0 < row["noise"]["level0"]["rms_real"]
    for k in (0, 1):  # the part below the band is part of the residual
        level = row["noise"][f"level{k}"]
        assert 0 < level["below_band_rms_real"] < level["rms_real"] and 0 <= level["below_band_rms_gen"]
