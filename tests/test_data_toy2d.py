"""2D toys: the stated means and variances hold statistically; seeds and splits behave."""

from __future__ import annotations

import math

import pytest
import torch

from condgan.data.toy2d import grid_modes, load_toy, ring_modes


def test_ring_means_and_std_as_stated():
    means, std = ring_modes()
    assert means.shape == (8, 2) and std == 0.01
    for i in range(8):
        expected = [math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)]
        torch.testing.assert_close(means[i], torch.tensor(expected))


def test_grid_means_and_std_as_stated():
    means, std = grid_modes()
    assert means.shape == (25, 2) and std == 0.05
    for i in range(5):
        for j in range(5):
            assert means[5 * i + j].tolist() == [2 * i - 4, 2 * j - 4]


@pytest.mark.parametrize("name, modes, variance", [("ring", ring_modes, 1e-4), ("grid", grid_modes, 0.0025)])
def test_samples_match_the_mixture(name, modes, variance):
    n = 200_000
    data = load_toy(name, num_samples=n, seed=1)
    means, _ = modes()
    k = len(means)
    assert data.x().shape == (n, 2) and data.x().dtype == torch.float32 and data.y.dtype == torch.int64
    assert data.num_classes == k and data.name == name and not data.is_image
    # Uniform over modes: each count within 5 binomial standard deviations of n/k.
    counts = torch.bincount(data.y, minlength=k).double()
    assert (counts - n / k).abs().max() < 5 * math.sqrt(n * (1 / k) * (1 - 1 / k))
    for mode in range(k):
        points = data.x()[data.y == mode].double()
        m = len(points)
        # The mean's standard error is sqrt(variance / m); allow 5 of them.
        assert (points.mean(0) - means[mode].double()).abs().max() < 5 * math.sqrt(variance / m)
        # A sample variance's relative standard error is sqrt(2 / (m - 1)); allow 5 of them.
        assert (points.var(0) / variance - 1).abs().max() < 5 * math.sqrt(2 / (m - 1))
    # Labels are the mode drawn from: every point is nearest to its own mean.
    nearest = torch.cdist(data.x(), means).argmin(dim=1)
    assert torch.equal(nearest, data.y)


def test_seed_and_split_reproducibility():
    a = load_toy("ring", "train", 1000, seed=3)
    assert torch.equal(a.x(), load_toy("ring", "train", 1000, seed=3).x())
    assert not torch.equal(a.x(), load_toy("ring", "test", 1000, seed=3).x())
    assert not torch.equal(a.x(), load_toy("ring", "train", 1000, seed=4).x())
