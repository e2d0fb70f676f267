"""Test-wide settings: one intra-op thread keeps the small models of the tests fast and their
timing steady when the machine is shared (2 cores; thread oversubscription slows tiny ops 10×)."""

import torch

torch.set_num_threads(1)
