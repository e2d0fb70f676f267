"""Typed, frozen experiment configuration.

One source of defaults (the dataclasses below); a YAML preset is a small diff over them; CLI
overrides are `section.key=value` strings. Unknown keys and badly typed values are refused with
the dotted field name, what was expected and what was found. The resolved config is saved in the
run directory as `config.yaml`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from condgan.errors import ConfigError, one_line

PRESET_DIR = Path(__file__).parent / "configs"  # presets shipped with condgan: small YAML diffs


@dataclass(frozen=True)
class DataConfig:
    name: str = "fashion-mnist"
    data_dir: str | None = None
    resolution: int | None = None  # None: the dataset's native size
    channels: int | None = None  # None: the dataset's native channels
    num_samples: int | None = None  # 2D toys only: how many points to draw


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "auto"  # auto → mlp for 2D points, dcgan for images
    z_dim: int = 100
    g_channels: int = 64  # width of the generator's last hidden layer (doubles per level up)
    d_channels: int = 64  # width of the discriminator's first layer (doubles per level down)
    hidden: int = 400  # MLP width (2D data)
    dropout: float = 0.0  # discriminator dropout after each hidden layer


@dataclass(frozen=True)
class MethodConfig:
    name: str = "acgan"
    # "minimax": G maximises L_C − L_S exactly as the AC-GAN paper writes it, i.e. it minimises
    # log P(S=fake | G(z,c)) − log P(C=c | G(z,c)). "non_saturating": G minimises
    # −log P(S=real | G(z,c)) − log P(C=c | G(z,c)) (Goodfellow et al. 2014, §3 heuristic).
    g_source_loss: str = "minimax"
    class_weight: float = 1.0  # weight of L_C relative to L_S (paper: 1)
    # Self-Conditioned GAN (Liu et al. 2020): k pseudo-classes from k-means on D's feature layer.
    num_clusters: int = 10  # k
    recluster_every: int = 1000  # steps between re-clusterings
    cluster_fit_size: int = 10000  # k-means is fitted on a fixed random subset of this many training points
    # LAPGAN / CC-LAPGAN (Denton et al. 2015): levels of the Laplacian pyramid, e.g. 3: 28→14→7, 32→16→8.
    pyramid_levels: int = 3
    # cGAN (Mirza & Osindero 2014): "concat" feeds D the one-hot class (as extra input channels for
    # images); "projection" is D(x, c) = ψ(φ(x)) + ⟨embed(c), φ(x)⟩ (Miyato & Koyama 2018, eq. 3).
    cgan_variant: str = "concat"
    # Class splits (AC-GAN paper §4: 100 AC-GANs of 10 ImageNet classes each): N sub-models, each
    # trained on its own subset of the classes; 1 = one model for all classes.
    class_splits: int = 1
    split_mode: str = "contiguous"  # contiguous: classes 0..k-1 → split 0, ...; random: a permutation seeded by train.seed


@dataclass(frozen=True)
class OptimConfig:
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    # constant | linear: lr × (1 − step / train.steps), down to 0 at the last step (a resumed run
    # with more steps continues on the longer schedule).
    lr_schedule: str = "constant"


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 3000
    batch_size: int = 64
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps
    threads: int | None = None  # torch intra-op threads; None: torch's default
    log_every: int = 50  # steps between metrics.jsonl / TensorBoard rows
    grid_every: int = 500  # steps between sample grid PNGs
    grid_rows: int = 8  # rows of fixed z in the class grid (paper fig. 9)
    ckpt_every: int = 500
    keep_ckpts: int = 3  # newest checkpoints kept
    # Collapse monitor (condgan.training.monitor): every N steps the within-class MS-SSIM of fresh
    # samples is compared with the real data's highest per-class value; 0 = off.
    monitor_every: int = 0
    monitor_patience: int = 3  # consecutive checks above the real maximum before the warning
    # Speed and determinism (docs/distributed-and-speed.md). "auto" picks per device: see
    # condgan.training.speed.resolve_speed.
    amp: str = "auto"  # auto | none | bf16 | fp16 (fp16: CUDA only, with a GradScaler)
    channels_last: str = "auto"  # auto | true | false: NHWC memory format for image nets
    compile: bool = False  # torch.compile G and D (minutes of compile time; pays off on long GPU runs)
    deterministic: bool = False  # torch.use_deterministic_algorithms + cuDNN deterministic, no autotuning
    sync_bn: bool = False  # distributed runs: SyncBatchNorm (batch statistics over all ranks) instead of per-rank BN


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **sections: Any) -> "Config":
        return dataclasses.replace(self, **sections)


_CHOICES = {
    "model.arch": ("auto", "dcgan", "mlp", "mlp_selfcond", "acgan_cifar", "acgan_imagenet"),
    "method.cgan_variant": ("concat", "projection"),
    "optim.lr_schedule": ("constant", "linear"),
    "method.split_mode": ("contiguous", "random"),
    "method.g_source_loss": ("minimax", "non_saturating"),
    "train.device": ("auto", "cpu", "cuda", "mps"),
    "train.amp": ("auto", "none", "bf16", "fp16"),
    "train.channels_last": ("auto", "true", "false"),
}
# str fields whose values may also be YAML booleans (`train.channels_last=true` parses as a bool).
_BOOL_STRINGS = ("train.channels_last",)
_POSITIVE = ("train.steps", "train.batch_size", "train.log_every", "train.grid_every", "train.grid_rows",
             "train.ckpt_every", "train.keep_ckpts", "model.z_dim", "model.g_channels", "model.d_channels",
             "model.hidden", "optim.g_lr", "optim.d_lr", "data.resolution", "data.channels", "data.num_samples",
             "train.threads", "method.recluster_every", "method.cluster_fit_size", "method.pyramid_levels",
             "method.class_splits")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotation `tp` (int, float, str, bool, X | None)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, where)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # PyYAML reads "1e-3" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp in (str, bool) and isinstance(value, tp):
        return value
    if tp is str and isinstance(value, bool) and where in _BOOL_STRINGS:
        return "true" if value else "false"
    raise ConfigError(f"config field {where}: expected {_type_name(tp)}, found {value!r} ({type(value).__name__})")


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"config section {prefix or '<root>'}: expected a mapping, found {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{unknown[0]!s}; expected one of: {', '.join(sorted(names))}")
    kwargs = {}
    for name, value in values.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, tp, f"{prefix}{name}")
    return cls(**kwargs)


def _validate(cfg: Config) -> None:
    flat = {f"{section}.{k}": v for section, sub in cfg.to_dict().items() for k, v in sub.items()}
    for key, choices in _CHOICES.items():
        if flat[key] not in choices:
            raise ConfigError(f"config field {key}: expected one of {', '.join(choices)}, found {flat[key]!r}")
    for key in _POSITIVE:
        if flat[key] is not None and flat[key] <= 0:
            raise ConfigError(f"config field {key}: expected a positive number, found {flat[key]!r}")
    for key in ("optim.beta1", "optim.beta2", "model.dropout"):
        if not 0.0 <= flat[key] < 1.0:
            raise ConfigError(f"config field {key}: expected a value in [0, 1), found {flat[key]!r}")
    for key, low in (("train.monitor_every", 0), ("train.monitor_patience", 1)):
        if flat[key] < low:
            raise ConfigError(f"config field {key}: expected >= {low}, found {flat[key]!r}")
    if flat["method.class_weight"] < 0:
        raise ConfigError(f"config field method.class_weight: expected >= 0, found {flat['method.class_weight']!r}")
    if flat["method.num_clusters"] < 2:
        raise ConfigError(f"config field method.num_clusters: expected >= 2, found {flat['method.num_clusters']!r}")


def _merge(base: dict[str, Any], diff: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in diff.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


# A config file is a few hundred bytes; larger ones are refused unread. 64 KiB, not more: the
# pure-Python YAML loader (needed to refuse aliases and repeated keys) takes ~15 s per MiB of
# dense YAML.
MAX_CONFIG_BYTES = 64 << 10
MAX_OVERRIDE_CHARS = 10_000
_MAX_DEPTH = 16  # nesting of YAML collections; configs use 2 (section → key)


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader for configs, refusing what a config never needs and an attacker uses:
    anchors and aliases (a few hundred bytes of nested aliases expand to gigabytes), repeated keys
    (the later one would silently win) and deep nesting (recursion in the composer)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "YAML anchors and aliases (&name, *name) are not allowed in a config", event.start_mark)
        self._depth += 1
        try:
            if self._depth > _MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {_MAX_DEPTH} levels deep", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # an unhashable key: SafeConstructor refuses it below
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {_echo(key)} (first at line {first})", key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _echo(value: Any) -> str:
    """repr of a user-given value, cut to 200 characters, for error messages."""
    return one_line(repr(value), 200)


def _load_yaml(text: str) -> Any:
    """`text` parsed by `_ConfigLoader`; raises ValueError (one line, with line and column) when invalid."""
    try:
        return yaml.load(text, Loader=_ConfigLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ValueError(one_line(where + (exc.problem or exc.context or type(exc).__name__), 200)) from None
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as exc:
        # ValueError: e.g. an int of more digits than Python converts (sys.get_int_max_str_digits)
        raise ValueError(one_line(f"{type(exc).__name__}: {exc}", 200)) from None


def parse_override(text: str) -> dict[str, Any]:
    """`train.steps=100` → {"train": {"steps": 100}} (the value is parsed as YAML, without aliases)."""
    if len(text) > MAX_OVERRIDE_CHARS:
        raise ConfigError(f"override {_echo(text)}: longer than {MAX_OVERRIDE_CHARS} characters")
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {_echo(text)}: expected section.key=value")
    try:
        value = _load_yaml(raw) if raw.strip() else None
    except ValueError as exc:
        raise ConfigError(f"override {_echo(text)}: value is not valid YAML ({exc})") from None
    nested: dict[str, Any] = {}
    node = nested
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return nested


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file as a dict: UTF-8, at most `MAX_CONFIG_BYTES`, plain YAML (no anchors or aliases,
    no repeated keys). Every error is a one-line ConfigError naming the file."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path}: larger than {MAX_CONFIG_BYTES} bytes; a config is a small YAML file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                          f"{exc.start})") from None
    try:
        data = _load_yaml(text)
    except ValueError as exc:
        raise ConfigError(f"config file {path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping at top level, found {type(data).__name__}")
    return data


def resolve_config(
    files: list[str | Path] | tuple = (), overrides: list[str] | tuple = (), base: dict[str, Any] | None = None
) -> Config:
    """Defaults ← `base` ← each YAML file in order ← each `section.key=value` override."""
    merged = _merge(Config().to_dict(), base or {})
    for path in files:
        merged = _merge(merged, read_yaml(path))
    for text in overrides:
        merged = _merge(merged, parse_override(text))
    cfg = _build(Config, merged, "")
    _validate(cfg)
    return cfg


def load_config(path: str | Path) -> Config:
    """Load a saved, fully resolved config (e.g. a run directory's config.yaml)."""
    return resolve_config(base=read_yaml(path))


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_or_path(text: str) -> Path:
    """`--config` takes a file path or the name of a preset shipped in condgan/configs/."""
    path = Path(text)
    if path.is_file():
        return path
    if (PRESET_DIR / f"{text}.yaml").is_file():
        return PRESET_DIR / f"{text}.yaml"
    raise ConfigError(f"--config {text}: no such file or preset; presets: {', '.join(preset_names())}")
