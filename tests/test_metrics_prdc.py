"""PRDC against a brute-force numpy transcription of Naeem et al.'s definitions."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from condgan.errors import SamplesError
from condgan.metrics.prdc import prdc


def _brute_force(real: np.ndarray, gen: np.ndarray, k: int) -> dict[str, float]:
    d_rr, d_gg, d_rg = cdist(real, real), cdist(gen, gen), cdist(real, gen)
    r_real = np.sort(d_rr, axis=1)[:, k]  # column 0 is the point itself
    r_gen = np.sort(d_gg, axis=1)[:, k]
    inside = d_rg < r_real[:, None]  # gen j inside the ball of real i
    return {
        "precision": inside.any(0).mean(),
        "recall": (d_rg < r_gen[None, :]).any(1).mean(),
        "density": inside.sum(0).mean() / k,
        "coverage": (d_rg.min(1) < r_real).mean(),
    }


@pytest.mark.parametrize("k", [1, 5])
def test_prdc_matches_brute_force(k):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(120, 6))
    gen = np.concatenate([rng.normal(size=(60, 6)) * 0.5, rng.normal(size=(40, 6)) + 2.0])
    out = prdc(real, gen, k=k)
    expected = _brute_force(real, gen, k)
    assert list(out) == ["precision", "recall", "density", "coverage"]
    for key in expected:
        assert out[key] == pytest.approx(expected[key], rel=1e-12), key
    assert 0 < out["precision"] < 1 and 0 < out["coverage"] < 1


def test_batch_size_does_not_change_results():
    rng = np.random.default_rng(1)
    real, gen = rng.normal(size=(70, 4)), rng.normal(size=(50, 4)) * 1.3
    assert prdc(real, gen, batch_size=7) == prdc(real, gen, batch_size=1024)


def test_identical_sets_are_fully_precise_and_covered():
    x = np.random.default_rng(2).normal(size=(40, 3))
    out = prdc(x, x.copy(), k=3)
    assert out["precision"] == out["recall"] == out["coverage"] == 1.0


def test_too_few_rows_for_k_neighbours():
    with pytest.raises(SamplesError, match="gen_feats"):
        prdc(np.zeros((10, 2)), np.zeros((5, 2)), k=5)
