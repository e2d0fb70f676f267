"""Speed flags: per-device "auto" choices, refusals by field name, bf16 autocast and determinism on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from condgan.config import resolve_config
from condgan.errors import ConfigError
from condgan.training.loop import train
from condgan.training import speed
from condgan.training.speed import bf16_note, resolve_speed

RING = ["data.name=ring", "data.num_samples=500", "model.hidden=32", "model.z_dim=4", "train.batch_size=32",
        "train.log_every=5", "train.grid_every=1000", "train.ckpt_every=1000", "train.steps=10"]
CPU = torch.device("cpu")


def test_auto_on_cpu_is_plain_float32_foreach():
    plan = resolve_speed(resolve_config().train, CPU, is_image=True)
    assert (plan.amp_dtype, plan.grad_scaling, plan.channels_last, plan.adam_kernel) == (None, False, False, "foreach")


@pytest.mark.parametrize("native", [True, False])
def test_auto_names_bf16_only_on_a_cpu_with_bf16_instructions_for_images(monkeypatch, native):
    monkeypatch.setattr(speed, "native_bf16_cpu", lambda: native)
    auto, explicit = resolve_config().train, resolve_config(overrides=["train.amp=none"]).train
    assert (bf16_note(auto, CPU, is_image=True) is not None) == native
    if native:
        assert "--set train.amp=bf16" in bf16_note(auto, CPU, is_image=True)
    assert bf16_note(auto, CPU, is_image=False) is None  # 2D toys: small MLPs, nothing measured
    assert bf16_note(explicit, CPU, is_image=True) is None  # the user chose


def test_native_bf16_cpu_agrees_with_the_cpu_flags():
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo")
    flags = cpuinfo.read_text().split()
    assert speed.native_bf16_cpu() == ("avx512_bf16" in flags or "amx_bf16" in flags or "amx_tile" in flags)


def test_explicit_choices_and_yaml_booleans():
    t = resolve_config(overrides=["train.amp=bf16", "train.channels_last=true"]).train
    assert t.channels_last == "true"  # YAML reads `true` as a bool; the field keeps its string form
    plan = resolve_speed(t, CPU, is_image=True)
    assert plan.amp_dtype is torch.bfloat16 and plan.channels_last


@pytest.mark.parametrize("override, needle", [
    ("train.amp=fp16", "train.amp: fp16 needs a CUDA device"),
    ("train.sync_bn=true", "train.sync_bn: SyncBatchNorm needs CUDA"),
])
def test_cpu_refuses_cuda_only_choices(override, needle):
    with pytest.raises(ConfigError, match=needle):
        resolve_speed(resolve_config(overrides=[override]).train, CPU, is_image=True)


def test_config_refuses_unknown_amp():
    with pytest.raises(ConfigError, match="train.amp: expected one of auto, none, bf16, fp16, found 'fp8'"):
        resolve_config(overrides=["train.amp=fp8"])


def test_bf16_autocast_trains_and_differs_from_float32(tmp_path):
    train(resolve_config(overrides=RING + ["train.amp=bf16", "train.deterministic=true"]), tmp_path / "bf16",
          progress=False)
    train(resolve_config(overrides=RING), tmp_path / "fp32", progress=False)
    torch.use_deterministic_algorithms(False)  # leave the process as other tests expect it
    bf16, fp32 = ([json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
                  for run in ("bf16", "fp32"))
    assert all(torch.isfinite(torch.tensor(r["D/loss"])) for r in bf16)
    assert bf16[-1]["D/loss"] == pytest.approx(fp32[-1]["D/loss"], rel=0.1)  # same training, bf16 rounding
    assert bf16[-1]["D/loss"] != fp32[-1]["D/loss"]  # autocast was in effect
