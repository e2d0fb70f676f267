"""AC-GAN's successors (TAC-GAN, ADC-GAN, ReACGAN): each loss against its formula written out in
numpy, gradient directions, training without NaN, exact resume, class splits, ReACGAN's gathered
negatives under DDP, and train → sample → eval from the CLI on image data."""

import json

import numpy as np
import pytest
import torch

from cli_data import write_fashion_like
from condgan.cli import main
from condgan.config import resolve_config
from condgan.data.toy2d import ring_modes
from condgan.errors import ConfigError
from condgan.methods import StepInputs, build_method
from condgan.methods.adcgan import adc_d_class_loss, adc_g_class_loss
from condgan.methods.class_splits import ClassSplits
from condgan.methods.reacgan import d2d_ce
from condgan.methods.tacgan import tac_g_class_loss
from condgan.nets import DataSpec
from condgan.run.checkpoint import list_checkpoints, load_checkpoint
from condgan.sampling import generate, load_run
from condgan.training.loop import train, train_spawned

from ring_learning import RING

SUCCESSORS = ["tacgan", "adcgan", "reacgan"]
SMALL = ["model.hidden=16", "model.z_dim=4"]
K = 3


def _method(name, *overrides, num_classes=K):
    cfg = resolve_config(overrides=[f"method.name={name}", *SMALL, *overrides])
    torch.manual_seed(0)
    return build_method(cfg, DataSpec((2,), num_classes))


def _inputs(n=16, num_classes=K):
    g = torch.Generator().manual_seed(1)
    return StepInputs(real_x=torch.randn(n, 2, generator=g), real_c=torch.arange(n) % num_classes,
                      real_idx=torch.arange(n), gen_z=torch.randn(n, 4, generator=g),
                      gen_c=torch.randint(0, num_classes, (n,), generator=g), step=0)


# ---------------------------------------------------------------- the formulas, in numpy (float64)


def _np(t):
    return t.detach().double().numpy()


def np_log_softmax(k):
    m = k.max(axis=1, keepdims=True)
    return k - m - np.log(np.exp(k - m).sum(axis=1, keepdims=True))


def np_ce(k, c):
    return -np_log_softmax(k)[np.arange(len(c)), c].mean()


def np_bce(s, target):
    p = 1 / (1 + np.exp(-s))
    return -(np.log(p) if target == 1 else np.log(1 - p)).mean()


def np_d2d(f, v, c, temperature, m_p, m_n):
    """D2D-CE by loops: for each anchor, its proxy term against every other-class sample."""
    losses = []
    for i in range(len(f)):
        pos = np.exp(min(f[i] @ v[i] - m_p, 0.0) / temperature)
        neg = sum(np.exp(max(f[i] @ f[j] - m_n, 0.0) / temperature) for j in range(len(f)) if c[j] != c[i])
        losses.append(-np.log(pos / (pos + neg)))
    return float(np.mean(losses))


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ---------------------------------------------------------------- TAC-GAN


def test_tac_g_class_term_on_hand_made_logits():
    k = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    t = torch.tensor([[0.0, 1.0, 0.0], [-2.0, 1.0, 0.0]])
    c = torch.tensor([0, 2])
    expected = np_ce(_np(k), c.numpy()) - np_ce(_np(t), c.numpy())
    assert tac_g_class_loss(k, t, c).item() == pytest.approx(expected, rel=1e-6)


def test_tac_losses_match_the_formula():
    method = _method("tacgan", "method.class_weight=0.7", "method.g_source_loss=non_saturating")
    step = _inputs()
    d_loss, stats = method.loss(method.phase("D"), step)
    g_loss, _ = method.loss(method.phase("G"), step)
    gen_x = step.cache["gen_x"]
    s_real, l_real = (_np(t) for t in method.D(step.real_x))
    s_fake, l_fake = (_np(t) for t in method.D(gen_x))
    assert l_real.shape == (16, 2 * K)  # C's K logits, then the twin's K
    c_real, c_fake = step.real_c.numpy(), step.gen_c.numpy()
    expected_d = (np_bce(s_real, 1) + np_bce(s_fake, 0)
                  + 0.7 * (np_ce(l_real[:, :K], c_real) + np_ce(l_fake[:, K:], c_fake)))  # C on real, twin on fake
    expected_g = np_bce(s_fake, 1) + 0.7 * (np_ce(l_fake[:, :K], c_fake) - np_ce(l_fake[:, K:], c_fake))
    assert d_loss.item() == pytest.approx(expected_d, rel=1e-5)
    assert g_loss.item() == pytest.approx(expected_g, rel=1e-5)
    assert stats["D/loss_twin"].item() == pytest.approx(np_ce(l_fake[:, K:], c_fake), rel=1e-5)


def test_tac_twin_equal_to_c_cancels_the_class_gradient():
    """When the twin classifies generated samples as C classifies real ones (Q(c|x) = P(c|x)), G gets no
    class gradient: only the source term is left."""
    method, step = _method("tacgan"), _inputs()
    with torch.no_grad():
        method.D.classes.weight[K:] = method.D.classes.weight[:K]
        method.D.classes.bias[K:] = method.D.classes.bias[:K]

    def class_term_and_g_grad():
        _, logits = method.D(method.G(step.gen_z, step.gen_c))
        term = tac_g_class_loss(logits[:, :K], logits[:, K:], step.gen_c)
        grads = torch.autograd.grad(term, list(method.G.parameters()))
        return term.item(), torch.cat([g.flatten() for g in grads]).abs().max().item()

    term, grad = class_term_and_g_grad()
    with torch.no_grad():  # a twin that differs does move G
        method.D.classes.bias[K:] += torch.tensor([1.0, -1.0, 0.0])
    other_term, other_grad = class_term_and_g_grad()
    assert term == 0.0 and other_term != 0.0
    assert grad < 1e-6 * other_grad  # zero up to the summation order of the two heads' rows


# ---------------------------------------------------------------- ADC-GAN


def test_adc_class_terms_on_hand_made_logits():
    # 2 classes → 4 labels: real 0, real 1, generated 0, generated 1
    k_real = torch.tensor([[3.0, 0.0, 1.0, -1.0], [0.0, 2.0, 0.0, 1.0]])
    k_fake = torch.tensor([[0.0, 1.0, 2.0, 0.0], [1.0, -1.0, 0.5, 0.5]])
    c_real, c_fake = torch.tensor([0, 1]), torch.tensor([0, 1])
    expected = np_ce(_np(k_real), c_real.numpy()) + np_ce(_np(k_fake), c_fake.numpy() + 2)
    assert adc_d_class_loss(k_real, c_real, k_fake, c_fake).item() == pytest.approx(expected, rel=1e-6)
    g = adc_g_class_loss(k_fake, c_fake).item()
    assert g == pytest.approx(np_ce(_np(k_fake), c_fake.numpy()) - np_ce(_np(k_fake), c_fake.numpy() + 2), rel=1e-6)
    gap = np.mean([2.0 - 0.0, 0.5 - (-1.0)])  # k[K + c] − k[c]: the softmax normaliser cancels
    assert g == pytest.approx(gap, rel=1e-6)


def test_adc_losses_match_the_formula():
    method = _method("adcgan", "method.class_weight=1.5")  # minimax G, the default
    step = _inputs()
    d_loss, _ = method.loss(method.phase("D"), step)
    g_loss, _ = method.loss(method.phase("G"), step)
    s_real, k_real = (_np(t) for t in method.D(step.real_x))
    s_fake, k_fake = (_np(t) for t in method.D(step.cache["gen_x"]))
    assert k_real.shape == (16, 2 * K)
    c_real, c_fake = step.real_c.numpy(), step.gen_c.numpy()
    expected_d = np_bce(s_real, 1) + np_bce(s_fake, 0) + 1.5 * (np_ce(k_real, c_real) + np_ce(k_fake, K + c_fake))
    expected_g = -np_bce(s_fake, 0) + 1.5 * (np_ce(k_fake, c_fake) - np_ce(k_fake, K + c_fake))
    assert d_loss.item() == pytest.approx(expected_d, rel=1e-5)
    assert g_loss.item() == pytest.approx(expected_g, rel=1e-5)


def test_adc_g_term_falls_as_generated_samples_move_to_their_real_class():
    """Train the classifier (D's phase only) on the ring against a fixed generated blob; G's ADC term
    for class c then falls along the path from the blob to class c's mode."""
    method = _method("adcgan", "model.hidden=32", num_classes=8)
    modes, _ = ring_modes()
    g = torch.Generator().manual_seed(0)
    real_c = torch.arange(128) % 8
    real_x = modes[real_c] + 0.05 * torch.randn(128, 2, generator=g)
    gen_x = 0.1 * torch.randn(128, 2, generator=g)  # G's samples: a blob at the origin
    opt = torch.optim.Adam(method.D.parameters(), lr=1e-2)
    for _ in range(100):
        step = StepInputs(real_x=real_x, real_c=real_c, real_idx=torch.arange(128), gen_z=torch.zeros(128, 4),
                          gen_c=real_c, step=0, cache={"gen_x": gen_x})
        loss, stats = method.loss(method.phase("D"), step)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert stats["D/acc_real_class"] > 0.9
    with torch.no_grad():  # the blob is labelled "generated" (its class is noise there: all classes overlap)
        assert torch.softmax(method.D(gen_x)[1], dim=1)[:, 8:].sum(1).mean() > 0.9
    with torch.no_grad():
        for c in range(8):
            cs = torch.full((64,), c)
            path = [adc_g_class_loss(method.D((1 - t) * gen_x[:64] + t * modes[c])[1], cs).item()
                    for t in (0.0, 0.5, 1.0)]
            assert path[0] > path[1] > path[2], (c, path)
            assert path[2] < 0 < path[0]  # from "generated c" to "real c"


# ---------------------------------------------------------------- ReACGAN


def _d2d_case():
    rng = np.random.default_rng(0)
    f = _unit(rng.normal(size=(6, 3)))
    c = np.array([0, 0, 1, 1, 2, 0])
    proxies = _unit(rng.normal(size=(3, 3)))
    v = proxies[c].copy()
    v[0] = f[0]  # anchor 0 sits on its proxy: cosine 1 ≥ m_p, its positive term is clamped to 0
    return f, v, c


@pytest.mark.parametrize("temperature, m_p, m_n", [(0.5, 0.98, 0.02), (0.1, 0.5, -0.3), (1.0, 1.0, -1.0)])
def test_d2d_ce_on_hand_made_embeddings(temperature, m_p, m_n):
    f, v, c = _d2d_case()
    cos = f @ f.T
    if (m_p, m_n) == (0.98, 0.02):  # the case exercises both clamps and the false-negative mask
        assert (f * v).sum(1).max() >= m_p and (cos[c[:, None] != c[None, :]] < m_n).any()
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    got = d2d_ce(t(f), t(v), torch.tensor(c), t(f), torch.tensor(c), temperature, m_p, m_n).item()
    assert got == pytest.approx(np_d2d(f, v, c, temperature, m_p, m_n), rel=1e-10)


def test_d2d_ce_without_negatives_is_finite():
    f = torch.nn.functional.normalize(torch.randn(4, 3), dim=1).requires_grad_()
    c = torch.zeros(4, dtype=torch.long)
    loss = d2d_ce(f, f.detach().flip(0), c, f, c, 0.5, 0.98, 0.02)  # one class: every other sample is masked
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(f.grad).all()


def test_d2d_ce_pulls_to_the_proxy_and_pushes_from_other_classes():
    f, v, c = _d2d_case()
    settings = (0.5, 1.0, -1.0)  # no margins: every term has a gradient
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    base = np_d2d(f, v, c, *settings)
    i, j = 2, 0  # anchor 2 (class 1) and a sample of another class
    for target, direction in ((v[i], -1), (f[j], +1)):
        moved = f.copy()
        moved[i] = _unit((f[i] + 0.3 * (target - f[i]))[None])[0]
        # the proxy of the moved anchor is unchanged; the loss moves as the formula says ...
        assert np.sign(np_d2d(moved, v, c, *settings) - base) == direction
    # ... and so does the torch gradient: descending it raises the anchor's cosine to its proxy
    ft = t(f).requires_grad_()
    d2d_ce(ft, t(v), torch.tensor(c), ft, torch.tensor(c), *settings).backward()
    assert (ft.grad[i] @ t(v[i])).item() < 0


def test_reacgan_losses_match_the_formula():
    method = _method("reacgan", "method.embed_dim=8", "method.temperature=0.3", "method.class_weight=0.8",
                     "method.g_source_loss=non_saturating")
    step = _inputs()
    d_loss, _ = method.loss(method.phase("D"), step)
    g_loss, _ = method.loss(method.phase("G"), step)
    s_real, f_real = (_np(t) for t in method.D(step.real_x))
    s_fake, f_fake = (_np(t) for t in method.D(step.cache["gen_x"]))
    assert f_real.shape == (16, 8) and np.allclose(np.linalg.norm(f_real, axis=1), 1)
    proxies = _unit(_np(method.D.proxies.weight))
    c_real, c_fake = step.real_c.numpy(), step.gen_c.numpy()
    expected_d = np_bce(s_real, 1) + np_bce(s_fake, 0) + 0.8 * np_d2d(f_real, proxies[c_real], c_real, 0.3, 0.98, 0.02)
    expected_g = np_bce(s_fake, 1) + 0.8 * np_d2d(f_fake, proxies[c_fake], c_fake, 0.3, 0.98, 0.02)
    assert d_loss.item() == pytest.approx(expected_d, rel=1e-5)
    assert g_loss.item() == pytest.approx(expected_g, rel=1e-5)


# ---------------------------------------------------------------- shared behaviour


@pytest.mark.parametrize("name", SUCCESSORS)
def test_one_generator_forward_and_d_phase_leaves_g_alone(name):
    method, step = _method(name), _inputs()
    calls = []
    method.G.register_forward_hook(lambda *a: calls.append(1))
    method.loss(method.phase("D"), step)[0].backward()
    assert all(p.grad is None for p in method.G.parameters())
    assert all(p.grad is not None for p in method.D.parameters())  # every head of D learns in D's phase
    method.loss(method.phase("G"), step)[0].backward()
    assert len(calls) == 1 and method.label_kind == "class"


@pytest.mark.parametrize("overrides, needle", [
    (["method.name=tacgan", "method.class_weight=-1"], "method.class_weight: expected >= 0, found -1.0"),
    (["method.name=adcgan", "method.class_weight=.inf"], "method.class_weight: expected a finite number"),
    (["method.name=reacgan", "method.temperature=0"], "method.temperature: expected a positive number, found 0.0"),
    (["method.name=reacgan", "method.embed_dim=0"], "method.embed_dim: expected a positive number, found 0"),
    (["method.name=reacgan", "method.positive_margin=-1.5"], "method.positive_margin: expected >= -1.0, found -1.5"),
    (["method.name=reacgan", "method.negative_margin=x"], "method.negative_margin: expected float, found 'x'"),
    (["method.name=tacgan", "method.temperature=0.5"], "method.temperature: not read by method tacgan (it is a "
                                                       "setting of: reacgan)"),
])
def test_config_fields_are_validated(overrides, needle):
    with pytest.raises(ConfigError) as info:
        resolve_config(overrides=overrides)
    assert needle in str(info.value)


@pytest.mark.parametrize("name", SUCCESSORS)
def test_trains_without_nan_and_resumes_exactly(tmp_path, name):
    common = [*RING, f"method.name={name}", *(["method.embed_dim=16"] if name == "reacgan" else []),
              "train.ckpt_every=10", "train.log_every=1"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(resolve_config(overrides=[*common, "train.steps=20"]), straight, progress=False)
    train(resolve_config(overrides=[*common, "train.steps=10"]), resumed, progress=False)
    train(resolve_config(overrides=[*common, "train.steps=20"]), resumed, resume=True, progress=False)
    wa = load_checkpoint(list_checkpoints(straight)[-1])["model"]
    wb = load_checkpoint(list_checkpoints(resumed)[-1])["model"]
    assert set(wa) == set(wb) and all(torch.equal(wa[k], wb[k]) for k in wa)
    head = "D.proxies.weight" if name == "reacgan" else "D.classes.weight"  # the method's own head moved
    assert not torch.equal(load_checkpoint(list_checkpoints(straight)[0])["model"][head], wa[head])
    rows, again = ([{k: v for k, v in json.loads(line).items() if k != "images_per_sec"}
                    for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (straight, resumed))
    assert len(rows) == 20 and all(np.isfinite(r[k]) for r in rows for k in ("D/loss", "G/loss", "D/loss_class"))
    assert again == rows


@pytest.mark.parametrize("name", SUCCESSORS)
def test_class_splits(tmp_path, name):
    method = _method(name, "method.class_splits=2", num_classes=8)
    assert isinstance(method, ClassSplits) and [p.name for p in method.phases()] == ["D.s0", "G.s0", "D.s1", "G.s1"]
    for sub in method.subs:  # each sub-model's heads cover its own 4 classes
        if name == "reacgan":
            assert sub.D.proxies.num_embeddings == 4 and not sub.gather_negatives
        else:
            assert sub.D.classes.out_features == 2 * 4
    run = tmp_path / "run"
    train(resolve_config(overrides=[*RING, f"method.name={name}", "method.class_splits=2", "train.steps=10",
                                    "train.ckpt_every=5"]), run, progress=False)
    w5, w10 = (load_checkpoint(p)["model"] for p in list_checkpoints(run))
    for i in range(2):
        assert not torch.equal(w5[f"subs.{i}.G.net.0.weight"], w10[f"subs.{i}.G.net.0.weight"])
        assert all(torch.isfinite(w).all() for w in w10.values())
    loaded = load_run(run).method
    x, labels = generate(loaded, 16, seed=1)
    assert x.shape == (16, 2) and torch.isfinite(x).all() and sorted(set(labels.tolist())) == list(range(8))


def test_reacgan_under_ddp_gathers_negatives_and_matches_one_process(tmp_path):
    """Two gloo ranks with 32 samples each: negatives from the global batch of 64 (gathered with their
    gradients) give the single-process run's weights. MLP nets: no BatchNorm, no dropout."""
    cfg = resolve_config(overrides=[*RING, "method.name=reacgan", "method.embed_dim=16", "train.steps=12",
                                    "train.ckpt_every=12", "train.threads=1"])
    train(cfg, tmp_path / "single", progress=False)
    train_spawned(2, cfg, tmp_path / "ddp", progress=False)
    ours = load_checkpoint(list_checkpoints(tmp_path / "ddp")[-1])["model"]
    ref = load_checkpoint(list_checkpoints(tmp_path / "single")[-1])["model"]
    assert ours.keys() == ref.keys()
    for key, w in ref.items():
        torch.testing.assert_close(ours[key], w, rtol=1e-4, atol=1e-6, msg=key)


# ---------------------------------------------------------------- CLI, image data


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("successors")
    folder = write_fashion_like(root / "fm", n=200)
    judge = root / "judge.safetensors"
    assert main(["classifier", "train", "--data", "fashion-mnist", "--data-dir", str(folder), "--epochs", "1",
                 "--out", str(judge), "--no-progress"]) == 0
    return folder, judge


@pytest.mark.parametrize("name", SUCCESSORS)
def test_preset_trains_samples_and_evaluates_from_the_cli(images, tmp_path, monkeypatch, name):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder, judge = images
    run = tmp_path / "run"
    assert main(["train", "--config", f"{name}-fashion-mnist", "--data-dir", str(folder), "--out", str(run),
                 "--steps", "2", "--batch-size", "16", "--set", "model.g_channels=8", "--set", "model.d_channels=8",
                 "--set", "train.ckpt_every=2", "--no-progress"]) == 0
    assert main(["sample", str(run), "--n", "20", "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as s:
        assert s["images"].shape == (20, 28, 28, 1) and str(s["label_kind"]) == "class"
    assert main(["eval", "--run", str(run), "--n", "40", "--data-dir", str(folder), "--judge", str(judge),
                 "--metrics", "accuracy", "--out", str(tmp_path / "rep"), "--device", "cpu", "--no-progress"]) == 0
    result = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert result["inputs"]["label_kind"] == "class" and "accuracy" in result["metrics"]
