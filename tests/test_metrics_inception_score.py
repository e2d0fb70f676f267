"""Inception Score on hand-worked cases, an explicit per-split formula, torchmetrics and torch-fidelity."""

import numpy as np
import pytest
import torch

from condgan.metrics.inception_score import inception_score


def test_uniform_predictions_score_one():
    out = inception_score(np.zeros((50, 7)), splits=5)
    assert out["is_mean"] == pytest.approx(1.0, abs=1e-12) and out["is_std"] == pytest.approx(0.0, abs=1e-12)


def test_confident_balanced_predictions_score_num_classes():
    logits = np.tile(np.eye(4) * 1e4, (10, 1))  # every split of 4 consecutive rows holds each class once
    out = inception_score(logits, splits=10, shuffle_seed=None)
    assert out["is_mean"] == pytest.approx(4.0, rel=1e-9) and out["is_std"] == pytest.approx(0.0, abs=1e-9)


def _numpy_inception_score(logits: np.ndarray, splits: int, seed: int | None) -> tuple[float, float]:
    """The definition re-derived in numpy: permute with RandomState(seed), split, exp(mean KL(p(y|x) || p(y)))."""
    if seed is not None:
        logits = logits[np.random.RandomState(seed).permutation(len(logits))]
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    n = len(p)
    scores = []
    for i in range(splits):
        chunk = p[i * n // splits:(i + 1) * n // splits]
        scores.append(np.exp(np.mean(np.sum(chunk * (np.log(chunk) - np.log(chunk.mean(0))), axis=1))))
    return float(np.mean(scores)), float(np.std(scores))


@pytest.mark.parametrize("seed", [None, 2020, 7])
def test_matches_explicit_formula_per_split(seed):
    logits = np.random.default_rng(0).normal(size=(33, 5)) * 3
    mean, std = _numpy_inception_score(logits, 3, seed)
    out = inception_score(logits, splits=3, shuffle_seed=seed)
    assert out["is_mean"] == pytest.approx(mean, rel=1e-10)
    assert out["is_std"] == pytest.approx(std, rel=1e-10)


def test_shuffle_seed_permutes_rows_before_splitting():
    logits = np.random.default_rng(1).normal(size=(30, 4)) * 2
    perm = np.random.RandomState(2020).permutation(30)
    assert inception_score(logits, splits=3) == inception_score(logits[perm], splits=3, shuffle_seed=None)


def _class_sorted_logits(n_per_class: int = 500, num_classes: int = 10) -> np.ndarray:
    """Confident, imperfect predictions (as a good generator's), rows sorted by predicted class."""
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(num_classes), n_per_class)
    return rng.normal(size=(len(labels), num_classes)) + 6.0 * np.eye(num_classes)[labels]


def test_class_sorted_file_scores_as_a_shuffled_one():
    """The issue's case: samples written class by class. Unshuffled splits each see one class, so
    p(y) is as peaked as p(y|x) and IS collapses towards 1; the default seeded shuffle removes that."""
    logits = _class_sorted_logits()
    shuffled = logits[np.random.default_rng(0).permutation(len(logits))]
    sorted_is, shuffled_is = inception_score(logits)["is_mean"], inception_score(shuffled)["is_mean"]
    assert sorted_is == pytest.approx(shuffled_is, rel=0.01)
    assert shuffled_is > 7.0
    assert inception_score(logits, shuffle_seed=None)["is_mean"] < 1.5  # the reported failure mode


def test_matches_torch_fidelity_isc():
    isc = pytest.importorskip("torch_fidelity.metric_isc", reason="torch-fidelity is a test extra: pip install -e .[test]")
    logits = _class_sorted_logits(50)
    ref = isc.isc_features_to_metric(torch.from_numpy(logits).float(), splits=10, shuffle=True, rng_seed=2020)
    out = inception_score(torch.from_numpy(logits).float(), splits=10)
    assert out["is_mean"] == pytest.approx(ref["inception_score_mean"], rel=1e-12)
    assert out["is_std"] == pytest.approx(ref["inception_score_std"], rel=1e-9)


def test_matches_torchmetrics_from_logits():
    from torchmetrics.image.inception import InceptionScore

    class Identity(torch.nn.Module):
        def forward(self, x):
            return x

    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2
    metric = InceptionScore(feature=Identity(), splits=1)
    metric.update(logits)
    assert inception_score(logits, splits=1)["is_mean"] == pytest.approx(metric.compute()[0].item(), rel=1e-4)


def test_inception_extractor_feeds_unbiased_logits(tmp_path):
    """`inception_extractor` returns pool3 and pool3 @ fc.weight.T (no bias), and says so in its id."""
    from test_inception import random_reference_state

    from condgan.metrics.features import inception_extractor
    from condgan.metrics.inception import FID_WEIGHTS_NAME, load_fid_inception

    path = tmp_path / FID_WEIGHTS_NAME
    state = random_reference_state()
    state["fc.bias"] = torch.full_like(state["fc.bias"], 3.0) + torch.arange(1008) / 100  # a bias that changes IS
    torch.save(state, path)
    ex = inception_extractor(path)
    net = load_fid_inception(path)
    assert ex.id == f"{net.extractor_id}/unbiased-logits"
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    feats, logits = ex.extract(x, progress=False)
    with torch.no_grad():
        out = net(x)
    np.testing.assert_allclose(feats, out["pool"].numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(logits, (out["pool"] @ state["fc.weight"].T).numpy(), rtol=1e-5, atol=1e-5)
    assert not np.allclose(logits, out["logits"].numpy(), atol=1e-2)
