"""The run directory: what it holds, and when it may be created, replaced or continued.

Layout: config.yaml (resolved), checkpoints/, events/ (TensorBoard), metrics.jsonl, grids/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from condgan.config import Config, load_config, save_config
from condgan.errors import ConfigError, RunDirError
from condgan.io import atomic_write, atomic_write_bytes, check_writable

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
RUN_ENTRIES = (CONFIG_FILE, METRICS_FILE, "checkpoints", "events", "grids")
# Fields that may change when a run is resumed: they do not change what is trained.
RESUMABLE_CHANGES = {"train.steps", "train.log_every", "train.grid_every", "train.ckpt_every",
                     "train.keep_ckpts", "train.device", "train.threads", "data.data_dir",
                     # speed settings: same model and objective, e.g. when moving a run to a GPU
                     "train.amp", "train.channels_last", "train.compile", "train.deterministic", "train.sync_bn"}


def holds_run(run_dir: Path) -> bool:
    return (run_dir / CONFIG_FILE).exists() or (run_dir / "checkpoints").exists()


def _flat(cfg: Config) -> dict[str, object]:
    return {f"{s}.{k}": v for s, sub in cfg.to_dict().items() for k, v in sub.items()}


def _check_writable(run_dir: Path) -> None:
    check_writable(run_dir, folder=True, what="output directory")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"output directory {run_dir}: not writable ({exc.strerror})") from None


def _save_config(cfg: Config, path: Path) -> None:
    atomic_write(path, lambda tmp: save_config(cfg, tmp))


def prepare_run_dir(run_dir: Path, cfg: Config | None, *, resume: bool, force: bool) -> Config:
    """Create, replace (`force`) or reopen (`resume`) `run_dir`; returns the config to train with.

    A new run needs `cfg`. Resuming reads the saved config; a given `cfg` may differ from it only
    in `RESUMABLE_CHANGES` (e.g. more steps), anything else is refused by name.
    """
    run_dir = Path(run_dir)
    if resume and force:
        raise RunDirError("--resume and --force exclude each other: resume continues a run, force replaces it")
    exists = holds_run(run_dir)
    if resume:
        if not (run_dir / CONFIG_FILE).exists():
            raise RunDirError(f"output directory {run_dir}: nothing to resume (no {CONFIG_FILE})")
        saved = load_config(run_dir / CONFIG_FILE)
        if cfg is not None:
            given, old = _flat(cfg), _flat(saved)
            # Methods differ in their keys: a change of method is reported as such, before its keys.
            for key in sorted(given.keys() | old.keys(), key=lambda k: (k != "method.name", k)):
                if key not in RESUMABLE_CHANGES and given.get(key) != old.get(key):
                    raise ConfigError(f"cannot resume {run_dir} with a different {key}: saved {old.get(key)!r}, "
                                      f"given {given.get(key)!r}")
            saved = cfg
        _check_writable(run_dir)
        _save_config(saved, run_dir / CONFIG_FILE)
        return saved
    if cfg is None:
        raise ConfigError("a new run needs a config")
    if exists and not force:
        raise RunDirError(
            f"output directory {run_dir} already holds a run ({CONFIG_FILE}); "
            "pass --resume to continue it or --force to replace it"
        )
    _check_writable(run_dir)
    if exists:
        for name in RUN_ENTRIES:
            target = run_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    _save_config(cfg, run_dir / CONFIG_FILE)
    return cfg


def truncate_metrics(run_dir: Path, last_step: int) -> None:
    """Drop metrics.jsonl rows logged after `last_step` (work lost in a crash is redone on resume)."""
    path = run_dir / METRICS_FILE
    if not path.exists():
        return
    lines = path.read_text(errors="replace").splitlines()
    kept = [line for line in lines if _row_step(line) <= last_step]
    if kept == lines:
        return
    atomic_write_bytes(path, "".join(line + "\n" for line in kept).encode())


def _row_step(line: str) -> float:
    """The step of a metrics.jsonl row; a blank or damaged row (e.g. cut short by a full disk) counts
    as after every step, so it is dropped."""
    try:
        step = json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return float("inf")
    return step if isinstance(step, (int, float)) and not isinstance(step, bool) else float("inf")
