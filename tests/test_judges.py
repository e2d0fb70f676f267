"""Several judges: the spread of every judge-based number across independently trained judges,
the per-seed judge cache and `condgan eval --judges N` / `--judge A,B`."""

import json

import numpy as np
import pytest

from cli_data import write_fashion_like
from condgan.cli import main
from condgan.data import load_dataset
from condgan.evaluation.suite import EvalOptions, evaluate, spread_key
from condgan.metrics.classifier import default_judge_path, load_judge, save_judge, train_judge


@pytest.fixture(scope="module")
def two_judges(tmp_path_factory):
    root = tmp_path_factory.mktemp("judges")
    folder = write_fashion_like(root / "fm", n=300)
    train = load_dataset("fashion-mnist", "train", data_dir=folder)
    test = load_dataset("fashion-mnist", "test", data_dir=folder)
    judges = []
    for seed in (0, 1):
        model, acc, _ = train_judge(train, test, epochs=1, shift=0, seed=seed, progress=False)
        judges.append(save_judge(model, root / f"judge{seed}.safetensors", dataset=train.name,
                                 class_names=list(train.class_names), sample_shape=tuple(train.x().shape[1:]),
                                 test_accuracy=acc, seed=seed))
    return {"root": root, "folder": folder, "train": train, "test": test, "judges": judges}


def test_spread_key():
    assert spread_key("accuracy", "std") == "accuracy_judges_std"
    assert spread_key("accuracy/class_3", "min") == "accuracy_judges_min/class_3"


def test_two_judges_give_a_spread(two_judges):
    test, (j0, j1) = two_judges["test"], two_judges["judges"]
    assert j0.id != j1.id and (j0.seed, j1.seed) == (0, 1)
    x, y = test.x()[:200], test.y[:200].numpy()
    opts = EvalOptions(progress=False, cache_dir=two_judges["root"] / "cache", pairs=10)
    metrics = ["accuracy", "fid", "diversity", "correlation", "memorization"]
    train = lambda: two_judges["train"]  # noqa: E731
    one = evaluate(x, y, test, judge=j0, metrics=metrics, train_data=train, options=opts)
    both = evaluate(x, y, test, judge=j0, extra_judges=[j1], metrics=metrics, train_data=train, options=opts)
    m = both["metrics"]
    # The first judge's numbers keep their keys and values; with one judge nothing else appears.
    assert {k: m[k] for k in one["metrics"]} == one["metrics"]
    assert not any("_judges_" in k for k in one["metrics"])
    assert [j["id"] for j in one["judges"]] == [j0.id]
    for key in ("accuracy", "real_accuracy", "fid", "pearson_r", "accuracy/class_0"):
        assert all(spread_key(key, stat) in m for stat in ("mean", "std", "min", "max")), key
    assert "accuracy_judges_std/class_0" in both["keys"]["accuracy"] and "fid_judges_mean" in both["keys"]["fid"]
    # Two differently seeded judges see the samples differently: a nonzero spread.
    assert m["fid_judges_std"] > 0
    assert m["fid_judges_min"] < m["fid_judges_max"]
    assert m["real_accuracy_judges_min"] <= m["real_accuracy"] <= m["real_accuracy_judges_max"]
    per_judge = both["judges"]
    assert [j["id"] for j in per_judge] == [j0.id, j1.id] and [j["seed"] for j in per_judge] == [0, 1]
    assert per_judge[0]["metrics"]["fid"] == m["fid"]
    assert m["fid_judges_mean"] == pytest.approx((per_judge[0]["metrics"]["fid"] + per_judge[1]["metrics"]["fid"]) / 2)
    # Pixel-only metrics, and the pixel keys of memorisation, are computed once and get no spread.
    assert not any(k.startswith("msssim") and "_judges_" in k for k in m)
    assert "memorization_share_judge_judges_std" in m and "memorization_share_pixel_judges_std" not in m
    assert not any("pixel" in k for k in per_judge[1]["metrics"])


def test_judge_cache_by_seed_and_cli(two_judges, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shape = (1, 28, 28)
    assert default_judge_path("fashion-mnist", shape).name == "fashion-mnist-28px-1ch.safetensors"
    assert default_judge_path("fashion-mnist", shape, 2).name == "fashion-mnist-28px-1ch-seed2.safetensors"
    test = two_judges["test"]
    samples = tmp_path / "s.npz"
    np.savez(samples, images=test.to_uint8_nhwc(), labels=test.y.numpy())
    base = ["eval", "--samples", str(samples), "--real", "fashion-mnist", "--data-dir", str(two_judges["folder"]),
            "--metrics", "accuracy", "--no-progress"]
    # Missing cached judges are refused with the commands that train them.
    assert main([*base, "--judges", "2", "--out", str(tmp_path / "r0")]) == 2
    err = capsys.readouterr().err
    assert "condgan classifier train --data fashion-mnist" in err and "--seed 0" in err and "--seed 1" in err
    # `classifier train --seed 1` caches seed 1 beside seed 0.
    for seed in (0, 1):
        assert main(["classifier", "train", "--data", "fashion-mnist", "--data-dir", str(two_judges["folder"]),
                     "--epochs", "1", "--seed", str(seed), "--no-progress"]) == 0
        assert load_judge(default_judge_path("fashion-mnist", shape, seed)).seed == seed
    assert main([*base, "--judges", "2", "--out", str(tmp_path / "r1")]) == 0
    result = json.loads((tmp_path / "r1" / "metrics.json").read_text())
    assert len(result["judges"]) == 2 and "accuracy_judges_std" in result["metrics"]
    assert "accuracy_judges_min" in capsys.readouterr().out
    # --judge, repeated or comma-separated, gives the same judges.
    j = [str(p) for p in (default_judge_path("fashion-mnist", shape, 0), default_judge_path("fashion-mnist", shape, 1))]
    assert main([*base, "--judge", ",".join(j), "--out", str(tmp_path / "r2")]) == 0
    assert main([*base, "--judge", j[0], "--judge", j[1], "--out", str(tmp_path / "r3")]) == 0
    r2, r3 = (json.loads((tmp_path / r / "metrics.json").read_text()) for r in ("r2", "r3"))
    assert r2["metrics"] == r3["metrics"] == result["metrics"]
    assert main([*base, "--judge", j[0], "--judges", "2", "--out", str(tmp_path / "r4")]) == 2
    assert "not both" in capsys.readouterr().err


def test_random_shift_translates_each_image_and_fills_background():
    import torch

    from condgan.metrics.classifier import random_shift

    x = torch.full((64, 1, 8, 8), -1.0)
    x[:, :, 3, 4] = 1.0  # one bright pixel per image
    out = random_shift(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and (out == 1.0).sum() == 64 and set(out.unique().tolist()) == {-1.0, 1.0}
    where = (out[:, 0] == 1.0).nonzero()[:, 1:]
    dy, dx = where[:, 0] - 3, where[:, 1] - 4
    assert dy.abs().max() <= 2 and dx.abs().max() <= 2 and len(set(zip(dy.tolist(), dx.tolist()))) > 10
    assert torch.equal(random_shift(x, 0, torch.Generator()), x)


def test_the_inference_copy_gives_the_judges_outputs():
    """The extractor's fused channels-last copy equals the judge as trained (eval mode) to float32
    rounding, and leaves the judge itself untouched."""
    import torch

    from condgan.metrics.classifier import JudgeCNN, for_inference
    from condgan.metrics.features import Extractor

    torch.manual_seed(0)
    model = JudgeCNN(1, 28, 10)
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # statistics far from 0/1
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.2, 3), bn.weight.data.uniform_(0.5, 2)
        bn.bias.data.uniform_(-1, 1)
    fused = for_inference(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert model.training and any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    x = torch.rand(300, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        want_f = model.eval().features(x)
        got_f = fused.features(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(got_f, want_f, atol=1e-5, rtol=1e-5)
    assert torch.equal(fused.head(got_f).argmax(1), model.head(want_f).argmax(1))
    ex = Extractor("judge", lambda b: (fused.features(b), fused.head(fused.features(b))), torch.device("cpu"), batch_size=128)
    f, logits = ex.extract(x, progress=False)  # 3 uneven batches of the extractor's size
    assert f.shape == (300, 256) and np.allclose(logits, model.head(want_f).detach().numpy(), atol=1e-5)
