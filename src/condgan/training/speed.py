"""Per-device speed settings of the training loop: AMP, memory format, compilation, optimiser kernels.

`resolve_speed` turns the `train.*` flags ("auto" included) into a `SpeedPlan` for one device:

| flag                | auto on CUDA                      | auto on CPU / MPS                             |
|---------------------|-----------------------------------|-----------------------------------------------|
| train.amp           | bf16 where supported, else fp16   | none (CPUs without AMX/AVX512-BF16 run bf16 slower) |
| train.channels_last | true for image nets (NHWC tensor cores) | false (no measurable gain on the AVX2 test CPU, see the speed doc) |
| Adam kernel         | fused                             | foreach (CPU, MPS)                            |

fp16 needs a GradScaler (dynamic loss scaling, Micikevicius et al. 2018) and is CUDA-only here;
its scale is not checkpointed and restarts at its initial value on resume. GPU paths are
untested in this project's CI (no GPU); bf16 autocast is tested on CPU.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch

from condgan.config import TrainConfig
from condgan.errors import ConfigError


@dataclass(frozen=True)
class SpeedPlan:
    amp_dtype: torch.dtype | None  # autocast dtype; None: full float32
    grad_scaling: bool  # fp16: scale losses with a GradScaler
    channels_last: bool
    compile: bool
    adam_kernel: str  # "fused" | "foreach"

    def autocast(self, device: torch.device) -> AbstractContextManager:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device.type, dtype=self.amp_dtype)

    def adam_kwargs(self) -> dict[str, bool]:
        return {self.adam_kernel: True}


def resolve_speed(t: TrainConfig, device: torch.device, is_image: bool) -> SpeedPlan:
    """The speed settings for `device`; explicit choices the device cannot honour are refused by name."""
    cuda = device.type == "cuda"
    amp = t.amp
    if amp == "auto":
        amp = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "none"
    if amp == "fp16" and not cuda:
        raise ConfigError(f"config field train.amp: fp16 needs a CUDA device (loss scaling), found device {device.type}; "
                          "use bf16 or none")
    if amp == "bf16" and device.type == "mps":
        raise ConfigError("config field train.amp: bf16 autocast is not supported on mps, found device mps; use none")
    if t.sync_bn and not cuda:
        # torch's SyncBatchNorm refuses CPU tensors ("expected input tensor to be on GPU").
        raise ConfigError(f"config field train.sync_bn: SyncBatchNorm needs CUDA, found device {device.type}")
    channels_last = t.channels_last == "true" or (t.channels_last == "auto" and cuda and is_image)
    dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return SpeedPlan(dtype, amp == "fp16", channels_last, t.compile, "fused" if cuda else "foreach")


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX), where oneDNN's bf16 kernels are
    faster than float32 rather than emulated and slower."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private torch.cpu helpers: absent is False
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def bf16_note(t: TrainConfig, device: torch.device, is_image: bool) -> str | None:
    """The note `condgan train` prints when `train.amp: auto` leaves a CPU with bf16 instructions in
    float32 for an image model: "auto" keeps float32 on CPUs, so that a run's numbers do not depend on
    the CPU, and the user is told what bf16 would buy (docs/distributed-and-speed.md, "bf16 on a CPU
    with bf16 instructions")."""
    if t.amp != "auto" or device.type != "cpu" or not is_image or not native_bf16_cpu():
        return None
    return ("this CPU has bf16 instructions: --set train.amp=bf16 --set train.channels_last=true trains image "
            "models faster (CC-LAPGAN 1.5x, AC-GAN about 1.1x per step; train.amp: auto keeps float32 on CPUs)")


def set_determinism(deterministic: bool, device: torch.device) -> None:
    """`train.deterministic`: deterministic kernels (errors on ops without one) and no cuDNN autotuning.

    Without it, CUDA runs let cuDNN benchmark convolution algorithms (faster, run-to-run jitter).
    cuBLAS needs CUBLAS_WORKSPACE_CONFIG for determinism (CUDA docs, "Results reproducibility");
    it is set here if the user has not, which works when no cuBLAS handle exists yet.
    """
    torch.use_deterministic_algorithms(deterministic)
    if device.type == "cuda":
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = not deterministic


def grad_scaler(plan: SpeedPlan, device: torch.device) -> torch.amp.GradScaler | None:
    """One GradScaler per phase when training in fp16 (each phase has its own loss and optimiser)."""
    return torch.amp.GradScaler(device.type) if plan.grad_scaling else None
