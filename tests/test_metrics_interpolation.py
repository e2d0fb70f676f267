"""Jump score of interpolation sequences."""

import numpy as np
import pytest
import torch

from condgan.errors import SamplesError
from condgan.metrics.interpolation import jump_score


def test_even_steps_score_one_and_a_jump_stands_out():
    a, b = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    t = torch.linspace(0, 1, 9).view(-1, 1, 1, 1)
    smooth = jump_score(a + t * (b - a))
    assert smooth["jump_ratio"] == pytest.approx(1.0) and smooth["max_step"] == pytest.approx(0.125)
    jumpy = jump_score(torch.cat([a.expand(4, -1, -1, -1) + 0.01 * torch.arange(4.0).view(-1, 1, 1, 1),
                                  b.expand(5, -1, -1, -1) + 0.01 * torch.arange(5.0).view(-1, 1, 1, 1)]))
    assert jumpy["median_step"] == pytest.approx(0.01) and jumpy["jump_ratio"] > 50


def test_l1_and_l2_steps_by_hand():
    frames = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 5.0]])
    l2 = jump_score(frames)
    assert l2["max_step"] == pytest.approx(np.sqrt(12.5))
    assert l2["median_step"] == pytest.approx((np.sqrt(12.5) + np.sqrt(0.5)) / 2)
    assert jump_score(frames, distance="l1")["max_step"] == pytest.approx(3.5)


def test_no_motion_and_too_short_sequences():
    assert jump_score(np.zeros((4, 5)))["jump_ratio"] == 1.0
    with pytest.raises(SamplesError, match="at least 3 frames"):
        jump_score(np.zeros((2, 5)))
