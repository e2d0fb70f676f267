"""condgan: class-conditional GANs (AC-GAN and relatives) and the metrics that judge them.

The public API (docs/api.md): `train`, `sample`, `evaluate`, `stats` (what the `condgan` verbs wrap),
`load_run`, `resolve_config`, and the samples file (`Samples`, `read_samples`, `write_samples`).
"""

import condgan.methods  # noqa: F401  (registers every method and its config section)
from condgan.api import evaluate, sample, stats, train
from condgan.config import Config, resolve_config
from condgan.samples import Samples, read_samples, write_samples
from condgan.sampling import Classes, load_run
from condgan.version import __version__

__all__ = ["Classes", "Config", "Samples", "__version__", "evaluate", "load_run", "read_samples",
           "resolve_config", "sample", "stats", "train", "write_samples"]
