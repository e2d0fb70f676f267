"""Typed, frozen experiment configuration.

One source of defaults (the dataclasses below, and each method's own section in condgan/methods/);
a YAML preset is a small diff over them; CLI overrides are `section.key=value` strings. Each field
carries its own validation rule (`setting(default, choices=..., positive=..., ...)`). Unknown keys,
keys of another method and badly typed or out-of-range values are refused with the dotted field
name, what was expected and what was found. The resolved config is saved in the run directory as
`config.yaml`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from condgan.errors import ConfigError, one_line
from condgan.registry import Registry

DEFAULT_METHOD = "acgan"


@dataclass(frozen=True)
class Rule:
    """What a config field accepts beyond its type annotation; it travels with the field (`setting`)."""

    choices: tuple[str, ...] = ()
    positive: bool = False  # > 0
    at_least: float | None = None  # >= at_least
    below: float | None = None  # < below; with at_least, the range [at_least, below)
    yaml_bool: bool = False  # a str field that also takes YAML booleans (`true` → "true")
    # A str field holding "none" or a comma-separated list of distinct `items` (e.g. "translation,cutout").
    items: tuple[str, ...] = ()
    # Method fields: what a method must be to read the field, said when another method is given it.
    needs: str = ""

    def check(self, value: Any, where: str) -> None:
        """Refuse `value` (already of the field's type) with the dotted field name; None passes."""
        if value is None:
            return
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"config field {where}: expected a finite number, found {value!r}")
        if self.choices and value not in self.choices:
            raise ConfigError(f"config field {where}: expected one of {', '.join(self.choices)}, found {value!r}")
        if self.positive and value <= 0:
            raise ConfigError(f"config field {where}: expected a positive number, found {value!r}")
        low, high = self.at_least, self.below
        if low is not None and high is not None and not low <= value < high:
            raise ConfigError(f"config field {where}: expected a value in [{_number(low)}, {_number(high)}), found {value!r}")
        if low is not None and high is None and value < low:
            raise ConfigError(f"config field {where}: expected >= {low}, found {value!r}")
        if self.items and value != "none":
            parts = value.split(",")
            if any(p not in self.items for p in parts) or len(set(parts)) != len(parts):
                raise ConfigError(f"config field {where}: expected none or a comma-separated list of "
                                  f"{', '.join(self.items)} (each at most once), found {value!r}")


def _number(x: float) -> str:
    """A bound as people write it: 0, 2**63 = 9223372036854775808 for ints, 0.5 for floats."""
    return str(x) if isinstance(x, int) else f"{x:g}"


NO_RULE = Rule()


def setting(default: Any, **rule: Any) -> Any:
    """A dataclass field with its default and its `Rule` (e.g. `setting(64, positive=True)`)."""
    return field(default=default, metadata={"rule": Rule(**rule)})


def rule_of(f: dataclasses.Field) -> Rule:
    return f.metadata.get("rule", NO_RULE)

PRESET_DIR = Path(__file__).parent / "configs"  # presets shipped with condgan: small YAML diffs


@dataclass(frozen=True)
class DataConfig:
    name: str = "fashion-mnist"
    data_dir: str | None = None
    resolution: int | None = setting(None, positive=True)  # None: the dataset's native size
    channels: int | None = setting(None, positive=True)  # None: the dataset's native channels
    num_samples: int | None = setting(None, positive=True)  # images: a seeded random subset; 2D toys: points drawn
    # Where the training set lives (docs/scale.md, condgan.data.storage): memory (uint8), stream (folder
    # or packed, read by DataLoader workers), auto (memory up to min(2 GiB, RAM/4) decoded, else stream).
    storage: str = setting("auto", choices=("auto", "memory", "stream"))
    num_workers: int | None = setting(None, at_least=0)  # loader processes; None: usable cores − 1, 1 to 8
    # A folder's unreadable, empty or unsupported image files: refused by name, or left out and named.
    on_bad_file: str = setting("error", choices=("error", "skip"))
    # Train on these classes of the dataset only (its class indices); inside the run they are the
    # labels 0..k-1 in this order. None: all classes. `condgan splits init` sets it per split.
    classes: tuple[int, ...] | None = setting(None, at_least=0)


@dataclass(frozen=True)
class ModelConfig:
    # auto → mlp for 2D points, dcgan for images
    arch: str = setting("auto", choices=("auto", "dcgan", "mlp", "mlp_selfcond", "acgan_cifar", "acgan_imagenet"))
    z_dim: int = setting(100, positive=True)
    g_channels: int = setting(64, positive=True)  # width of the generator's last hidden layer (doubles per level up)
    d_channels: int = setting(64, positive=True)  # width of the discriminator's first layer (doubles per level down)
    hidden: int = setting(400, positive=True)  # MLP width (2D data)
    dropout: float = setting(0.0, at_least=0.0, below=1.0)  # discriminator dropout after each hidden layer


@dataclass(frozen=True)
class MethodConfig:
    """Base of the per-method sections: `name` selects the method, the rest is that method's own.

    Each method declares a frozen subclass with only the keys it reads (next to the method, in
    condgan/methods/) and registers it with `register_method_config`; a key of another method is
    refused by name. `condgan.methods` registers the built-in ones, so import it before resolving.
    """

    name: str


# method name → its config section; filled by the method modules (condgan.methods.*).
METHOD_CONFIGS: Registry[type[MethodConfig]] = Registry("method")


def register_method_config(cls: type[MethodConfig]) -> type[MethodConfig]:
    """Class decorator: register a method's section under its default `name`."""
    name = getattr(cls, "name", None)
    if not (dataclasses.is_dataclass(cls) and issubclass(cls, MethodConfig) and isinstance(name, str) and name):
        raise TypeError(f"{cls!r}: a method config is a MethodConfig dataclass whose `name` defaults to the method's name")
    return METHOD_CONFIGS.add(name, cls)


def method_config_class(name: str) -> type[MethodConfig]:
    """The registered section of method `name`; unknown names are refused with the registered ones.

    The built-in methods register theirs when the package is imported (condgan/__init__.py imports
    condgan.methods), so any `import condgan....` finds them."""
    return METHOD_CONFIGS.get(name)


def _default_method() -> MethodConfig:
    return method_config_class(DEFAULT_METHOD)()


@dataclass(frozen=True)
class OptimConfig:
    g_lr: float = setting(2e-4, positive=True)
    d_lr: float = setting(2e-4, positive=True)
    beta1: float = setting(0.5, at_least=0.0, below=1.0)
    beta2: float = setting(0.999, at_least=0.0, below=1.0)
    # Per-player Adam betas (e.g. (0, 0.999) for both, as SN-GAN/BigGAN-style recipes use); None: beta1/beta2.
    g_beta1: float | None = setting(None, at_least=0.0, below=1.0)
    g_beta2: float | None = setting(None, at_least=0.0, below=1.0)
    d_beta1: float | None = setting(None, at_least=0.0, below=1.0)
    d_beta2: float | None = setting(None, at_least=0.0, below=1.0)
    # constant | linear: lr × (1 − step / train.steps), down to 0 at the last step (a resumed run
    # with more steps continues on the longer schedule).
    lr_schedule: str = setting("constant", choices=("constant", "linear"))

    def betas(self, role: str) -> tuple[float, float]:
        """Adam's (beta1, beta2) for the player `role` ("G" or "D")."""
        b1, b2 = (self.g_beta1, self.g_beta2) if role == "G" else (self.d_beta1, self.d_beta2)
        return (self.beta1 if b1 is None else b1, self.beta2 if b2 is None else b2)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = setting(3000, positive=True)
    batch_size: int = setting(64, positive=True)
    seed: int = setting(0, at_least=0, below=2**63)  # numpy SeedSequence and torch take [0, 2**63)
    device: str = setting("auto", choices=("auto", "cpu", "cuda", "mps"))
    threads: int | None = setting(None, positive=True)  # torch intra-op threads; None: torch's default
    log_every: int = setting(50, positive=True)  # steps between metrics.jsonl / TensorBoard rows
    grid_every: int = setting(500, positive=True)  # steps between sample grid PNGs
    grid_rows: int = setting(8, positive=True)  # rows of fixed z in the class grid (paper fig. 9)
    ckpt_every: int = setting(500, positive=True)
    keep_ckpts: int = setting(3, positive=True)  # newest checkpoints kept
    # Collapse monitor (condgan.training.monitor): every N steps the within-class MS-SSIM of fresh
    # samples is compared with the real data's highest per-class value; 0 = off.
    monitor_every: int = setting(0, at_least=0)
    monitor_patience: int = setting(3, at_least=1)  # consecutive checks above the real maximum before the warning
    # Speed and determinism (docs/distributed-and-speed.md). "auto" picks per device: see
    # condgan.training.speed.resolve_speed.
    amp: str = setting("auto", choices=("auto", "none", "bf16", "fp16"))  # fp16: CUDA only, with a GradScaler
    # NHWC memory format for image nets
    channels_last: str = setting("auto", choices=("auto", "true", "false"), yaml_bool=True)
    compile: bool = False  # torch.compile G and D (minutes of compile time; pays off on long GPU runs)
    deterministic: bool = False  # torch.use_deterministic_algorithms + cuDNN deterministic, no autotuning
    sync_bn: bool = False  # distributed runs: SyncBatchNorm (batch statistics over all ranks) instead of per-rank BN


@dataclass(frozen=True)
class RecipeConfig:
    """The modern GAN training techniques, for every method; all off by default (docs/quality.md).

    Beside this section: the hinge loss is `method.d_source_loss` / `method.g_source_loss` (the
    source loss is the method's), separate learning rates and betas are `optim.{g,d}_lr` and
    `optim.{g,d}_beta{1,2}`.
    """

    # Spectral normalisation (Miyato et al. 2018) of every Linear/Conv/ConvTranspose/Embedding weight:
    # none | d (the discriminators) | g_and_d (both players).
    spectral_norm: str = setting("none", choices=("none", "d", "g_and_d"))
    # G-EMA (Karras et al. 2018; Yazici et al. 2019): decay β per G update, 0 = off. Before
    # `ema_start` (a training step) the average equals G; sampling, grids and the monitor use it.
    ema_decay: float = setting(0.0, at_least=0.0, below=1.0)
    ema_start: int = setting(0, at_least=0)
    # EMA ramp-up (Karras et al. 2020, stylegan2-ada's ema_rampup): the average's half-life is at most
    # this share of the steps since ema_start, so a short run's average is not stuck near its first
    # weights; 0 = off (a constant ema_decay).
    ema_rampup: float = setting(0.0, at_least=0.0)
    # DiffAugment (Zhao et al. 2020) of every image D sees, real and generated, in D's and G's phases.
    diffaugment: str = setting("none", items=("translation", "cutout", "color"))
    # R1 penalty γ/2·E[‖∇_x D(x)‖²] on real images (Mescheder et al. 2018); 0 = off. Lazy: computed every
    # `r1_interval` steps with γ·r1_interval (Karras et al. 2020, StyleGAN2 §3.1).
    r1_gamma: float = setting(0.0, at_least=0.0)
    r1_interval: int = setting(1, positive=True)
    # D updates per G update: G's phases run every n_dis-th step (train.steps counts D updates).
    n_dis: int = setting(1, positive=True)
    # Mode seeking (Mao et al. 2019): weight λ of 1 / (mean|G(c,z1) − G(c,z2)| / mean|z1 − z2|) in G's
    # loss, which rewards samples that differ when the noise does; 0 = off (the authors use 1).
    mode_seeking: float = setting(0.0, at_least=0.0)

    @property
    def ema(self) -> bool:
        return self.ema_decay > 0


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=_default_method)  # the section of `method.name`
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    recipe: RecipeConfig = field(default_factory=RecipeConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON types: sections of scalars, tuples as lists."""
        return {section: {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
                for section, values in dataclasses.asdict(self).items()}

    def replace(self, **sections: Any) -> "Config":
        return dataclasses.replace(self, **sections)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str, rule: Rule) -> Any:
    """Check `value` against the annotation `tp` (int, float, str, bool, tuple[X, ...], X | None)."""
    origin = typing.get_origin(tp)
    if origin is tuple:  # a YAML list of distinct values, each checked by the field's rule
        (inner, _) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"config field {where}: expected a non-empty list of {_type_name(inner)}, "
                              f"found {_echo(value)}")
        items = tuple(_coerce(v, inner, f"{where}[{i}]", rule) for i, v in enumerate(value))
        for i, v in enumerate(items):
            rule.check(v, f"{where}[{i}]")
        repeated = sorted({v for v in items if items.count(v) > 1})
        if repeated:
            raise ConfigError(f"config field {where}: expected distinct values, found {_echo(repeated[0])} repeated")
        return items
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, where, rule)
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
    if tp is str and isinstance(value, bool) and rule.yaml_bool:
        return "true" if value else "false"
    raise ConfigError(f"config field {where}: expected {_type_name(tp)}, found {value!r} ({type(value).__name__})")


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _not_read(key: str, cls: type[MethodConfig]) -> ConfigError:
    """The refusal of `method.<key>` given to method `cls.name`, which does not read it."""
    readers = [n for n in METHOD_CONFIGS.names() if key in _field_names(METHOD_CONFIGS.get(n))]
    own = ", ".join(sorted(_field_names(cls)))
    if not readers:
        return ConfigError(f"unknown config key method.{key}; expected one of: {own}")
    rule = rule_of({f.name: f for f in dataclasses.fields(METHOD_CONFIGS.get(readers[0]))}[key])
    if rule.needs:
        return ConfigError(f"config field method.{key}: needs {rule.needs}, found method.name {cls.name!r}, which "
                           f"does not read it (it is a setting of: {', '.join(readers)})")
    return ConfigError(f"config field method.{key}: not read by method {cls.name} (it is a setting of: "
                       f"{', '.join(readers)}); method {cls.name} reads: {own}")


def _section_class(tp: type, values: dict[str, Any], prefix: str) -> type:
    """The dataclass to build: `tp` itself, or for the method section the one registered for its name."""
    if not (isinstance(tp, type) and issubclass(tp, MethodConfig)):
        return tp
    name = _coerce(values.get("name", DEFAULT_METHOD), str, f"{prefix}name", NO_RULE)
    return method_config_class(name)


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"config section {prefix or '<root>'}: expected a mapping, found {values!r}")
    cls = _section_class(cls, values, prefix)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown and issubclass(cls, MethodConfig):  # another method's key, or no method's
        raise _not_read(unknown[0], cls)
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{unknown[0]!s}; expected one of: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in values.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, tp, f"{prefix}{name}", rule_of(fields[name]))
    out = cls(**kwargs)
    for name, f in fields.items():
        if not dataclasses.is_dataclass(hints[name]) and not isinstance(getattr(out, name), tuple):  # tuples: per item
            rule_of(f).check(getattr(out, name), f"{prefix}{name}")
    return out


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


def _keep_read_method_keys(saved: dict[str, Any], name: Any) -> dict[str, Any]:
    """`saved` without the method keys that method `name` does not read.

    Run directories and checkpoints written before the per-method sections hold a flat method
    section with every method's keys; those of other methods were ignored then and are dropped here.
    """
    section = saved.get("method")
    if not (isinstance(section, dict) and isinstance(name, str) and name in METHOD_CONFIGS):
        return saved  # nothing to drop, or a section that _build refuses by name
    fields = set(_field_names(METHOD_CONFIGS.get(name)))
    return {**saved, "method": {k: v for k, v in section.items() if k in fields}}


def resolve_config(
    files: list[str | Path] | tuple = (), overrides: list[str] | tuple = (), base: dict[str, Any] | None = None
) -> Config:
    """Defaults ← `base` ← each YAML file in order ← each `section.key=value` override.

    `base` is a saved, resolved config (a run's config.yaml, a checkpoint's metadata): method keys
    that the resulting method does not read are dropped from it (configs written before the
    per-method sections hold all methods' keys). Files and overrides are strict: such a key is
    refused by name.
    """
    layers = [read_yaml(path) for path in files] + [parse_override(text) for text in overrides]
    merged = base or {}
    for layer in layers:
        merged = _merge(merged, layer)
    if base:
        method = merged.get("method")
        name = method.get("name", DEFAULT_METHOD) if isinstance(method, dict) else None
        merged = _keep_read_method_keys(base, name)
        for layer in layers:
            merged = _merge(merged, layer)
    return _build(Config, merged, "")


def load_config(path: str | Path) -> Config:
    """Load a saved, fully resolved config (e.g. a run directory's config.yaml; see `resolve_config`)."""
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
