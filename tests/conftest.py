"""Test-wide settings: one intra-op thread keeps the small models of the tests fast and their
timing steady when the machine is shared (2 cores; thread oversubscription slows tiny ops 10×);
torchvision made importable for the reference implementations (`torchvision_compat`)."""

import torch

from torchvision_compat import make_torchvision_importable

torch.set_num_threads(1)
# Before anything imports torchvision (pytorch-fid, torch-fidelity, torchmetrics): see that module.
TORCHVISION_STATUS = make_torchvision_importable()
