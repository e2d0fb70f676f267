"""The modern GAN recipe (docs/quality.md): spectral normalisation, hinge loss, G-EMA, DiffAugment,
R1, n_dis, per-player Adam settings and mode seeking, each for every method and each off by default."""

import dataclasses
import json
import math

import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn.utils import parametrize

import condgan.methods.gan as gan
from cli_data import write_fashion_like
from condgan.cli import main
from condgan.config import Config, RecipeConfig, preset_or_path, resolve_config, rule_of
from condgan.errors import CheckpointError, ConfigError
from condgan.methods import StepInputs, build_method
from condgan.methods.diffaugment import POLICIES, color, cutout, diff_augment, translation
from condgan.methods.gan import GAN, d_source_loss, g_source_loss
from condgan.methods.recipe import (MODE_SEEKING_EPS, DiscriminatorTerms, GeneratorTerms, mode_seeking_ratio, r1_penalty,
                                   same_condition_pairs)
from condgan.nets import DataSpec
from condgan.run.checkpoint import list_checkpoints, load_checkpoint
from condgan.sampling import load_run
from condgan.training.ema import GeneratorEMA
from condgan.training.loop import train

SMALL_IMAGES = ["model.g_channels=4", "model.d_channels=4", "model.hidden=32", "model.z_dim=8", "model.dropout=0"]
IMAGES = DataSpec((1, 28, 28), 10, 12)
# Every technique on, at settings that act within a few steps.
ALL_ON = ["recipe.spectral_norm=g_and_d", "recipe.ema_decay=0.5", "recipe.ema_start=1",
          "recipe.diffaugment=color,translation,cutout", "recipe.r1_gamma=1.0", "recipe.r1_interval=2",
          "recipe.n_dis=2", "recipe.mode_seeking=1.0", "method.d_source_loss=hinge", "method.g_source_loss=hinge",
          "optim.g_beta1=0.0", "optim.d_beta1=0.0", "optim.d_lr=4e-4"]
METHODS = [
    ["method.name=gan"],
    ["method.name=cgan"],
    ["method.name=cgan", "method.cgan_variant=projection"],
    ["method.name=acgan"],
    ["method.name=acgan", "method.class_splits=2"],
    ["method.name=lapgan"],
    ["method.name=cclapgan"],
    ["method.name=selfcond", "method.num_clusters=3", "method.cluster_fit_size=40", "method.recluster_every=1"],
    ["method.name=tacgan"],
    ["method.name=adcgan"],
    ["method.name=reacgan", "method.embed_dim=16"],
]


@pytest.fixture(scope="module")
def fm(tmp_path_factory):
    """Fashion-MNIST-format files of 40 images (tests/cli_data.py)."""
    return write_fashion_like(tmp_path_factory.mktemp("recipe") / "fm", n=40)


def run_cfg(fm, *extra):
    return resolve_config(overrides=[f"data.data_dir={fm}", *SMALL_IMAGES, "train.batch_size=8", "train.log_every=2",
                                     "train.grid_every=100", "train.ckpt_every=2", "train.keep_ckpts=10",
                                     "train.threads=1", *extra])


def _method(*overrides, spec=IMAGES):
    torch.manual_seed(0)
    return build_method(resolve_config(overrides=[*SMALL_IMAGES, *overrides]), spec)


def _step(method, spec=IMAGES, n=12, step=0, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *spec.sample_shape, generator=g) * 2 - 1
    c = torch.arange(n) % max(method.num_classes, 1)
    return StepInputs(x, c, torch.arange(n), method.latent(n, generator=g), c.flip(0), step=step)


# ---------------------------------------------------------------- config


def test_every_option_is_off_by_default():
    cfg = Config()
    assert cfg.recipe == RecipeConfig(spectral_norm="none", ema_decay=0.0, ema_start=0, ema_rampup=0.0, diffaugment="none",
                                      r1_gamma=0.0, r1_interval=1, n_dis=1, mode_seeking=0.0)
    assert not cfg.recipe.ema
    assert (cfg.method.d_source_loss, cfg.method.g_source_loss) == ("bce", "minimax")
    assert cfg.optim.betas("G") == cfg.optim.betas("D") == (0.5, 0.999)
    method = _method()
    assert method.d_terms == DiscriminatorTerms() and method.g_terms == GeneratorTerms()
    assert not any(parametrize.is_parametrized(m) for m in method.modules())


@pytest.mark.parametrize("override, needle", [
    ("recipe.spectral_norm=g", "config field recipe.spectral_norm: expected one of none, d, g_and_d, found 'g'"),
    ("recipe.ema_decay=1.0", "config field recipe.ema_decay: expected a value in [0, 1), found 1.0"),
    ("recipe.ema_start=-1", "config field recipe.ema_start: expected >= 0, found -1"),
    ("recipe.ema_rampup=-0.1", "config field recipe.ema_rampup: expected >= 0.0, found -0.1"),
    ("recipe.diffaugment=flip", "config field recipe.diffaugment: expected none or a comma-separated list of "
                                "translation, cutout, color (each at most once), found 'flip'"),
    ("recipe.diffaugment=cutout,cutout", "recipe.diffaugment: expected none or a comma-separated list"),
    ("recipe.diffaugment=none,cutout", "recipe.diffaugment: expected none or a comma-separated list"),
    ("recipe.r1_gamma=-1", "config field recipe.r1_gamma: expected >= 0.0, found -1.0"),
    ("recipe.r1_interval=0", "config field recipe.r1_interval: expected a positive number, found 0"),
    ("recipe.n_dis=0", "config field recipe.n_dis: expected a positive number, found 0"),
    ("recipe.n_dis=1.5", "config field recipe.n_dis: expected int, found 1.5"),
    ("recipe.mode_seeking=-1", "config field recipe.mode_seeking: expected >= 0.0, found -1.0"),
    ("optim.g_beta1=1.0", "config field optim.g_beta1: expected a value in [0, 1), found 1.0"),
    ("optim.d_beta2=-0.1", "config field optim.d_beta2: expected a value in [0, 1), found -0.1"),
    ("method.d_source_loss=wasserstein", "config field method.d_source_loss: expected one of bce, hinge"),
    ("method.g_source_loss=linear", "config field method.g_source_loss: expected one of minimax, non_saturating, hinge"),
    ("recipe.emma=0.9", "unknown config key recipe.emma; expected one of: diffaugment, ema_decay"),
])
def test_bad_values_are_one_line_naming_the_field(override, needle):
    with pytest.raises(ConfigError) as info:
        resolve_config(overrides=[override])
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_diffaugment_rule_lists_the_transforms_that_exist():
    rule = rule_of({f.name: f for f in dataclasses.fields(RecipeConfig)}["diffaugment"])
    assert set(rule.items) == set(POLICIES)


def test_diffaugment_of_2d_points_is_refused():
    with pytest.raises(ConfigError, match=r"recipe.diffaugment: augments images, found samples of shape \(2,\)"):
        _method("recipe.diffaugment=translation", "model.hidden=8", spec=DataSpec((2,), 3))


def test_default_preset_is_the_recipe_docs_quality_measures():
    """docs/quality.md ("The default recipe") and the README give figures of exactly this recipe;
    the paper's setup stays beside it."""
    cfg = resolve_config([preset_or_path("acgan-fashion-mnist")])
    assert (cfg.method.name, cfg.method.class_weight, cfg.method.g_source_loss) == ("tacgan", 1.0, "non_saturating")
    assert (cfg.model.g_channels, cfg.model.d_channels, cfg.optim.g_lr, cfg.optim.d_lr) == (32, 32, 1.6e-3, 1.6e-3)
    assert cfg.optim.betas("G") == cfg.optim.betas("D") == (0.5, 0.999)
    assert (cfg.recipe.mode_seeking, cfg.recipe.ema_decay, cfg.recipe.ema_rampup) == (0.8, 0.999, 0.05)
    assert (cfg.recipe.spectral_norm, cfg.recipe.diffaugment, cfg.recipe.r1_gamma) == ("none", "none", 0.0)
    assert (cfg.train.steps, cfg.train.batch_size) == (9000, 64)
    paper = resolve_config([preset_or_path("acgan-fashion-mnist-paper")])
    assert (paper.method.name, paper.model.g_channels, paper.optim.g_lr, paper.train.steps) == ("acgan", 64, 2e-4, 6000)


def test_modern_preset_resolves_to_its_recipe():
    cfg = resolve_config([preset_or_path("acgan-fashion-mnist-modern")])
    r = cfg.recipe
    assert (r.spectral_norm, r.diffaugment, r.n_dis) == ("d", "translation", 1) and r.ema
    assert (cfg.method.d_source_loss, cfg.method.g_source_loss) == ("hinge", "hinge")
    assert cfg.optim.betas("G") == cfg.optim.betas("D") == (0.0, 0.999)


# ---------------------------------------------------------------- spectral normalisation


def _top_singular_values(module):
    """σ_max of the normalised weight of each spectrally normalised layer (reshaped as torch's SN does)."""
    out = []
    for layer in module.modules():
        if parametrize.is_parametrized(layer, "weight"):
            w = layer.weight.detach()
            w = w.transpose(0, 1) if isinstance(layer, nn.modules.conv._ConvTransposeNd) else w
            out.append(float(torch.linalg.matrix_norm(w.flatten(1), ord=2)))
    return out


@pytest.mark.parametrize("extra", [["method.name=acgan"], ["method.name=cgan", "method.cgan_variant=projection"],
                                   ["method.name=lapgan"]])
def test_spectral_norm_keeps_each_d_layer_near_one_while_training(fm, tmp_path, extra):
    run = tmp_path / "run"
    train(run_cfg(fm, *extra, "recipe.spectral_norm=d", "train.steps=6"), run, progress=False)
    method = load_run(run).method  # the trained weights and power-iteration vectors, from the checkpoint
    d_modules = [p.module for p in method.phases() if p.role == "D"]
    sigmas = [s for m in d_modules for s in _top_singular_values(m)]
    assert len(sigmas) >= 3 * len(d_modules)  # every conv/linear/embedding layer of every D
    # one power iteration per forward underestimates σ a little while D moves: σ of W/σ̂ is ≥ 1 and near it
    assert all(0.99 < s < 1.05 for s in sigmas), str([round(s, 3) for s in sigmas])
    g_modules = [p.module for p in method.phases() if p.role == "G"]
    assert not any(_top_singular_values(m) for m in g_modules), "recipe.spectral_norm=d leaves G alone"


def test_without_spectral_norm_the_layers_are_not_normalised():
    method = _method("method.name=acgan")
    raw = [float(torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2))
           for m in method.D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert all(abs(s - 1) > 0.2 for s in raw), raw  # what the SN test above would catch


def test_spectral_norm_of_both_players():
    method = _method("method.name=acgan", "recipe.spectral_norm=g_and_d")
    method.train()
    for _ in range(3):
        method.loss(method.phase("D"), _step(method))
    sigmas = _top_singular_values(method.G)
    assert sigmas and all(abs(s - 1) < 0.05 for s in sigmas), sigmas


def test_spectral_norm_is_part_of_the_architecture(fm, tmp_path):
    plain, normed = tmp_path / "plain", tmp_path / "normed"
    train(run_cfg(fm, "method.name=gan", "train.steps=1"), plain, progress=False)
    train(run_cfg(fm, "method.name=gan", "train.steps=1", "recipe.spectral_norm=d"), normed, progress=False)
    with pytest.raises(CheckpointError, match="made for another architecture: recipe.spectral_norm is 'd' there, "
                                              "'none' in this run's config.yaml"):
        load_run(plain, checkpoint=list_checkpoints(normed)[-1])
    with pytest.raises(ConfigError, match="cannot resume .* with a different recipe.spectral_norm: saved 'none', "
                                          "given 'd'"):
        train(run_cfg(fm, "method.name=gan", "train.steps=2", "recipe.spectral_norm=d"), plain, resume=True,
              progress=False)


# ---------------------------------------------------------------- hinge loss


def test_hinge_losses_by_hand():
    s_real = torch.tensor([2.0, 0.5, -1.0])
    s_fake = torch.tensor([-2.0, 0.0, 0.5])
    # D: mean(max(0, 1 − s_real)) + mean(max(0, 1 + s_fake)) = (0 + 0.5 + 2)/3 + (0 + 1 + 1.5)/3
    assert float(d_source_loss(s_real, s_fake, "hinge")) == pytest.approx(5 / 3)
    assert float(g_source_loss(s_fake, "hinge")) == pytest.approx(0.5)  # −mean(s_fake) = −(−1.5/3)
    # bce stays the default of D's source term
    assert torch.equal(d_source_loss(s_real, s_fake), d_source_loss(s_real, s_fake, "bce"))
    p_real, p_fake = torch.sigmoid(s_real), torch.sigmoid(s_fake)
    bce = -(p_real.log().mean() + (1 - p_fake).log().mean())
    assert float(d_source_loss(s_real, s_fake)) == pytest.approx(float(bce), rel=1e-6)


@pytest.mark.parametrize("extra", METHODS, ids=lambda e: " ".join(x.split("=")[1] for x in e[:2]))
def test_every_method_uses_the_configured_source_losses(monkeypatch, extra):
    method = _method(*extra, "method.d_source_loss=hinge", "method.g_source_loss=hinge")
    if hasattr(method, "assignment"):
        method.assignment.copy_(torch.arange(12) % 3)
    kinds = []
    real_d, real_g = gan.d_source_loss, gan.g_source_loss
    # the module whose `loss` runs (TAC-GAN and ADC-GAN use AC-GAN's step)
    module = type(method.subs[0] if hasattr(method, "subs") else method).loss.__module__
    monkeypatch.setattr(f"{module}.d_source_loss", lambda r, f, kind="bce": kinds.append(("D", kind)) or real_d(r, f, kind))
    monkeypatch.setattr(f"{module}.g_source_loss", lambda f, kind: kinds.append(("G", kind)) or real_g(f, kind))
    step = _step(method)
    for phase in method.phases():
        method.loss(phase, step)
    assert kinds and set(kinds) == {("D", "hinge"), ("G", "hinge")}


# ---------------------------------------------------------------- G-EMA


def _tiny_gan():
    cfg = resolve_config(overrides=["method.name=gan", "model.arch=mlp_selfcond", "model.z_dim=2"])
    torch.manual_seed(0)
    return build_method(cfg, DataSpec((2,), 1))


def test_ema_is_the_hand_computed_average():
    method = _tiny_gan()
    phases = method.phases()
    ema = GeneratorEMA(method, phases, decay=0.75, start=2)
    assert ema.prefixes == ("G.",)
    g_params = dict(method.G.named_parameters())
    name = next(n for n in g_params if n.endswith("weight"))
    bn = next(m for m in method.G.modules() if isinstance(m, nn.BatchNorm1d))
    values = [torch.full_like(g_params[name], v) for v in (1.0, 2.0, 4.0, 8.0, 16.0)]
    expected = []
    for step, value in enumerate(values):
        with torch.no_grad():
            g_params[name].copy_(value)
            bn.running_mean.fill_(10.0 + step)
            method.D.source.bias.fill_(-step)
        ema.update(step, g_updated=step != 3)  # at step 3 G did not move (n_dis)
        averaged = dict(ema.method.G.named_parameters())[name]
        expected.append(float(averaged[0, 0]))
        ema_bn = next(m for m in ema.method.G.modules() if isinstance(m, nn.BatchNorm1d))
        assert float(ema_bn.running_mean[0]) == 10.0 + step  # buffers copied, not averaged
        assert float(ema.method.D.source.bias) == -step  # everything outside G follows the trained method
    # steps 0, 1 < start: copies; step 2: .75·2 + .25·4; step 3: unchanged; step 4: .75·2.5 + .25·16
    assert expected == pytest.approx([1.0, 2.0, 2.5, 2.5, 5.875])
    assert not any(p.requires_grad for p in ema.method.parameters())
    assert set(ema.state_dict()) == {n for n in method.state_dict() if n.startswith("G.")}


def test_ema_rampup_caps_the_half_life_at_a_share_of_the_steps_since_the_start():
    method = _tiny_gan()
    ema = GeneratorEMA(method, method.phases(), decay=0.999, start=10, rampup=0.5)
    # 1 step after the start: half-life ≤ 0.5 steps, β = ½² = 0.25; 100 steps: ½^(1/50); later the decay
    assert ema.decay_at(10) == pytest.approx(0.25)
    assert ema.decay_at(109) == pytest.approx(0.5 ** (1 / 50))
    assert ema.decay_at(100_000) == 0.999
    g_params = dict(method.G.named_parameters())
    name = next(n for n in g_params if n.endswith("weight"))
    for step, value in enumerate([2.0, 6.0]):
        with torch.no_grad():
            g_params[name].fill_(value)
        ema.update(10 + step, g_updated=True)
    # step 10: 0.25·θ₀ + 0.75·2 with θ₀ the initial weight; step 11: β = ½^(1/1) = 0.5
    start = dict(_tiny_gan().G.named_parameters())[name][0, 0].item()
    expected = 0.5 * (0.25 * start + 0.75 * 2.0) + 0.5 * 6.0
    assert dict(ema.method.G.named_parameters())[name][0, 0].item() == pytest.approx(expected)
    assert GeneratorEMA(method, method.phases(), decay=0.9, start=0).decay_at(0) == 0.9  # off: constant


def test_ema_of_class_splits_and_lapgan_covers_every_generator():
    splits = _method("method.name=acgan", "method.class_splits=2")
    assert GeneratorEMA(splits, splits.phases(), 0.9, 0).prefixes == ("subs.0.G.", "subs.1.G.")
    lap = _method("method.name=lapgan")
    assert GeneratorEMA(lap, lap.phases(), 0.9, 0).prefixes == ("G.0.", "G.1.", "G.2.")


def test_ema_resumes_exactly(fm, tmp_path):
    """8 steps straight = 4 steps, a crash, and a resume from the step-4 checkpoint (all options on)."""
    cfg = run_cfg(fm, "method.name=acgan", *ALL_ON, "train.steps=8", "train.ckpt_every=4")
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(cfg, straight, progress=False)
    train(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=4)), resumed, progress=False)
    train(cfg, resumed, resume=True, progress=False)
    a, b = (load_checkpoint(list_checkpoints(r)[-1]) for r in (straight, resumed))
    assert a["step"] == b["step"] == 8
    assert a["ema"].keys() == b["ema"].keys() and any(".parametrizations." in k for k in a["ema"])
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    # the average is not the trained generator itself
    assert any(not torch.equal(a["ema"][k], a["model"][k]) for k in a["ema"] if k.endswith("original"))


def test_the_generator_weights_name_the_rampup():
    from condgan.sampling import generator_weights
    assert generator_weights(RecipeConfig(ema_decay=0.999, ema_rampup=0.05), True) == \
        "G-EMA (recipe.ema_decay 0.999, ramp-up 0.05, from step 0)"
    assert generator_weights(RecipeConfig(ema_decay=0.999), False) == "live G"


def test_sampling_grids_and_eval_use_the_ema_and_say_so(fm, tmp_path, capsys):
    run = tmp_path / "run"
    train(run_cfg(fm, "method.name=acgan", "recipe.ema_decay=0.9", "train.steps=3", "train.grid_every=3"), run,
          progress=False)
    assert "G-EMA (recipe.ema_decay 0.9, from step 0) is on" in capsys.readouterr().err
    ema, live = load_run(run), load_run(run, use_ema=False)
    assert (ema.ema, live.ema) == (True, False)
    assert ema.weights == "G-EMA (recipe.ema_decay 0.9, from step 0)" and live.weights == "live G"
    state = load_checkpoint(list_checkpoints(run)[-1])
    assert all(torch.equal(ema.method.state_dict()[k], v) for k, v in state["ema"].items())
    assert all(torch.equal(live.method.state_dict()[k], v) for k, v in state["model"].items())
    z, c = torch.randn(4, 8), torch.arange(4)
    with torch.no_grad():
        assert not torch.equal(ema.method.generate(z, c), live.method.generate(z, c))
    grid = Image.open(run / "grids" / "step-00000003.png")
    assert grid.text["Description"] == "step 3, G-EMA (recipe.ema_decay 0.9, from step 0)"
    assert main(["sample", str(run), "--n", "10", "--out", str(tmp_path / "s.npz")]) == 0
    assert "generator: G-EMA (recipe.ema_decay 0.9, from step 0)" in capsys.readouterr().out


def test_eval_run_records_the_generator_weights(fm, tmp_path):
    judge = tmp_path / "judge.safetensors"
    assert main(["classifier", "train", "--data", "fashion-mnist", "--data-dir", str(fm), "--epochs", "1",
                 "--out", str(judge), "--no-progress"]) == 0
    run = tmp_path / "run"
    train(run_cfg(fm, "method.name=acgan", "recipe.ema_decay=0.99", "recipe.ema_start=1", "train.steps=2"), run,
          progress=False)
    assert main(["eval", "--run", str(run), "--n", "20", "--data-dir", str(fm), "--judge", str(judge),
                 "--metrics", "accuracy", "--out", str(tmp_path / "rep"), "--no-progress"]) == 0
    result = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    weights = "G-EMA (recipe.ema_decay 0.99, from step 1)"
    assert result["inputs"]["generator_weights"] == weights
    html = (tmp_path / "rep" / "report.html").read_text()
    assert f"Generator: {weights}." in html and f"at step 2 ({weights})" in html


# ---------------------------------------------------------------- DiffAugment


def _seeded(fn, x, seed=3):
    return fn(x, torch.Generator().manual_seed(seed))


def test_translation_shifts_each_image_within_an_eighth_with_zero_fill():
    x = torch.rand(16, 2, 24, 24) + 1  # no zeros, so the filled border is recognisable
    y = _seeded(translation, x)
    assert y.shape == x.shape
    shifts = set()
    for xi, yi in zip(x, y):
        found = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                 if torch.equal(yi, _shift(xi, dy, dx))]
        assert len(found) == 1, "each image is its input shifted by at most 24/8 = 3 pixels"
        shifts.add(found[0])
    assert len(shifts) > 3  # independent draws per image


def _shift(x, dy, dx):
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = x[:, max(-dy, 0):h - max(dy, 0),
                                                                        max(-dx, 0):w - max(dx, 0)]
    return out


def test_cutout_zeros_one_clipped_half_size_square_per_image():
    x = torch.rand(32, 3, 20, 20) + 1
    y = _seeded(cutout, x)
    assert y.shape == x.shape
    for xi, yi in zip(x, y):
        zero = yi[0] == 0
        assert torch.equal(yi == 0, zero.expand_as(yi)), "the same square in every channel"
        assert torch.equal(yi[:, ~zero], xi[:, ~zero])
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert int(zero.sum()) == len(rows) * len(cols)  # a rectangle ...
        assert 5 <= len(rows) <= 10 and 5 <= len(cols) <= 10  # ... of side 10, clipped to at least 5
    assert any(int((yi[0] == 0).sum()) == 100 for yi in y)  # an unclipped one


def test_color_is_the_papers_brightness_saturation_contrast():
    x = torch.rand(8, 3, 6, 6) * 2 - 1
    g = torch.Generator().manual_seed(5)
    u = [torch.rand(8, 1, 1, 1, generator=g) for _ in range(3)]  # the draws color() makes, in order
    expected = x + (u[0] - 0.5)
    m = expected.mean(1, keepdim=True)
    expected = (expected - m) * (2 * u[1]) + m
    m = expected.mean((1, 2, 3), keepdim=True)
    expected = (expected - m) * (u[2] + 0.5) + m
    torch.testing.assert_close(_seeded(color, x, 5), expected)


def test_real_and_fake_get_the_same_transform_from_the_same_draw():
    policy = ("color", "translation", "cutout")
    real, fake = torch.rand(6, 1, 16, 16) + 1, -torch.rand(6, 1, 16, 16) - 1
    a = diff_augment(real, policy, torch.Generator().manual_seed(7))
    b = diff_augment(fake, policy, torch.Generator().manual_seed(7))
    assert torch.equal(a == 0, b == 0)  # the same translation border and cut square
    c = diff_augment(fake, policy, torch.Generator().manual_seed(8))
    assert not torch.equal(b == 0, c == 0)
    # translation and cutout are linear in x for a fixed draw: T(real) + T(fake) = T(real + fake)
    lin = ("translation", "cutout")
    parts = [diff_augment(t, lin, torch.Generator().manual_seed(9)) for t in (real, fake, real + fake)]
    torch.testing.assert_close(parts[0] + parts[1], parts[2])


def test_gradients_flow_through_every_transform():
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    y = diff_augment(x, ("color", "translation", "cutout"), torch.Generator().manual_seed(0))
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    x.grad = None
    diff_augment(x, ("translation", "cutout"), torch.Generator().manual_seed(0)).sum().backward()
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0}  # each input pixel is read once or not at all


def _image_inputs_of_d(method, channels=1):
    """Records, for every D forward, the image part of the input of D's first weight layer."""
    seen = []

    def hook(layer, args):
        x = args[0].detach()
        if isinstance(layer, nn.Conv2d):  # images (+ class planes)
            seen.append(x[:, :channels].clone())
        else:  # LAPGAN's coarsest D: the flattened pixels of I_K (+ the one-hot class)
            k = method.sizes[-1]
            seen.append(x[:, :channels * k * k].clone().view(len(x), channels, k, k))

    hooks = []
    for phase in method.phases():
        if phase.role == "D":
            layers = list(phase.module.modules())
            first = next((m for m in layers if isinstance(m, nn.Conv2d)), None) or \
                next(m for m in layers if isinstance(m, nn.Linear))
            hooks.append(first.register_forward_pre_hook(hook))
    return seen, hooks


@pytest.mark.parametrize("extra", METHODS, ids=lambda e: " ".join(x.split("=")[1] for x in e[:2]))
@pytest.mark.parametrize("policy", ["none", "cutout"])
def test_every_image_d_sees_is_augmented_in_both_phases(extra, policy):
    method = _method(*extra, f"recipe.diffaugment={policy}")
    if hasattr(method, "assignment"):
        method.assignment.copy_(torch.arange(12) % 3)
    step = _step(method)
    for phase in method.phases():
        seen, hooks = _image_inputs_of_d(method)
        method.loss(phase, step)
        for hook in hooks:
            hook.remove()
        # real and generated in D's phase, generated in G's
        assert len(seen) == (2 if phase.role == "D" else 1), (phase.name, len(seen))
        # the raw batches (uniform reals, tanh fakes) hold no exact zeros; a cutout square does
        has_square = [bool(((img == 0).flatten(1).sum(1) >= 4).all()) for img in seen]
        assert has_square == [policy == "cutout"] * len(seen), phase.name


# ---------------------------------------------------------------- R1


class _QuadraticD(nn.Module):
    """s(x) = (w·x)² with a known gradient ∇_x s = 2 (w·x) w."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x, c=None):
        return (x @ self.w) ** 2, None


def test_r1_is_the_hand_computed_gradient_penalty():
    w = torch.tensor([0.5, -2.0])
    x = torch.tensor([[1.0, 1.0], [0.0, 2.0], [-1.0, 3.0]])
    real = x.clone().requires_grad_(True)
    s, _ = _QuadraticD(w)(real)
    # ‖∇_x s‖² = 4 (w·x)² ‖w‖², w·x = (−1.5, −4, −6.5), ‖w‖² = 4.25
    by_hand = sum(4 * v ** 2 * 4.25 for v in (-1.5, -4.0, -6.5)) / 3
    assert float(r1_penalty(s, real)) == pytest.approx(by_hand)


def test_r1_enters_d_loss_lazily_and_trains_d():
    cfg = resolve_config(overrides=["method.name=gan", "model.hidden=8", "model.z_dim=2"])
    torch.manual_seed(0)
    method = GAN(nn.Linear(2, 2), _QuadraticD(torch.tensor([0.5, -2.0])), cfg)
    x = torch.tensor([[1.0, 1.0], [0.0, 2.0], [-1.0, 3.0]])

    def d_loss(step, terms):
        method.d_terms = terms
        inputs = StepInputs(x, torch.zeros(3, dtype=torch.long), torch.arange(3), torch.ones(3, 2), torch.zeros(3),
                            step=step)
        return method.loss(method.phase("D"), inputs)

    plain, _ = d_loss(0, DiscriminatorTerms())
    by_hand = sum(4 * v ** 2 * 4.25 for v in (-1.5, -4.0, -6.5)) / 3
    with_r1, stats = d_loss(0, DiscriminatorTerms(r1_gamma=2.0))
    assert float(with_r1 - plain) == pytest.approx(2.0 / 2 * by_hand) and float(stats["D/r1"]) == pytest.approx(by_hand)
    lazy = DiscriminatorTerms(r1_gamma=2.0, r1_interval=4)
    assert float(d_loss(3, lazy)[0]) == pytest.approx(float(plain)) and "D/r1" not in d_loss(3, lazy)[1]
    assert float(d_loss(4, lazy)[0] - plain) == pytest.approx(4 * 2.0 / 2 * by_hand)  # k·γ every k-th step
    # the penalty's own gradient reaches D (double backward): ∂/∂w of mean 4 (w·x)² ‖w‖²
    method.zero_grad()
    (with_r1 - plain).backward()
    w = method.D.w.detach().requires_grad_(True)
    ((4 * (x @ w) ** 2 * (w @ w)).mean()).backward()
    torch.testing.assert_close(method.D.w.grad, w.grad)


# ---------------------------------------------------------------- mode seeking


def test_mode_seeking_ratio_by_hand():
    x1, x2 = torch.tensor([[0.0, 1.0], [2.0, 2.0]]), torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    z1, z2 = torch.tensor([[1.0], [0.0]]), torch.tensor([[0.0], [4.0]])
    # mean|x1 − x2| = (1 + 0 + 2 + 2) / 4 = 1.25, mean|z1 − z2| = (1 + 4) / 2 = 2.5
    assert float(mode_seeking_ratio(x1, x2, z1, z2)) == pytest.approx(0.5)


def test_same_condition_pairs_pair_each_sample_with_the_next_of_its_class():
    i, j = same_condition_pairs(torch.tensor([2, 0, 2, 1, 0, 2]))
    assert sorted(zip(i.tolist(), j.tolist())) == [(0, 2), (1, 4), (2, 5)]  # class 1 has one sample: no pair
    assert len(same_condition_pairs(torch.tensor([3]))[0]) == 0


class _ScaledG(nn.Module):
    """G(z) = a·z + b: the samples move a per unit of noise, so the ratio is |a|."""

    def __init__(self, a):
        super().__init__()
        self.a, self.b = nn.Parameter(torch.tensor(a)), nn.Parameter(torch.tensor(0.3))

    def forward(self, z, c=None):
        return self.a * z + self.b


def test_mode_seeking_enters_g_loss_and_rewards_g_for_using_its_noise():
    cfg = resolve_config(overrides=["method.name=gan", "model.z_dim=2"])
    method = GAN(_ScaledG(0.1), _QuadraticD(torch.tensor([0.5, -2.0])), cfg)
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]])

    def g_loss(terms, n=3):
        method.g_terms = terms
        inputs = StepInputs(z[:n], torch.zeros(n, dtype=torch.long), torch.arange(n), z[:n], torch.zeros(n), step=0)
        return method.loss(method.phase("G"), inputs)

    plain, plain_stats = g_loss(GeneratorTerms())
    with_ms, stats = g_loss(GeneratorTerms(mode_seeking=2.0))
    assert "G/mode_seeking" not in plain_stats
    assert float(stats["G/mode_seeking"]) == pytest.approx(0.1)  # |a|, whatever the pairs
    assert float((with_ms - plain).detach()) == pytest.approx(2.0 / (0.1 + MODE_SEEKING_EPS))
    # the term's gradient widens G's spread: d/da of 2 / (a + ε) < 0, so a gradient step raises a
    method.zero_grad()
    (with_ms - plain).backward()
    assert float(method.G.a.grad) == pytest.approx(-2.0 / (0.1 + MODE_SEEKING_EPS) ** 2, rel=1e-5)
    assert float(method.G.b.grad) == pytest.approx(0.0, abs=1e-4)  # a shift moves both draws alike
    # one sample has no pair: no term
    one, one_stats = g_loss(GeneratorTerms(mode_seeking=2.0), n=1)
    assert float(one) == pytest.approx(float(g_loss(GeneratorTerms(), n=1)[0])) and "G/mode_seeking" not in one_stats


@pytest.mark.parametrize("extra", METHODS, ids=lambda e: " ".join(x.split("=")[1] for x in e[:2]))
def test_every_method_adds_mode_seeking_to_each_g_loss(extra):
    spec = DataSpec((1, 28, 28), 10, 24)
    if "lapgan" in extra[0]:  # every level, not the coarsest only (the default)
        extra = [*extra, "method.mode_seeking_levels=all"]
    method = _method(*extra, "recipe.mode_seeking=0.5", spec=spec)
    plain = _method(*extra, spec=spec)
    for m in (method, plain):
        if hasattr(m, "assignment"):
            m.assignment.copy_(torch.arange(24) % 3)
    for phase in method.phases():  # 24 samples: every class twice or more, so every class has a pair
        loss, stats = method.loss(phase, _step(method, spec, n=24))
        plain_loss, _ = plain.loss(plain.phase(phase.name), _step(plain, spec, n=24))
        ratios = [v for k, v in stats.items() if k.endswith("mode_seeking")]
        if phase.role == "D":
            assert not ratios and float(loss) == pytest.approx(float(plain_loss)), phase.name
            continue
        assert len(ratios) == 1 and float(ratios[0]) > 0, phase.name
        assert float(loss - plain_loss) == pytest.approx(0.5 / (float(ratios[0]) + MODE_SEEKING_EPS), rel=1e-4), phase.name


@pytest.mark.parametrize("extra, extra_forwards", [
    (["method.name=acgan"], {"G": 0}),
    (["method.name=cclapgan", "method.mode_seeking_levels=all"], {"G0": 1, "G1": 1, "G2": 0})])
def test_mode_seeking_pairs_the_batch_where_conditions_are_classes(extra, extra_forwards):
    """Class-conditional samples pair within the batch (no G forward); LAPGAN's finer levels, one
    condition per sample, draw a quarter of the batch again."""
    method = _method(*extra, "recipe.mode_seeking=1.0")
    for phase in method.phases():
        if phase.role != "G":
            continue
        sizes = []
        hook = phase.module.register_forward_pre_hook(lambda module, args: sizes.append(len(args[0])))
        _, stats = method.loss(phase, _step(method, n=12))
        hook.remove()
        assert len(sizes) == 1 + extra_forwards[phase.name], phase.name
        assert sizes[1:] == [3] * extra_forwards[phase.name]  # a quarter of 12
        assert float(stats[[k for k in stats if k.endswith("mode_seeking")][0]]) > 0


@pytest.mark.parametrize("name", ["lapgan", "cclapgan"])
def test_lapgan_mode_seeking_acts_on_the_coarsest_level_only_by_default(name):
    """The default `method.mode_seeking_levels: coarsest`: G_K's loss gains the term, the finer
    G_k's losses are those without it and draw nothing again."""
    method = _method(f"method.name={name}", "recipe.mode_seeking=1.0")
    plain = _method(f"method.name={name}")
    plain.load_state_dict(method.state_dict())
    step = _step(method, n=12)
    for phase in method.phases():
        if phase.role != "G":
            continue
        calls = []
        hook = phase.module.register_forward_pre_hook(lambda module, args: calls.append(len(args[0])))
        loss, stats = method.loss(phase, step)
        hook.remove()
        plain_loss, _ = plain.loss(plain.phase(phase.name), step)
        if phase.level == method.K:
            assert f"G{method.K}/mode_seeking" in stats and float(loss) > float(plain_loss)
        else:
            assert not stats and calls == [12] and float(loss) == pytest.approx(float(plain_loss)), phase.name


# ---------------------------------------------------------------- n_dis and per-player Adam


def _adam_steps(opt_state):
    return {int(s["step"]) for s in opt_state["state"].values()}


@pytest.mark.parametrize("extra", [["method.name=acgan"], ["method.name=lapgan"]])
def test_n_dis_makes_n_d_updates_per_g_update(fm, tmp_path, extra):
    run = tmp_path / "run"
    train(run_cfg(fm, *extra, "recipe.n_dis=2", "train.steps=6", "train.ckpt_every=6"), run, progress=False)
    optimizers = load_checkpoint(list_checkpoints(run)[-1])["optimizers"]
    for name, state in optimizers.items():
        assert _adam_steps(state) == ({6} if name.startswith("D") else {3}), name


def test_separate_learning_rates_and_betas_reach_their_optimizers(fm, tmp_path):
    run = tmp_path / "run"
    train(run_cfg(fm, "method.name=acgan", "optim.g_lr=1e-3", "optim.d_lr=3e-4", "optim.g_beta1=0.0",
                  "optim.g_beta2=0.99", "optim.d_beta1=0.3", "train.steps=1", "train.ckpt_every=1"), run,
          progress=False)
    groups = {n: s["param_groups"][0] for n, s in load_checkpoint(list_checkpoints(run)[-1])["optimizers"].items()}
    assert (groups["G"]["lr"], tuple(groups["G"]["betas"])) == (1e-3, (0.0, 0.99))
    assert (groups["D"]["lr"], tuple(groups["D"]["betas"])) == (3e-4, (0.3, 0.999))  # d_beta2 unset: beta2


# ---------------------------------------------------------------- all together


@pytest.mark.parametrize("extra", METHODS, ids=lambda e: " ".join(x.split("=")[1] for x in e[:2]))
def test_every_method_trains_with_every_option_on(fm, tmp_path, extra):
    run = tmp_path / "run"
    result = train(run_cfg(fm, *extra, *ALL_ON, "train.steps=2"), run, progress=False)
    assert result.steps == 2 and all(math.isfinite(v) for v in result.last_stats.values())
    assert any(k.endswith("/r1") for k in result.last_stats), "R1 was due at step 0"
    state = load_checkpoint(result.checkpoint)
    assert state["ema"] and any(".parametrizations.weight.original" in k for k in state["model"])
    loaded = load_run(run)
    assert loaded.ema
    with torch.no_grad():
        x = loaded.method.generate(loaded.method.latent(4), torch.arange(4) % loaded.method.num_classes
                                   if loaded.method.conditional else None)
    assert torch.isfinite(x).all()
