"""Seeds derived from the config seed: one independent random stream per purpose.

`derive_seed(seed, stream, index)` is numpy's SeedSequence over (seed, stream, index), cut to 63
bits (torch and numpy take [0, 2**63)). The streams in use: STREAM_INIT (network initialisation),
STREAM_STEP (the global torch RNG at each training step: noise, classes), STREAM_EPOCH (the data
order of each epoch, condgan.data.sampler), STREAM_GRID (the fixed noise of the sample grids), 4
(Self-Cond GAN's k-means, condgan.methods.selfcond) and STREAM_RANK_STEP (per-rank draws inside a
distributed step: dropout).
"""

from __future__ import annotations

import numpy as np

STREAM_INIT, STREAM_STEP, STREAM_EPOCH, STREAM_GRID = 0, 1, 2, 3
STREAM_RANK_STEP = 5


def derive_seed(seed: int, stream: int, index: int) -> int:
    """A 63-bit seed for item `index` of `stream`, independent across streams (numpy SeedSequence)."""
    return int(np.random.SeedSequence([seed, stream, index]).generate_state(1, np.uint64)[0] >> 1)
