"""Classification Accuracy Score (GAN-train): a classifier trained on samples, tested on real images."""

from pathlib import Path

import numpy as np
import pytest
import torch

from cli_data import write_fashion_like
from condgan.data import load_dataset
from condgan.errors import ConfigError
from condgan.evaluation.suite import EvalOptions, evaluate
from condgan.metrics.cas import classification_accuracy_score
from condgan.metrics.classifier import save_judge, train_judge

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def fashion():
    if not DEBIAN_FASHION.is_dir():
        pytest.skip("dataset-fashion-mnist is not installed (scripts/setup.sh installs it)")
    train = load_dataset("fashion-mnist", "train", data_dir=DEBIAN_FASHION)
    test = load_dataset("fashion-mnist", "test", data_dir=DEBIAN_FASHION)
    # A tiny case: 640 training images as "samples", 1000 test images as the real reference.
    small_test = test.subset(slice(0, 1000))
    return train.x()[:640], train.y[:640].numpy(), small_test


def test_cas_of_real_images_is_high_and_of_shuffled_labels_near_chance(fashion):
    x, y, test = fashion
    real = classification_accuracy_score(x, y, test, epochs=6, seed=0)
    shuffled = classification_accuracy_score(x, np.random.default_rng(0).permutation(y), test, epochs=6, seed=0)
    assert real["cas"] > 0.6, real["cas"]
    assert shuffled["cas"] < 0.2, shuffled["cas"]  # chance is 0.1
    assert sorted(real) == sorted(["cas"] + [f"cas/class_{k}" for k in range(10)])
    per_class = np.array([real[f"cas/class_{k}"] for k in range(10)])
    counts = np.bincount(test.y.numpy(), minlength=10)
    assert (per_class * counts).sum() / counts.sum() == pytest.approx(real["cas"])


def test_cas_is_seeded_and_deterministic(fashion):
    x, y, test = fashion
    x, y = x[:256], y[:256]
    before = torch.random.get_rng_state()
    a = classification_accuracy_score(x, y, test, epochs=2, seed=3)
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's RNG is left alone
    assert classification_accuracy_score(x, y, test, epochs=2, seed=3) == a


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("cas")
    folder = write_fashion_like(root / "fm", n=300)
    train = load_dataset("fashion-mnist", "train", data_dir=folder)
    test = load_dataset("fashion-mnist", "test", data_dir=folder)
    model, acc, _ = train_judge(train, test, epochs=1, shift=0, progress=False)
    judge = save_judge(model, root / "judge.safetensors", dataset=train.name, class_names=list(train.class_names),
                       sample_shape=tuple(train.x().shape[1:]), test_accuracy=acc)
    return {"root": root, "train": train, "test": test, "judge": judge}


def test_cas_suite_metric_keys_and_skip(synthetic):
    test = synthetic["test"]
    opts = EvalOptions(progress=False, cache_dir=synthetic["root"] / "cache", cas_epochs=1)
    out = evaluate(test.x(), test.y.numpy(), test, judge=synthetic["judge"], metrics=["cas", "accuracy"], options=opts)
    k = [f"/class_{i}" for i in range(10)]
    assert out["keys"]["cas"] == ["cas", *("cas" + s for s in k), "cas_real", *("cas_real" + s for s in k),
                                  "cas_epochs"]
    m = out["metrics"]
    assert m["cas_real"] == m["real_accuracy"] and m["cas_epochs"] == 1.0
    assert "trained on the samples" in out["extractors"]["cas"] and synthetic["judge"].id in out["extractors"]["cas"]
    again = evaluate(test.x(), test.y.numpy(), test, judge=synthetic["judge"], metrics=["cas"], options=opts)
    assert again["metrics"] == {key: m[key] for key in again["metrics"]}
    # Unconditional samples: no classes to train on.
    none = evaluate(test.x(), None, test, label_kind="none", judge=synthetic["judge"], metrics=["cas"], options=opts)
    assert "cas" in none["skipped"] and not none["metrics"]
    with pytest.raises(ConfigError, match="--cas-epochs"):
        evaluate(test.x(), test.y.numpy(), test, judge=synthetic["judge"], metrics=["cas"],
                 options=EvalOptions(progress=False, cas_epochs=0))
