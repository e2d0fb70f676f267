"""Per-method config sections: each method reads its own keys, others are refused by name; run
directories and checkpoints written with the old flat method section still load, resume and sample."""

import dataclasses
import os
import subprocess
import sys

import pytest
import torch
import yaml

import condgan.methods  # noqa: F401  (registers the method config sections)
from condgan.cli import main
from condgan.config import PRESET_DIR
from condgan.config import METHOD_CONFIGS, Config, Rule, load_config, resolve_config, rule_of, save_config
from condgan.errors import ConfigError
from condgan.methods import METHODS, build_method
from condgan.sampling import load_run
from condgan.run.checkpoint import latest_checkpoint, load_checkpoint
from condgan.training.loop import train
from condgan.run.directory import CONFIG_FILE

# The method section every run directory and checkpoint held before the per-method sections:
# all ten keys, at their defaults of that time.
LEGACY_METHOD = {"name": "acgan", "g_source_loss": "minimax", "class_weight": 1.0, "num_clusters": 10,
                 "recluster_every": 1000, "cluster_fit_size": 10000, "pyramid_levels": 3, "cgan_variant": "concat",
                 "class_splits": 1, "split_mode": "contiguous"}
RING = ["data.name=ring", "data.num_samples=500", "model.hidden=16", "model.z_dim=4", "train.batch_size=32",
        "train.log_every=5", "train.grid_every=1000", "train.ckpt_every=5", "train.threads=1"]

# Which method reads which key (besides name, g_source_loss and d_source_loss, read by all).
OWN_KEYS = {
    "gan": set(),
    "cgan": {"cgan_variant", "class_splits", "split_mode"},
    "acgan": {"class_weight", "class_splits", "split_mode"},
    "lapgan": {"pyramid_levels", "mode_seeking_levels", "finer_d_lr_scale", "finer_d_minibatch_std", "finer_d_class_std", "finer_d_sees_low", "finer_g_layer_noise", "finer_noise_dim", "finer_noise_grid", "finer_vae_weight", "finer_kl_ratio", "finer_latent_weight", "coarse_vae_weight", "coarse_latent_weight", "coarse_class_gain"},
    "cclapgan": {"pyramid_levels", "mode_seeking_levels", "finer_d_lr_scale", "finer_d_minibatch_std", "finer_d_class_std", "finer_d_sees_low", "finer_g_layer_noise", "finer_noise_dim", "finer_noise_grid", "finer_vae_weight", "finer_kl_ratio", "finer_latent_weight", "coarse_vae_weight", "coarse_latent_weight", "coarse_class_gain", "class_splits", "split_mode"},
    "selfcond": {"num_clusters", "recluster_every", "cluster_fit_size"},
    "tacgan": {"class_weight", "class_splits", "split_mode"},
    "adcgan": {"class_weight", "class_splits", "split_mode"},
    "reacgan": {"class_weight", "embed_dim", "temperature", "positive_margin", "negative_margin", "class_splits",
                "split_mode"},
}


def test_every_method_has_its_section_with_only_the_keys_it_reads():
    assert METHOD_CONFIGS.names() == METHODS.names() == sorted(OWN_KEYS)
    for name, own in OWN_KEYS.items():
        cfg = resolve_config(overrides=[f"method.name={name}"])
        assert type(cfg.method) is METHOD_CONFIGS.get(name)
        assert set(cfg.to_dict()["method"]) == {"name", "g_source_loss", "d_source_loss"} | own
        assert list(cfg.to_dict()["method"])[0] == "name"


@pytest.mark.parametrize("name, key, readers", [
    ("acgan", "num_clusters=5", "selfcond"),
    ("selfcond", "cgan_variant=projection", "cgan"),
    ("cgan", "pyramid_levels=2", "cclapgan, lapgan"),
    ("lapgan", "class_weight=0.5", "acgan, adcgan, reacgan, tacgan"),
])
def test_a_key_of_another_method_is_refused_by_name(name, key, readers):
    with pytest.raises(ConfigError) as info:
        resolve_config(overrides=[f"method.name={name}", f"method.{key}"])
    field = key.split("=")[0]
    assert str(info.value).startswith(
        f"config field method.{field}: not read by method {name} (it is a setting of: {readers}); method {name} reads:")


@pytest.mark.parametrize("name", ["gan", "lapgan", "selfcond"])
def test_class_splits_only_for_methods_that_read_them(name):
    for key in ("class_splits=2", "split_mode=random", "class_splits=1"):
        with pytest.raises(ConfigError, match=f"method.{key.split('=')[0]}: needs a conditional method, found "
                                              f"method.name '{name}'.*acgan, adcgan, cclapgan, cgan, reacgan, tacgan"):
            resolve_config(overrides=[f"method.name={name}", f"method.{key}"])


def test_the_same_refusal_from_a_preset_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("method:\n  name: gan\n  num_clusters: 5\n")
    with pytest.raises(ConfigError, match="method.num_clusters: not read by method gan"):
        resolve_config([path])


def test_unknown_key_and_unknown_method():
    with pytest.raises(ConfigError, match="unknown config key method.bogus; expected one of: class_splits, class_weight"):
        resolve_config(overrides=["method.bogus=1"])
    with pytest.raises(ConfigError, match="unknown method 'nope'; expected one of: acgan, adcgan, cclapgan, cgan, gan, "
                                          "lapgan, reacgan, selfcond, tacgan"):
        resolve_config(overrides=["method.name=nope"])
    with pytest.raises(ConfigError, match="method.name: expected str, found 3"):
        resolve_config(overrides=["method.name=3"])


@pytest.mark.parametrize("overrides, needle", [
    (["method.name=selfcond", "method.num_clusters=1"], "method.num_clusters: expected >= 2, found 1"),
    (["method.name=selfcond", "method.recluster_every=0"], "method.recluster_every: expected a positive number, found 0"),
    (["method.name=cgan", "method.cgan_variant=sum"], "method.cgan_variant: expected one of concat, projection, found 'sum'"),
    (["method.class_weight=-1"], "method.class_weight: expected >= 0, found -1.0"),
    (["method.split_mode=shuffled"], "method.split_mode: expected one of contiguous, random, found 'shuffled'"),
    (["method.name=lapgan", "method.pyramid_levels=0"], "method.pyramid_levels: expected a positive number, found 0"),
    (["method.g_source_loss=wasserstein"],
     "method.g_source_loss: expected one of minimax, non_saturating, hinge, found 'wasserstein'"),
    (["model.dropout=1.0"], "model.dropout: expected a value in [0, 1), found 1.0"),
    (["train.monitor_patience=0"], "train.monitor_patience: expected >= 1, found 0"),
    (["train.amp=fp8"], "train.amp: expected one of auto, none, bf16, fp16, found 'fp8'"),
    (["data.resolution=0"], "data.resolution: expected a positive number, found 0"),
])
def test_rules_still_refuse_bad_values_by_field(overrides, needle):
    with pytest.raises(ConfigError) as info:
        resolve_config(overrides=overrides)
    assert needle in str(info.value)


def test_rules_live_on_the_fields():
    fields = {f.name: f for f in dataclasses.fields(Config().train)}
    assert rule_of(fields["steps"]) == Rule(positive=True)
    assert rule_of(fields["channels_last"]).yaml_bool
    assert resolve_config(overrides=["train.channels_last=true"]).train.channels_last == "true"
    import condgan.config as config_module
    assert not hasattr(config_module, "_CHOICES") and not hasattr(config_module, "_POSITIVE")


def test_cli_refuses_another_methods_key_in_one_line(tmp_path, capsys):
    assert main(["train", "--config", "acgan-fashion-mnist-paper", "--set", "method.num_clusters=5",
                 "--out", str(tmp_path / "x"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("condgan: error: config field method.num_clusters: not read by method acgan "
                             "(it is a setting of: selfcond)")


@pytest.mark.parametrize("preset", sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))
def test_every_preset_resolves_with_its_method_section(preset):
    cfg = resolve_config([PRESET_DIR / f"{preset}.yaml"])
    given = yaml.safe_load((PRESET_DIR / f"{preset}.yaml").read_text())["method"]
    assert {k: cfg.to_dict()["method"][k] for k in given} == given


def test_the_config_module_alone_knows_every_method():
    """Importing any part of the package registers the built-in methods' sections (no import order to get right)."""
    code = ("from condgan.config import METHOD_CONFIGS, resolve_config\n"
            "print(resolve_config().method.name, ','.join(METHOD_CONFIGS.names()))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True)
    assert out.stdout.split() == ["acgan", "acgan,adcgan,cclapgan,cgan,gan,lapgan,reacgan,selfcond,tacgan"]


# ---------------------------------------------------------------- configs written before the change


@pytest.mark.parametrize("name", ["acgan", "cclapgan", "cgan", "gan", "lapgan", "selfcond"])  # the methods of then
def test_legacy_flat_method_section_loads(tmp_path, name):
    legacy = resolve_config(overrides=[f"method.name={name}"]).to_dict()
    legacy["method"] = {**LEGACY_METHOD, "name": name}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(legacy, sort_keys=False))
    cfg = load_config(path)
    assert cfg == resolve_config(overrides=[f"method.name={name}"])
    assert resolve_config(base=legacy) == cfg  # what sample.load_run does with a checkpoint's meta["config"]


def test_legacy_keep_their_values_where_the_method_reads_them():
    legacy = {"method": {**LEGACY_METHOD, "name": "selfcond", "num_clusters": 7, "g_source_loss": "non_saturating",
                         "class_weight": 3.0}}
    cfg = resolve_config(base=legacy)
    assert (cfg.method.num_clusters, cfg.method.g_source_loss) == (7, "non_saturating")
    # an override on top of a saved config stays strict
    with pytest.raises(ConfigError, match="method.class_weight: not read by method selfcond"):
        resolve_config(base=legacy, overrides=["method.class_weight=2"])


def test_saved_config_holds_only_its_methods_keys(tmp_path):
    cfg = resolve_config(overrides=["method.name=selfcond", "method.num_clusters=4"])
    save_config(cfg, tmp_path / "c.yaml")
    method = yaml.safe_load((tmp_path / "c.yaml").read_text())["method"]
    assert method == {"name": "selfcond", "g_source_loss": "minimax", "d_source_loss": "bce", "num_clusters": 4,
                      "recluster_every": 1000, "cluster_fit_size": 10000}
    assert load_config(tmp_path / "c.yaml") == cfg


def _make_legacy(run):
    """Rewrite a run's config.yaml and its checkpoint's meta with the old flat method section
    (which had none of the keys added since, e.g. d_source_loss)."""

    def legacy(method):
        return {**LEGACY_METHOD, **{k: v for k, v in method.items() if k in LEGACY_METHOD}}

    saved = yaml.safe_load((run / CONFIG_FILE).read_text())
    saved["method"] = legacy(saved["method"])
    (run / CONFIG_FILE).write_text(yaml.safe_dump(saved, sort_keys=False))
    ckpt = latest_checkpoint(run)
    state = load_checkpoint(ckpt)
    state["meta"]["config"]["method"] = legacy(state["meta"]["config"]["method"])
    torch.save(state, ckpt)
    assert set(load_checkpoint(ckpt)["meta"]["config"]["method"]) == set(LEGACY_METHOD)


def test_legacy_run_directory_samples_and_resumes(tmp_path):
    run = tmp_path / "run"
    cfg = resolve_config(overrides=[*RING, "train.steps=5", "method.class_splits=2"])
    train(cfg, run, progress=False)
    _make_legacy(run)
    loaded = load_run(run)
    assert loaded.step == 5 and loaded.config == cfg
    x = loaded.method.generate(loaded.method.latent(4), torch.tensor([0, 1, 2, 3]))
    assert x.shape == (4, 2) and torch.isfinite(x).all()
    # resume with more steps: the saved (legacy) config is read, the given one differs only in steps
    result = train(resolve_config(overrides=[*RING, "train.steps=10", "method.class_splits=2"]), run,
                   resume=True, progress=False)
    assert result.steps == 10
    assert set(yaml.safe_load((run / CONFIG_FILE).read_text())["method"]) == {
        "name", "g_source_loss", "d_source_loss", "class_weight", "class_splits", "split_mode"}


def test_resume_refuses_another_method_by_name(tmp_path):
    run = tmp_path / "run"
    train(resolve_config(overrides=[*RING, "train.steps=5"]), run, progress=False)
    with pytest.raises(ConfigError, match="different method.name: saved 'acgan', given 'selfcond'"):
        train(resolve_config(overrides=[*RING, "train.steps=10", "method.name=selfcond"]), run, resume=True,
              progress=False)


def test_build_method_reads_its_own_section():
    from condgan.nets import DataSpec

    method = build_method(resolve_config(overrides=["method.name=selfcond", "method.num_clusters=3"]),
                          DataSpec((2,), 8, 100))
    assert method.num_classes == 3
