"""Issue-2 benchmark: a Fashion-MNIST AC-GAN preset on CPU, judged by the domain CNN.

Trains `--config` (default `acgan-fashion-mnist-paper`, the preset of the figures in docs/acgan.md;
its full length unless --steps is given) through the quickstart, then reports
training images/s and the judge's accuracy on 10,000 class-balanced samples, with the judge's
accuracy on the real test set beside it, and writes the class grid to <out>/grid.png.

    python benchmarks/acgan_fashion_mnist.py --out runs/bench-acgan-fm [--threads 2] [--config acgan-fashion-mnist]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from condgan.config import preset_or_path
from condgan.config import resolve_config
from condgan.quickstart import run_quickstart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench-acgan-fm")
    parser.add_argument("--config", default="acgan-fashion-mnist-paper", help="preset name")
    parser.add_argument("--steps", type=int, help="default: the preset's train.steps")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    numbers = run_quickstart(Path(args.out), steps=args.steps, force=True, preset=args.config)
    numbers["wall_minutes"] = (time.perf_counter() - t0) / 60
    numbers["threads"] = args.threads
    numbers["cpu"] = platform.processor() or platform.machine()
    Path(args.out, "benchmark.json").write_text(json.dumps(numbers, indent=1))
    print("\n| steps | batch | train images/s | judge acc. on samples | judge acc. on real test | wall (min) |")
    print("|---|---|---|---|---|---|")
    batch = resolve_config([preset_or_path(args.config)]).train.batch_size
    print(f"| {numbers['steps']:.0f} | {batch} | {numbers['train_images_per_sec']:.0f} | {numbers['judge_accuracy_on_samples']:.4f} | "
          f"{numbers['judge_accuracy_on_real_test']:.4f} | {numbers['wall_minutes']:.1f} |")
    print(f"\ncommand: python {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
