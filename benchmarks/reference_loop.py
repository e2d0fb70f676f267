"""The plain single-file AC-GAN loop that condgan's loop is measured against (train_speed.py,
quality_per_budget.py).

Written the way the popular single-file AC-GAN scripts are: a torch DataLoader over a Dataset whose
__getitem__ turns one uint8 image into a PIL image and then into a normalised tensor (torchvision's
ToTensor + Normalize, re-implemented since torchvision does not import beside the CPU torch), a G
forward for D's step and another for G's step, `torch.optim.Adam`, the paper's losses (D: source
BCE + class CE on real and fake; G: the config's source loss, minimax or non-saturating, + class
CE), on condgan's nets for the config (`condgan.nets.build_pair`).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from condgan.config import Config
from condgan.data import LabelledData
from condgan.nets import DataSpec, build_pair


class PerImageDataset(Dataset):
    """uint8 images decoded one at a time, as torchvision's MNIST/CIFAR10 datasets + transforms do."""

    def __init__(self, data: LabelledData) -> None:
        self.images = data.to_uint8_nhwc()  # N×H×W×C uint8, like the files on disk
        self.labels = data.y.tolist()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = self.images[i]
        pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)  # what the dataset class hands over
        x = torch.from_numpy(np.asarray(pil, dtype=np.uint8).copy())  # ToTensor: HWC uint8 → CHW float in [0, 1]
        x = (x.view(*img.shape).permute(2, 0, 1).float() / 255 - 0.5) / 0.5  # Normalize(0.5, 0.5)
        return x, self.labels[i]


def plain_acgan(cfg: Config, data: LabelledData, device: str = "cpu") -> Iterator[tuple[int, torch.nn.Module]]:
    """Train forever on `device` (batches are copied there from the per-image DataLoader, as the
    scripts do); yield (steps done, G) after every step. Seeded by `cfg.train.seed`."""
    torch.manual_seed(cfg.train.seed)
    G, D = build_pair(cfg.model, DataSpec(data.sample_shape, data.num_classes), data.num_classes)
    G, D = G.to(device), D.to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.optim.g_lr, betas=(cfg.optim.beta1, cfg.optim.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.optim.d_lr, betas=(cfg.optim.beta1, cfg.optim.beta2))
    loader = DataLoader(PerImageDataset(data), batch_size=cfg.train.batch_size, shuffle=True, drop_last=True)
    bce, ce = F.binary_cross_entropy_with_logits, F.cross_entropy
    steps = 0
    while True:
        for real_x, real_c in loader:
            real_x, real_c = real_x.to(device), real_c.to(device)
            b = real_x.shape[0]
            z = torch.randn(b, cfg.model.z_dim, device=device)
            gen_c = torch.randint(0, data.num_classes, (b,), device=device)
            # D step on a G forward of its own.
            opt_d.zero_grad()
            fake = G(z, gen_c).detach()
            s_real, k_real = D(real_x)
            s_fake, k_fake = D(fake)
            loss_d = bce(s_real, torch.ones_like(s_real)) + bce(s_fake, torch.zeros_like(s_fake)) + \
                ce(k_real, real_c) + ce(k_fake, gen_c)
            loss_d.backward()
            opt_d.step()
            # G step: a second G forward; the config's G source loss (minimax: the paper's as written).
            opt_g.zero_grad()
            s_fake, k_fake = D(G(z, gen_c))
            source = (-bce(s_fake, torch.zeros_like(s_fake)) if cfg.method.g_source_loss == "minimax"
                      else bce(s_fake, torch.ones_like(s_fake)))
            loss_g = source + ce(k_fake, gen_c)
            loss_g.backward()
            opt_g.step()
            steps += 1
            yield steps, G
