"""What a full run of the AC-GAN paper presets costs: images, FLOPs, hours on one GPU.

For each preset (its nets and batch as shipped; 10 classes per model, as the paper's models):
G's and D's forward FLOPs per image and the FLOPs of one whole training step (both phases,
forward and backward, with the loop's frozen parameters) are counted by
torch.utils.flop_counter.FlopCounterMode (condgan.bench.flops) on the meta device (shapes only, nothing is computed, so
the count takes a second). A multiply-add counts 2 FLOPs. Hours = steps × FLOP/step / (the GPU's
dense bf16 peak × the assumed utilisation); the default is 40% of an A100's 312 TFLOP/s, an
assumption, not a measurement (benchmarks/gpu_check.sh measures images/s on a real GPU).

    python benchmarks/preset_cost.py [--peak-tflops 312] [--utilisation 0.4] [--models 100]

`--models` multiplies the ImageNet preset's cost: the paper trains 100 such models (condgan splits).
"""

from __future__ import annotations

import argparse

import torch

from condgan.bench.flops import count_flops, training_step_flops
from condgan.config import PRESET_DIR, resolve_config
from condgan.methods import StepInputs, build_method
from condgan.nets import DataSpec

PRESETS = {"acgan-cifar10-paper": (3, 32, 32), "acgan-imagenet-paper": (3, 128, 128)}
CLASSES = 10  # per model: CIFAR-10's classes; one of the paper's 100 ImageNet models


def preset_cost(preset: str) -> dict[str, float]:
    """Forward FLOPs per image of G and D, FLOPs per training step, steps, batch and images of `preset`."""
    cfg = resolve_config([PRESET_DIR / f"{preset}.yaml"])
    shape, b = PRESETS[preset], cfg.train.batch_size
    method = build_method(cfg, DataSpec(shape, CLASSES, 1000)).to("meta")
    z, c = method.latent(1, device="meta"), torch.zeros(1, dtype=torch.long, device="meta")
    g = count_flops(lambda: method.generate(z, c))
    d = count_flops(lambda: method.D(torch.empty(1, *shape, device="meta")))
    step_in = StepInputs(torch.empty(b, *shape, device="meta"), torch.zeros(b, dtype=torch.long, device="meta"),
                         torch.arange(b, device="meta"), method.latent(b, device="meta"),
                         torch.zeros(b, dtype=torch.long, device="meta"), 0)
    return {"g": g, "d": d, "step": training_step_flops(method, step_in), "steps": cfg.train.steps, "batch": b,
            "images": cfg.train.steps * b}


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peak-tflops", type=float, default=312.0, help="dense bf16 peak (A100: 312)")
    parser.add_argument("--utilisation", type=float, default=0.4, help="assumed share of the peak reached")
    parser.add_argument("--models", type=int, default=100, help="models of the ImageNet workload (the paper: 100)")
    args = parser.parse_args()
    rate = args.peak_tflops * 1e12 * args.utilisation
    print(f"assumed rate: {args.utilisation:.0%} of {args.peak_tflops:g} TFLOP/s = {rate / 1e12:.1f} TFLOP/s")
    print("| preset | G fwd GFLOP/img | D fwd GFLOP/img | batch | GFLOP/step | steps | images | total FLOP | GPU time |")
    print("|---|---|---|---|---|---|---|---|---|")
    for preset in PRESETS:
        c = preset_cost(preset)
        total = c["step"] * c["steps"]
        rows = [(preset, 1)] + ([(f"{preset} × {args.models} models", args.models)] if "imagenet" in preset else [])
        for name, k in rows:
            print(f"| {name} | {c['g'] / 1e9:.3f} | {c['d'] / 1e9:.3f} | {c['batch']} | {c['step'] / 1e9:.1f} | "
                  f"{c['steps']} | {k * c['images']:,} | {k * total:.3g} | {_duration(k * total / rate)} |")


if __name__ == "__main__":
    main()
