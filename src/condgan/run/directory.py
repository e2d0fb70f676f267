"""The run directory: what it holds, and when it may be created, replaced or continued.

Layout: config.yaml (resolved), checkpoints/, events/ (TensorBoard), metrics.jsonl, grids/, and
`.lock` while a process writes it (condgan.run.lock).

Starting a run has two halves so that a start which fails changes nothing: `plan_run_dir`
decides (new, replace or resume; the config to train with) and refuses what cannot be done
without writing anything; the trainer then loads data, builds the method and reads the
checkpoint, and only then `start_run_dir` changes the directory (deletes the replaced run,
removes temporary files left by a killed writer, writes config.yaml atomically).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from condgan.config import Config, load_config, save_config
from condgan.errors import ConfigError, RunDirError
from condgan.io import TEMP_SUFFIX, atomic_write, check_writable

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
SPLITS_MANIFEST = "splits.json"  # a class-splits root (condgan.run.splits), which holds runs but is not one
RUN_ENTRIES = (CONFIG_FILE, METRICS_FILE, "checkpoints", "events", "grids")
# Where the run's own atomic writes put their temporary files: (folder, target name prefix).
_TEMP_TARGETS = (("", CONFIG_FILE), ("", METRICS_FILE), ("checkpoints", "ckpt-"), ("grids", "step-"))
# Fields that may change when a run is resumed: they do not change what is trained.
RESUMABLE_CHANGES = {"train.steps", "train.log_every", "train.grid_every", "train.ckpt_every",
                     "train.keep_ckpts", "train.device", "train.threads", "data.data_dir",
                     # where the data lives: every storage kind reads the same samples in the same order
                     "data.storage", "data.num_workers",
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


@dataclass(frozen=True)
class RunPlan:
    """What starting a run will do to its directory (decided by `plan_run_dir`, done by `start_run_dir`)."""

    cfg: Config  # the config to train with
    resume: bool
    replace: bool  # --force over an existing run: its entries are deleted first


def plan_run_dir(run_dir: Path, cfg: Config | None, *, resume: bool, force: bool) -> RunPlan:
    """Decide whether `run_dir` is created, replaced (`force`) or reopened (`resume`); writes nothing.

    A new run needs `cfg`. Resuming reads the saved config; a given `cfg` may differ from it only
    in `RESUMABLE_CHANGES` (e.g. more steps), anything else is refused by name.
    """
    run_dir = Path(run_dir)
    if (run_dir / SPLITS_MANIFEST).exists():
        raise RunDirError(f"output directory {run_dir} is a class-splits root; train its splits instead "
                          f"(`condgan train --out {run_dir / 'split-000'}`, `condgan splits run {run_dir}`)")
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
                                      f"given {given.get(key)!r}; pass --force to replace it, or --out for a new "
                                      f"directory")
            saved = cfg
        _check_writable(run_dir)
        return RunPlan(saved, resume=True, replace=False)
    if cfg is None:
        raise ConfigError("a new run needs a config")
    if exists and not force:
        raise RunDirError(
            f"output directory {run_dir} already holds a run ({CONFIG_FILE}); "
            "pass --resume to continue it or --force to replace it"
        )
    _check_writable(run_dir)
    return RunPlan(cfg, resume=False, replace=exists)


def remove_temp_files(run_dir: Path) -> list[Path]:
    """Delete the temporary files of the run's atomic writes (`.<target>.<random>.tmp`) that a killed
    writer left behind; only call it while holding the run's lock. Returns what was deleted."""
    removed = []
    for folder, prefix in _TEMP_TARGETS:
        where = Path(run_dir) / folder
        if not where.is_dir():
            continue
        for entry in where.iterdir():
            if entry.name.startswith("." + prefix) and entry.name.endswith(TEMP_SUFFIX) and entry.is_file():
                entry.unlink()
                removed.append(entry)
    return removed


def start_run_dir(run_dir: Path, plan: RunPlan) -> None:
    """Make `run_dir` match `plan`: delete the replaced run, remove temporary files, write config.yaml."""
    run_dir = Path(run_dir)
    if plan.replace:
        for name in RUN_ENTRIES:
            target = run_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    remove_temp_files(run_dir)
    atomic_write(run_dir / CONFIG_FILE, lambda tmp: save_config(plan.cfg, tmp))



def truncate_metrics(run_dir: Path, last_step: int) -> int:
    """Keep the metrics.jsonl rows a checkpoint of `last_step` accounts for; returns how many lines were dropped.

    Dropped: rows logged after `last_step` (work lost in a crash is redone on resume) and lines that
    are not a JSON object with an integer "step" (a row torn by a kill or a full disk). The file is
    rewritten atomically, and only when something is dropped.
    """
    path = run_dir / METRICS_FILE
    if not path.exists():
        return 0
    raw = path.read_bytes()
    kept, dropped = [], 0
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            row = json.loads(line)
            ok = isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= last_step
        except ValueError:
            ok = False
        if ok:
            kept.append(line)
        elif line.strip():
            dropped += 1
    text = "".join(line + "\n" for line in kept)
    if text.encode() != raw:
        atomic_write(path, lambda tmp: tmp.write_text(text))
    return dropped
