"""The evaluation suite (condgan.evaluation): metric behaviour on degraded samples, numbers against
independent computations, the real-feature cache, and the collapse monitor."""

import json

import numpy as np
import pytest
import scipy.linalg
import torch

from cli_data import write_fashion_like
from condgan.data import load_dataset
from condgan.errors import ConfigError
from condgan.evaluation.metrics import EVAL_METRICS, sweep_resolutions
from condgan.evaluation.suite import EvalOptions, evaluate
from condgan.metrics.discriminability import resolution_sweep
from condgan.metrics.classifier import save_judge, train_judge
from condgan.metrics.features import judge_extractor, real_features
from condgan.training.monitor import CollapseMonitor


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A small Fashion-MNIST-format dataset (400 images per split) and a judge trained on it."""
    root = tmp_path_factory.mktemp("eval")
    folder = write_fashion_like(root / "fm", n=400)
    train = load_dataset("fashion-mnist", "train", data_dir=folder)
    test = load_dataset("fashion-mnist", "test", data_dir=folder)
    # No shift augmentation: these classes are bands of rows 2 px apart, so a shift changes the class.
    model, acc, _ = train_judge(train, test, epochs=2, shift=0, progress=False)
    judge = save_judge(model, root / "judge.safetensors", dataset=train.name, class_names=list(train.class_names),
                       sample_shape=tuple(train.x().shape[1:]), test_accuracy=acc)
    return {"root": root, "folder": folder, "train": train, "test": test, "judge": judge}


def _eval(setup, x, y, metrics, **kw):
    run = kw.pop("run", None)
    options = EvalOptions(progress=False, cache_dir=setup["root"] / "cache", **kw)
    return evaluate(x, y, setup["test"], judge=setup["judge"], metrics=metrics, train_data=lambda: setup["train"],
                    run=run, options=options)


def test_registry_names():
    assert EVAL_METRICS.names() == sorted(["is", "fid", "kid", "prdc", "intra_fid", "accuracy", "cas", "resolution_sweep",
                                           "diversity", "correlation", "memorization", "interpolation",
                                           "cluster_agreement"])


def test_sweep_resolutions():
    assert sweep_resolutions(28) == [7, 14, 21, 28]
    assert sweep_resolutions(32) == [8, 16, 32]
    assert sweep_resolutions(64) == [8, 16, 32, 64]


def test_collapsed_generator_scores_worse_on_diversity(setup):
    test = setup["test"]
    x, y = test.x()[:300], test.y[:300].numpy()
    # Collapsed: every sample of class k is the same image (the first real image of class k).
    first = {k: int(np.flatnonzero(y == k)[0]) for k in range(10)}
    collapsed = x[[first[k] for k in y]]
    good = _eval(setup, x, y, ["diversity"], pairs=20)["metrics"]
    bad = _eval(setup, collapsed, y, ["diversity"], pairs=20)["metrics"]
    assert bad["msssim_gen_mean"] == pytest.approx(1.0, abs=1e-5)
    assert bad["msssim_gen_mean"] > good["msssim_gen_mean"] + 0.1
    assert bad["share_classes_below_max_real"] == 0.0
    assert good["share_classes_below_max_real"] > 0.5


def test_label_shuffled_generator_scores_worse_on_discriminability(setup):
    test = setup["test"]
    x, y = test.x(), test.y.numpy()
    shuffled = np.random.default_rng(0).permutation(y)
    good = _eval(setup, x, y, ["accuracy", "resolution_sweep"])["metrics"]
    bad = _eval(setup, x, shuffled, ["accuracy", "resolution_sweep"])["metrics"]
    assert good["accuracy"] > 0.5 and bad["accuracy"] < 0.25
    assert bad["accuracy_28px"] < good["accuracy_28px"]
    # Real test images as "samples": their accuracy is the judge's real accuracy.
    assert good["accuracy"] == pytest.approx(good["real_accuracy"], abs=1e-12)
    # The sweep equals discriminability.resolution_sweep (which classifies each resized batch itself).
    judge = setup["judge"]
    ref = resolution_sweep(x, shuffled, lambda b: judge.model(b), [7, 14, 21, 28], 10)
    for key, value in ref.items():
        assert bad[key] == pytest.approx(value, abs=1e-12), key


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # 256-d covariances of 400 images
def test_numbers_match_independent_computation(setup):
    """accuracy from Judge.run's logits; FID as pytorch-fid computes it (np.cov, scipy sqrtm) on Judge.run features."""
    test, judge = setup["test"], setup["judge"]
    gen_x = (test.x()[:400] + 0.2 * torch.randn(400, 1, 28, 28, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
    gen_y = test.y[:400].numpy()
    out = _eval(setup, gen_x, gen_y, ["accuracy", "fid", "is"])
    feats_g, logits_g = (t.double().numpy() for t in judge.run(gen_x))
    feats_r, _ = (t.double().numpy() for t in judge.run(test.x()))
    assert out["metrics"]["accuracy"] == pytest.approx(float((logits_g.argmax(1) == gen_y).mean()), abs=1e-12)
    mu1, mu2 = feats_r.mean(0), feats_g.mean(0)
    s1, s2 = np.cov(feats_r, rowvar=False), np.cov(feats_g, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    ref = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    assert out["metrics"]["fid"] == pytest.approx(ref, rel=1e-4)
    assert set(out["extractors"]) == {"accuracy", "fid", "is"}
    assert all(v == judge.id for v in out["extractors"].values())


def test_real_features_cache_hit(setup, tmp_path):
    ex = judge_extractor(setup["judge"])
    f1, l1, hit1 = real_features(setup["test"], "test", ex, cache_dir=tmp_path, progress=False)
    f2, l2, hit2 = real_features(setup["test"], "test", ex, cache_dir=tmp_path, progress=False)
    assert (hit1, hit2) == (False, True)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(l1, l2)
    (cached,) = tmp_path.iterdir()
    assert setup["judge"].sha256[:12] in cached.name and "28x28x1" in cached.name


class _CollapsedMethod(torch.nn.Module):
    """A generator that ignores z: one fixed image per class (total mode collapse)."""

    conditional = True

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.images = torch.nn.Parameter(images)
        self.num_classes = len(images)

    def latent(self, n, device="cpu", generator=None):
        return torch.randn(n, 4, generator=generator)

    def generate(self, z, c):
        return self.images[c] + 0 * z.sum()


def test_collapse_monitor_warns_once(setup):
    train = setup["train"]
    said = []
    monitor = CollapseMonitor(train.x(), train.y, 10, patience=2, say=said.append)
    first = torch.stack([train.x()[train.y == k][0] for k in range(10)])
    collapsed = _CollapsedMethod(first)
    rows = [monitor(collapsed, step) for step in (10, 20, 30)]
    assert rows[0]["monitor/msssim_max"] == pytest.approx(1.0, abs=1e-5)
    assert rows[0]["monitor/classes_above_real_max"] == 10
    assert "monitor/collapse_warning" not in rows[0] and rows[1]["monitor/collapse_warning"] == 1.0
    assert "monitor/collapse_warning" not in rows[2]
    assert len(said) == 1 and "mode collapse at step 20" in said[0]
    # A diverse generator (independent noise images): below the real maximum, no warning.
    noisy = _CollapsedMethod(first)
    noisy.generate = lambda z, c: torch.rand(len(c), 1, 28, 28, generator=torch.Generator().manual_seed(3)) * 2 - 1
    healthy = CollapseMonitor(train.x(), train.y, 10, patience=1, say=said.append)
    row = healthy(noisy, 5)
    assert row["monitor/classes_above_real_max"] == 0 and "monitor/collapse_warning" not in row
    assert len(said) == 1


def test_monitor_wired_from_config(setup, tmp_path):
    from condgan.cli import main

    run = tmp_path / "run"
    assert main(["train", "--config", "acgan-fashion-mnist", "--data-dir", str(setup["folder"]), "--out", str(run),
                 "--steps", "4", "--batch-size", "16", "--set", "model.g_channels=8", "--set", "model.d_channels=8",
                 "--set", "train.log_every=2", "--set", "train.monitor_every=2", "--set", "train.monitor_patience=1",
                 "--no-progress"]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "monitor/msssim_max" in r] == [2, 4]
    assert all(0.0 <= r["monitor/msssim_real_max"] <= 1.0 for r in rows)


def test_evaluate_without_judge_only_for_pixel_metrics(setup):
    test = setup["test"]
    out = evaluate(test.x()[:200], test.y[:200].numpy(), test, metrics=["diversity"],
                   options=EvalOptions(pairs=10, progress=False))
    assert out["extractors"]["diversity"].startswith("pixels:")
    with pytest.raises(ConfigError, match="metric fid: expected a judge"):
        evaluate(test.x()[:200], test.y[:200].numpy(), test, metrics=["fid"], options=EvalOptions(progress=False))


def test_feature_extractor_ids_per_metric(setup, monkeypatch, tmp_path):
    """With another feature network (as with --inception-weights), is/fid use it; accuracy stays on the judge."""
    from condgan.metrics.features import Extractor, inception_weights_from_env

    fake = Extractor("fake-inception:0123456789ab", lambda x: (x.flatten(1)[:, :32], x.flatten(1)[:, :7]),
                     torch.device("cpu"))
    test = setup["test"]
    out = evaluate(test.x()[:200], test.y[:200].numpy(), test, judge=setup["judge"], features=fake,
                   metrics=["fid", "is", "accuracy"], options=EvalOptions(cache_dir=tmp_path, progress=False))
    assert out["extractors"] == {"fid": fake.id, "is": fake.id, "accuracy": setup["judge"].id}
    assert any(fake.id.replace(":", "_") in p.name for p in tmp_path.iterdir())
    monkeypatch.setenv("CONDGAN_INCEPTION_WEIGHTS", "/w.pth")
    assert inception_weights_from_env(None) == "/w.pth" and inception_weights_from_env("/x.pth") == "/x.pth"


def test_nearest_l2_matches_exact_search():
    from condgan.metrics.memorization import nearest_l2
    from condgan.metrics.memorization import nearest_neighbours

    g = torch.Generator().manual_seed(0)
    q, r = torch.rand(50, 1, 28, 28, generator=g) * 2 - 1, torch.rand(3000, 1, 28, 28, generator=g) * 2 - 1
    _, exact = nearest_neighbours(q.double(), r.double(), 1, "l2")
    np.testing.assert_allclose(nearest_l2(q, r, batch_size=700), exact[:, 0], rtol=1e-4)


def test_per_class_nearest_neighbour_distances_match_brute_force(setup):
    """With fewer than NN_PER_CLASS images per class every image is a query, so each per-class median
    is the median of exact nearest-training-image distances (torch.cdist), for samples and real."""
    from condgan.evaluation.metrics import NN_PER_CLASS

    test, train = setup["test"], setup["train"]
    gen_x = (test.x() + 0.3 * torch.randn(test.x().shape, generator=torch.Generator().manual_seed(2))).clamp(-1, 1)
    gen_y = test.y.numpy()
    assert np.bincount(gen_y).max() < NN_PER_CLASS
    m = _eval(setup, gen_x, gen_y, ["memorization"])["metrics"]
    for key, x in (("nn_l2_pixel", gen_x), ("real_nn_l2_pixel", test.x())):
        exact = torch.cdist(x.flatten(1).double(), train.x().flatten(1).double()).min(1).values.numpy()
        for k in range(10):
            assert m[f"{key}/class_{k}"] == pytest.approx(float(np.median(exact[gen_y == k])), rel=1e-4), (key, k)
    assert m["nn_l2_pixel_mean"] > m["real_nn_l2_pixel_mean"]  # noise moves samples away from the training set
