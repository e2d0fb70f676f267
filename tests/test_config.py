import pytest

import condgan.methods  # noqa: F401  (registers the method config sections)
from condgan.config import Config, load_config, parse_override, resolve_config, save_config
from condgan.errors import ConfigError


def test_defaults_are_the_papers_adam_settings():
    cfg = resolve_config()
    assert cfg.optim.g_lr == cfg.optim.d_lr == 2e-4
    assert (cfg.optim.beta1, cfg.optim.beta2) == (0.5, 0.999)
    assert cfg.method.name == "acgan"


def test_file_then_overrides_win(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  steps: 10\n  batch_size: 8\n")
    cfg = resolve_config([path], ["train.steps=20", "optim.g_lr=1e-3"])
    assert (cfg.train.steps, cfg.train.batch_size, cfg.optim.g_lr) == (20, 8, 1e-3)


def test_round_trip(tmp_path):
    cfg = resolve_config(overrides=["train.seed=7", "data.name=ring"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


@pytest.mark.parametrize(
    "override, needle",
    [
        ("train.stepz=3", "unknown config key train.stepz"),
        ("bogus.x=1", "unknown config key bogus"),
        ("train.steps=ten", "train.steps: expected int, found 'ten'"),
        ("train.steps=-1", "train.steps: expected a positive number, found -1"),
        ("optim.beta1=1.5", "optim.beta1: expected a value in [0, 1)"),
        ("model.arch=resnet", "model.arch: expected one of auto, dcgan, mlp"),
        ("train.steps", "expected section.key=value"),
    ],
)
def test_bad_values_name_the_field(override, needle):
    with pytest.raises(ConfigError) as info:
        resolve_config(overrides=[override])
    assert needle in str(info.value)


def test_bad_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        resolve_config([path])


def test_config_is_frozen():
    with pytest.raises(Exception):
        Config().train.steps = 3  # type: ignore[misc]


def test_parse_override_nests():
    assert parse_override("a.b.c=[1, 2]") == {"a": {"b": {"c": [1, 2]}}}
