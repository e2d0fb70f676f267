"""Mode metrics of trained ring runs (docs/methods.md, figures): for each run directory given,
10000 samples balanced over the classes (seed 0), scored with the Self-Conditioned GAN paper's
2D metrics (condgan.metrics.modes: modes recovered, high-quality share within 3σ, reverse KL) and,
for conditional models, the share within 3σ of the mode of the class each sample was asked for.

    python benchmarks/methods_ring_modes.py RUN [RUN ...]
"""

import sys

import numpy as np

from condgan.data.toy2d import ring_modes
from condgan.metrics.modes import mode_metrics, nearest_modes
from condgan.sampling import generate, load_run


def main(runs: list[str]) -> None:
    means, std = ring_modes()
    means = means.numpy()
    for run in runs:
        x, labels = generate(load_run(run).method, 10000, seed=0)
        m = mode_metrics(x.numpy(), means, std)
        line = f"{run}: modes {m['modes']:.0f}/8, high-quality {m['hq_percent']:.1f}%, reverse KL {m['reverse_kl']:.3f}"
        if labels is not None:
            idx, offset = nearest_modes(x.numpy(), means)
            right = (idx == labels.numpy()) & (np.linalg.norm(offset, axis=1) < 3 * std)
            line += f", at the requested class's mode {100 * right.mean():.1f}%"
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
