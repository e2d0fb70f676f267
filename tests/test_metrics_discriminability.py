"""Accuracy, the resolution sweep and the per-class resolution comparison."""

import numpy as np
import pytest
import torch

from condgan.errors import ConfigError, SamplesError
from condgan.metrics.discriminability import (
    accuracy,
    resize_down_up,
    resolution_sweep,
    share_classes_full_beats_lowest,
)


def test_accuracy_overall_and_per_class_from_logits_or_predictions():
    labels = np.array([0, 0, 1, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0, 2])
    out = accuracy(pred, labels, 3)
    assert out == {"accuracy": pytest.approx(4 / 6), "accuracy/class_0": 0.5,
                   "accuracy/class_1": pytest.approx(2 / 3), "accuracy/class_2": 1.0}
    assert accuracy(torch.nn.functional.one_hot(torch.from_numpy(pred), 3).float(), labels, 3) == out


def test_shuffled_labels_score_lower():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 30)
    logits = np.eye(10)[labels] * 4 + rng.normal(size=(300, 10))
    good = accuracy(logits, labels, 10)["accuracy"]
    shuffled = accuracy(logits, rng.permutation(labels), 10)["accuracy"]
    assert good > 0.9 and shuffled < 0.3


def test_accuracy_refuses_empty_classes_and_bad_shapes():
    with pytest.raises(SamplesError, match=r"classes \[2\]"):
        accuracy(np.array([0, 1]), np.array([0, 1]), 3)
    with pytest.raises(SamplesError, match="4 scores"):
        accuracy(np.zeros((2, 3)), np.array([0, 1]), 4)


def _stripes_vs_ramps(n: int) -> tuple[torch.Tensor, np.ndarray]:
    """Class 0: 1-px stripes (only visible at full resolution); class 1: smooth ramps."""
    stripes = (torch.arange(16) % 2 * 2 - 1).float().view(1, 1, 1, 16).expand(n, 1, 16, 16)
    ramps = torch.linspace(-1, 1, 16).view(1, 1, 1, 16).expand(n, 1, 16, 16)
    return torch.cat([stripes, ramps]), np.repeat([0, 1], n)


def _stripe_detector(x: torch.Tensor) -> torch.Tensor:
    energy = (x[..., 1:] - x[..., :-1]).abs().mean(dim=(1, 2, 3))
    return torch.stack([energy - 0.5, 0.5 - energy], dim=1)


def test_resolution_sweep_loses_fine_detail_at_low_resolution():
    images, labels = _stripes_vs_ramps(5)
    out = resolution_sweep(images, labels, _stripe_detector, [4, 8, 16], 2)
    assert out["accuracy_16px"] == 1.0 and out["accuracy_4px"] == 0.5
    assert out["accuracy_4px/class_0"] == 0.0 and out["accuracy_4px/class_1"] == 1.0
    assert set(out) == {f"accuracy_{r}px{s}" for r in (4, 8, 16) for s in ("", "/class_0", "/class_1")}
    assert resolution_sweep(images, labels, _stripe_detector, [4, 8], 2, batch_size=3) == \
        {k: v for k, v in out.items() if not k.startswith("accuracy_16px")}


def test_resize_down_up_keeps_size_and_constant_images():
    x = torch.full((2, 3, 32, 32), 0.25)
    y = resize_down_up(x, 8)
    assert y.shape == x.shape and torch.allclose(y, x)


def test_resolution_sweep_refuses_resolutions_above_the_image_size():
    images, labels = _stripes_vs_ramps(2)
    with pytest.raises(ConfigError, match="resolutions"):
        resolution_sweep(images, labels, _stripe_detector, [32], 2)


def test_share_classes_full_beats_lowest():
    out = share_classes_full_beats_lowest([0.9, 0.5, 0.7, 0.2], np.array([0.8, 0.5, 0.9, 0.1]))
    assert out == {"share_classes_full_beats_lowest": 0.5}
    with pytest.raises(SamplesError, match="per_class_acc_lowest"):
        share_classes_full_beats_lowest([0.1, 0.2], [0.1])
