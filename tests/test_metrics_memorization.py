"""Exact nearest neighbours against brute force, and the memorisation share."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from condgan.errors import ConfigError
from condgan.metrics.memorization import memorization_share, nearest_neighbours


@pytest.mark.parametrize("distance,metric", [("l1", "cityblock"), ("l2", "euclidean")])
def test_nearest_neighbours_match_brute_force(distance, metric):
    rng = np.random.default_rng(0)
    train = rng.normal(size=(53, 2, 4, 4))
    samples = rng.normal(size=(11, 2, 4, 4))
    d = cdist(samples.reshape(11, -1), train.reshape(53, -1), metric=metric)
    order = np.argsort(d, axis=1)[:, :3]
    idx, dist = nearest_neighbours(samples, train, k=3, distance=distance, batch_size=5)
    np.testing.assert_array_equal(idx, order)
    np.testing.assert_allclose(dist, np.take_along_axis(d, order, 1), rtol=1e-10)
    assert nearest_neighbours(samples, train, k=3, distance=distance, batch_size=1000)[0].tolist() == idx.tolist()


def test_a_copied_training_image_is_found_at_distance_zero():
    train = torch.rand(40, 1, 8, 8) * 2 - 1
    samples = torch.cat([train[17:18], torch.rand(2, 1, 8, 8)])
    idx, dist = nearest_neighbours(samples, train)
    assert idx[0, 0] == 17 and dist[0, 0] == 0.0 and dist.shape == (3, 1)


def test_memorization_share_uses_the_test_quantile():
    test = np.arange(1, 101, dtype=float)  # 5% quantile (linear) = 5.95
    samples = np.array([[0.5, 9.0], [5.0, 9.0], [6.0, 9.0], [50.0, 60.0]])
    out = memorization_share(samples, test, quantile=0.05)
    assert out == {"memorization_share": 0.5, "memorization_threshold": pytest.approx(5.95),
                   "memorization_quantile": 0.05}
    with pytest.raises(ConfigError, match="quantile"):
        memorization_share(samples, test, quantile=1.0)


def test_samples_from_the_data_distribution_score_about_the_quantile():
    rng = np.random.default_rng(1)
    train, test, novel = rng.normal(size=(500, 8)), rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    copies = train[:400] + 0.01 * rng.normal(size=(400, 8))
    test_d = nearest_neighbours(test, train, distance="l2")[1]
    novel_share = memorization_share(nearest_neighbours(novel, train, distance="l2")[1], test_d)
    copy_share = memorization_share(nearest_neighbours(copies, train, distance="l2")[1], test_d)
    assert novel_share["memorization_share"] < 0.15 and copy_share["memorization_share"] == 1.0
