"""Figures and numbers of docs/methods-lapgan-selfcond.md from trained runs.

    python benchmarks/lapgan_selfcond_figures.py --lapgan RUN --selfcond-ring RUN --selfcond RUN --out docs/figures

--lapgan (a LAPGAN or CC-LAPGAN run on images) writes `<out>/lapgan-chain.png` (the coarse-to-fine
chain, LAPGAN paper fig. 3 layout) and prints each pyramid band's RMS for 1000 samples beside the
real data's. --selfcond-ring (a Self-Cond GAN run on the ring) writes `<out>/selfcond-ring-samples.png`
(samples coloured by the cluster they were drawn for), prints the purity/NMI of each re-clustering
from the run's log and the 2D scores of the official code
(2d_mix/evaluation.py): the share of high-quality samples (both coordinates within 3σ of a mode),
the number of modes reached by one, and KL(nearest-mode histogram ‖ uniform). --selfcond (a Self-Cond
GAN run on any data) prints the purity/NMI of each re-clustering only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from condgan.data.toy2d import TOYS
from condgan.nets.pyramid import laplacian_pyramid
from condgan.report.grid import save_scatter
from condgan.report.pyramid import lapgan_chain
from condgan.sampling import Classes, generate, load_run
from condgan.training.loop import load_training_data

NUM_SAMPLES = 1000


def band_rms(x: torch.Tensor, levels: int) -> list[float]:
    """RMS of each Laplacian band h_0 … h_K over a batch of images."""
    return [round(float(h.pow(2).mean().sqrt()), 4) for h in laplacian_pyramid(x, levels)]


def lapgan_report(run: Path, out: Path) -> dict:
    loaded = load_run(run)
    method = loaded.method
    levels = method.K + 1
    real = load_training_data(loaded.config).data.x(slice(0, NUM_SAMPLES))
    fake, _ = generate(method, NUM_SAMPLES, Classes.prior(), seed=0)
    classes = list(range(method.num_classes)) if method.conditional else None
    png = lapgan_chain(method, out / "lapgan-chain.png", n=min(6, max(method.num_classes, 4)), classes=classes,
                       class_names=loaded.class_names if method.conditional else None,
                       title=f"{loaded.config.method.name}, step {loaded.step}")
    return {"run": str(run), "step": loaded.step, "figure": str(png),
            "band_rms_real": band_rms(real, levels), "band_rms_generated": band_rms(fake, levels)}


def ring_scores(x: torch.Tensor, means: torch.Tensor, std: float) -> dict:
    good = ((x[:, None, :] - means[None]).abs() < 3 * std).all(dim=2)  # N × modes
    nearest = torch.cdist(x, means).argmin(dim=1)
    p = torch.bincount(nearest, minlength=len(means)).double() / len(x)
    kl = float((p[p > 0] * (len(means) * p[p > 0]).log()).sum())
    return {"high_quality": float(good.any(dim=1).float().mean()), "modes": int(good.any(dim=0).sum()), "kl": round(kl, 4)}


def selfcond_ring_report(run: Path, out: Path) -> dict:
    loaded = load_run(run)
    method = loaded.method
    data = load_training_data(loaded.config)
    means, std = TOYS[data.name]()
    x, c = generate(method, 10 * NUM_SAMPLES, Classes.prior(), seed=0)
    save_scatter(x[:5000].numpy(), c[:5000].numpy(), out / "selfcond-ring-samples.png", modes=means.numpy(),
                 title=f"samples by drawn cluster (step {loaded.step})")
    return {"run": str(run), "step": loaded.step, **ring_scores(x, means, std), "reclusterings": reclusterings(run)}


def reclusterings(run: Path) -> list[dict]:
    """The cluster/* diagnostics (purity, NMI, changed, nonempty) of every re-clustering in a run's log."""
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: round(v, 4) for k, v in r.items() if k.startswith("cluster/") or k == "step"}
            for r in log if "cluster/purity" in r]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lapgan", type=Path, help="a LAPGAN/CC-LAPGAN run directory")
    parser.add_argument("--selfcond-ring", type=Path, help="a Self-Cond GAN run directory on the ring")
    parser.add_argument("--selfcond", type=Path, help="a Self-Cond GAN run directory on any data: its re-clusterings")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.lapgan:
        print(json.dumps(lapgan_report(args.lapgan, args.out)))
    if args.selfcond_ring:
        print(json.dumps(selfcond_ring_report(args.selfcond_ring, args.out)))
    if args.selfcond:
        print(json.dumps({"run": str(args.selfcond), "reclusterings": reclusterings(args.selfcond)}))


if __name__ == "__main__":
    main()
