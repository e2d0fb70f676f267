"""Mode-collapse monitor during training (`train.monitor_every`, `train.monitor_patience`).

The AC-GAN paper (Odena et al. 2017, sec. 4.2) reads collapse off per-class MS-SSIM: a class
whose samples are more alike than the least diverse real class (its MS-SSIM above the real data's
highest per-class MS-SSIM) has lost modes. Every `monitor_every` steps this monitor draws
`SAMPLES_PER_CLASS` fresh samples per class (fixed noise, so successive checks are comparable),
computes their within-class MS-SSIM (`condgan.metrics.diversity.class_msssim`, `PAIRS` pairs per
class) and reports it; when the largest per-class value stays above the real threshold for
`monitor_patience` consecutive checks, it warns once (printed, and logged as
`monitor/collapse_warning` = 1 in metrics.jsonl at that step).

Early in training an untrained generator also produces near-identical images, so the warning is
meaningful once training has settled; choose `monitor_every` × `monitor_patience` accordingly.
"""

from __future__ import annotations

import sys
from typing import Callable

import torch
from tqdm import tqdm

from condgan.metrics.diversity import class_msssim

SAMPLES_PER_CLASS = 20  # 190 distinct pairs per class available
PAIRS = 50


class CollapseMonitor:
    """`monitor(method, step) -> stats`: the trainer's periodic monitor hook (train.loop.Monitor)."""

    def __init__(self, real_x: torch.Tensor, real_y: torch.Tensor, num_classes: int, patience: int, seed: int = 0,
                 say: Callable[[str], None] | None = None) -> None:
        self.num_classes, self.patience, self.seed = num_classes, patience, seed
        self.say = say or (lambda msg: tqdm.write(msg, file=sys.stderr))
        # Real reference: SAMPLES_PER_CLASS images per class drawn with the seed, same pairs as for samples.
        gen = torch.Generator().manual_seed(seed)
        idx = torch.cat([
            (members := torch.nonzero(real_y.cpu() == k).flatten())[torch.randperm(len(members), generator=gen)
                                                                      [:SAMPLES_PER_CLASS]]
            for k in range(num_classes)
        ])
        x, y = real_x[idx].float().cpu(), real_y[idx].cpu()
        self.real_per_class = class_msssim(x, y.numpy(), num_classes, self._pairs(y), seed)
        self.threshold = float(self.real_per_class.max())
        self.streak = 0
        self.warned = False

    @staticmethod
    def _pairs(y: torch.Tensor) -> int:
        n = int(torch.bincount(y).min())
        return min(PAIRS, n * (n - 1) // 2)

    @torch.no_grad()
    def __call__(self, method, step: int) -> dict[str, float]:
        device = next(method.parameters()).device
        gen = torch.Generator().manual_seed(self.seed)
        labels = torch.arange(self.num_classes).repeat_interleave(SAMPLES_PER_CLASS)
        z = method.latent(len(labels), generator=gen)
        was_training = method.training
        method.eval()
        x = method.generate(z.to(device), labels.to(device)).float().cpu()
        method.train(was_training)
        per_class = class_msssim(x, labels.numpy(), self.num_classes, self._pairs(labels), self.seed)
        above = int((per_class > self.threshold).sum())
        self.streak = self.streak + 1 if above else 0
        out = {"monitor/msssim_max": float(per_class.max()), "monitor/msssim_mean": float(per_class.mean()),
               "monitor/msssim_real_max": self.threshold, "monitor/classes_above_real_max": float(above)}
        if self.streak >= self.patience and not self.warned:
            self.warned = True
            worst = int(per_class.argmax())
            self.say(f"condgan: warning: possible mode collapse at step {step}: within-class MS-SSIM of class "
                     f"{worst} is {per_class[worst]:.3f}, above the real data's highest per-class value "
                     f"{self.threshold:.3f} ({above} classes above it) for {self.streak} consecutive checks")
            out["monitor/collapse_warning"] = 1.0
        return out
