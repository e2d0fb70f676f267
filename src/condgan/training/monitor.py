"""Mode-collapse monitor during training (`train.monitor_every`, `train.monitor_patience`).

The AC-GAN paper (Odena et al. 2017, sec. 4.2) reads collapse off per-class MS-SSIM: a class
whose samples are more alike than the least diverse real class (its MS-SSIM above the real data's
highest per-class MS-SSIM) has lost modes. Every `monitor_every` steps this monitor draws
`SAMPLES_PER_CLASS` fresh samples per class (fixed noise, so successive checks are comparable),
computes their within-class MS-SSIM (the suite's "diversity" metric, `PAIRS` pairs per class)
and reports it; when the largest per-class value stays above the real threshold for
`monitor_patience` consecutive checks, it warns once (printed, and logged as
`monitor/collapse_warning` = 1 in metrics.jsonl at that step). With G-EMA on (`recipe.ema_decay`)
the samples are the averaged generator's, and the warning says so (`weights`).

Early in training an untrained generator also produces near-identical images, so the warning is
meaningful once training has settled; choose `monitor_every` × `monitor_patience` accordingly.
"""

from __future__ import annotations

import sys
from typing import Callable

import torch
from tqdm import tqdm

from condgan.data import LabelledData
from condgan.data.storage import SampleView
from condgan.metrics.diversity import distinct_pairs
from condgan.sampling import Classes, generate

SAMPLES_PER_CLASS = 20  # 190 distinct pairs per class available
PAIRS = 50


class CollapseMonitor:
    """`monitor(method, step) -> stats`: the trainer's periodic monitor hook (train.loop.Monitor).

    Each check runs the suite's "diversity" metric (`condgan.evaluation.suite.evaluate`, STYLE #4) on the
    fresh samples against a fixed real subset.
    """

    def __init__(self, real_x: torch.Tensor | SampleView, real_y: torch.Tensor, num_classes: int, patience: int,
                 seed: int = 0, say: Callable[[str], None] | None = None, weights: str | None = None) -> None:
        # real_x: the training images, indexable into float batches (a tensor, or the loop's SampleView)
        self.num_classes, self.patience, self.seed = num_classes, patience, seed
        # G-EMA: what the checked samples come from (condgan.sampling.generator_weights), named in the warning
        self.weights = weights
        self.say = say or (lambda msg: tqdm.write(msg, file=sys.stderr))
        # Real reference: SAMPLES_PER_CLASS training images per class, drawn once with the seed.
        gen = torch.Generator().manual_seed(seed)
        idx = []
        for k in range(num_classes):
            members = torch.nonzero(real_y.cpu() == k).flatten()
            idx.append(members[torch.randperm(len(members), generator=gen)[:SAMPLES_PER_CLASS]])
        keep = torch.cat(idx)
        self.real = LabelledData(real_x[keep].float().cpu(), real_y[keep].cpu(),
                                 tuple(str(k) for k in range(num_classes)), "monitor-real")
        n = int(torch.bincount(self.real.y, minlength=num_classes).min())
        self.pairs = min(PAIRS, distinct_pairs(n))
        self.streak = 0
        self.warned = False

    def state_dict(self) -> dict[str, int | bool]:
        """What a checkpoint keeps of this monitor (so a resumed run warns at the same step)."""
        return {"streak": self.streak, "warned": self.warned}

    def load_state_dict(self, state: dict[str, int | bool]) -> None:
        self.streak, self.warned = int(state["streak"]), bool(state["warned"])

    @torch.no_grad()
    def __call__(self, method, step: int) -> dict[str, float]:
        from condgan.evaluation.suite import EvalOptions, evaluate  # metrics (and scipy) load only when a monitor runs
        from condgan.metrics.correlation import per_class_values

        device = next(method.parameters()).device
        labels = torch.arange(self.num_classes).repeat_interleave(SAMPLES_PER_CLASS)
        was_training = method.training
        method.eval()
        x, _ = generate(method, len(labels), Classes.given(labels), seed=self.seed, device=device)
        method.train(was_training)
        m = evaluate(x, labels.numpy(), self.real, metrics=["diversity"],
                     options=EvalOptions(pairs=self.pairs, seed=self.seed, progress=False))["metrics"]
        per_class = per_class_values(m, "msssim_gen")
        threshold = float(per_class_values(m, "msssim_real").max())
        above = int((per_class > threshold).sum())
        self.streak = self.streak + 1 if above else 0
        out = {"monitor/msssim_max": float(per_class.max()), "monitor/msssim_mean": float(per_class.mean()),
               "monitor/msssim_real_max": threshold, "monitor/classes_above_real_max": float(above)}
        if self.streak >= self.patience and not self.warned:
            self.warned = True
            worst = int(per_class.argmax())
            source = f" ({self.weights})" if self.weights else ""
            self.say(f"condgan: warning: possible mode collapse at step {step}{source}: within-class MS-SSIM of class "
                     f"{worst} is {per_class[worst]:.3f}, above the real data's highest per-class value "
                     f"{threshold:.3f} ({above} classes above it) for {self.streak} consecutive checks")
            out["monitor/collapse_warning"] = 1.0
        return out
