"""Inception Score on hand-worked cases, an explicit per-split formula, and torchmetrics."""

import numpy as np
import pytest
import torch

from condgan.metrics.inception_score import inception_score


def test_uniform_predictions_score_one():
    out = inception_score(np.zeros((50, 7)), splits=5)
    assert out["is_mean"] == pytest.approx(1.0, abs=1e-12) and out["is_std"] == pytest.approx(0.0, abs=1e-12)


def test_confident_balanced_predictions_score_num_classes():
    logits = np.tile(np.eye(4) * 1e4, (10, 1))  # every split of 4 consecutive rows holds each class once
    out = inception_score(logits, splits=10)
    assert out["is_mean"] == pytest.approx(4.0, rel=1e-9) and out["is_std"] == pytest.approx(0.0, abs=1e-9)


def test_matches_explicit_formula_per_split():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(33, 5)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    scores = []
    for i in range(3):
        chunk = p[i * 33 // 3:(i + 1) * 33 // 3]
        scores.append(np.exp(np.mean(np.sum(chunk * (np.log(chunk) - np.log(chunk.mean(0))), axis=1))))
    out = inception_score(logits, splits=3)
    assert out["is_mean"] == pytest.approx(np.mean(scores), rel=1e-10)
    assert out["is_std"] == pytest.approx(np.std(scores), rel=1e-10)


def test_seed_permutes_rows_before_splitting():
    logits = np.random.default_rng(1).normal(size=(30, 4)) * 2
    perm = np.random.RandomState(2020).permutation(30)
    assert inception_score(logits, splits=3, seed=2020) == inception_score(logits[perm], splits=3)


def test_matches_torchmetrics_from_logits():
    from torchmetrics.image.inception import InceptionScore

    class Identity(torch.nn.Module):
        def forward(self, x):
            return x

    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2
    metric = InceptionScore(feature=Identity(), splits=1)
    metric.update(logits)
    assert inception_score(logits, splits=1)["is_mean"] == pytest.approx(metric.compute()[0].item(), rel=1e-4)
