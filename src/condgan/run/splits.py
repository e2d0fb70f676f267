"""A class-splits root: one run directory per group of classes, each trained as its own job.

The AC-GAN paper trains ImageNet as 100 AC-GANs of 10 classes each (Odena et al. 2017, §4). A
splits root holds that workload as N independent, resumable run directories, so that each model
can be a job of its own (a SLURM array task, a local subprocess) instead of one process holding
all of them (`method.class_splits`, condgan/methods/class_splits.py). Layout:

    RUN/splits.json          the manifest: the base config, the dataset's class names, which
                             classes each split trains (written last, atomically: a folder
                             without it is not a splits root)
    RUN/split-000/ ...       run directories; each config.yaml restricts the data to the split's
                             classes (`data.classes`), labelled 0..k-1 inside the split
    RUN/jobs/split-000.json  how the newest attempt to train the split ended (`JobRecord`)
    RUN/logs/split-000.log   the output of `condgan splits run`

This module owns the layout: the manifest (write, read and check), the job records, and the state
of each split (`split_status`), read from its checkpoints, config, lock and job record without
loading any model.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from condgan.config import Config, load_config
from condgan.errors import ConfigError, RunDirError, one_line
from condgan.io import atomic_write
from condgan.run.checkpoint import latest_checkpoint
from condgan.run.directory import CONFIG_FILE, SPLITS_MANIFEST
from condgan.run.lock import lock_holder

MANIFEST = SPLITS_MANIFEST
FORMAT = "condgan-splits/1"
JOBS_DIR = "jobs"
LOGS_DIR = "logs"
MAX_MANIFEST_BYTES = 64 << 20  # 1000 splits of ImageNet class names take well under 1 MiB


def split_dir_name(index: int, num_splits: int) -> str:
    """`split-007`: three digits at least (`printf %03d` in a job array script), more past 1000 splits."""
    return f"split-{index:0{max(3, len(str(num_splits - 1)))}d}"


@dataclass(frozen=True)
class Split:
    """One split: its run directory's name, the dataset classes it trains (local label i is
    `classes[i]`) and their names."""

    index: int
    dir: str
    classes: tuple[int, ...]
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class SplitsManifest:
    root: Path
    config: dict[str, Any]  # the base config (resolved, without data.classes), as saved
    dataset: str
    class_names: tuple[str, ...]  # all classes of the dataset; global label = index
    mode: str  # contiguous | random (condgan.methods.class_splits.split_classes)
    seed: int
    splits: tuple[Split, ...]

    def path(self, split: Split) -> Path:
        return self.root / split.dir

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "dataset": self.dataset, "class_names": list(self.class_names), "mode": self.mode,
                "seed": self.seed, "config": self.config,
                "splits": [{"dir": s.dir, "classes": list(s.classes), "class_names": list(s.class_names)}
                           for s in self.splits]}


def is_splits_root(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def write_manifest(manifest: SplitsManifest) -> Path:
    text = json.dumps(manifest.to_json(), indent=1) + "\n"
    return atomic_write(manifest.root / MANIFEST, lambda tmp: tmp.write_text(text))


def _bad(path: Path, what: str) -> RunDirError:
    return RunDirError(f"splits manifest {path}: {what}")


def read_manifest(root: str | Path) -> SplitsManifest:
    """The manifest of splits root `root`, checked: every class of the dataset in exactly one split,
    names that agree, split folders named as `split_dir_name` names them."""
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise RunDirError(f"{root}: not a class-splits root (no {MANIFEST}; make one with `condgan splits init`)")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise _bad(path, f"larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _bad(path, f"not readable JSON ({one_line(exc, 200)})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise _bad(path, f"format: expected {FORMAT!r}, found {one_line(repr(found), 80)}")
    names, entries, config = data.get("class_names"), data.get("splits"), data.get("config")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise _bad(path, "class_names: expected a non-empty list of strings")
    if not (isinstance(entries, list) and entries):
        raise _bad(path, "splits: expected a non-empty list")
    if not isinstance(config, dict):
        raise _bad(path, "config: expected the base config as a mapping")
    splits, owner = [], {}
    for i, entry in enumerate(entries):
        classes = entry.get("classes") if isinstance(entry, dict) else None
        if not (isinstance(classes, list) and classes and all(isinstance(c, int) and not isinstance(c, bool)
                                                              and 0 <= c < len(names) for c in classes)):
            raise _bad(path, f"splits[{i}].classes: expected class indices in [0, {len(names)})")
        for c in classes:
            if c in owner:
                raise _bad(path, f"class {c} ({names[c]}) is in split {owner[c]} and split {i}")
            owner[c] = i
        if entry.get("dir") != split_dir_name(i, len(entries)):
            raise _bad(path, f"splits[{i}].dir: expected {split_dir_name(i, len(entries))!r}, "
                             f"found {one_line(repr(entry.get('dir')), 80)}")
        if entry.get("class_names") != [names[c] for c in classes]:
            raise _bad(path, f"splits[{i}].class_names: expected the names of its classes")
        splits.append(Split(i, entry["dir"], tuple(classes), tuple(names[c] for c in classes)))
    missing = sorted(set(range(len(names))) - set(owner))
    if missing:
        raise _bad(path, f"class {missing[0]} ({names[missing[0]]}) is in no split")
    return SplitsManifest(root, config, str(data.get("dataset", "")), tuple(names), str(data.get("mode", "")),
                          int(data.get("seed", 0)), tuple(splits))


def split_of_dir(path: str | Path) -> tuple[SplitsManifest, Split] | None:
    """(manifest, split) when `path` is a split directory of a splits root, else None."""
    path = Path(path)
    if not is_splits_root(path.parent):
        return None
    manifest = read_manifest(path.parent)
    found = [s for s in manifest.splits if s.dir == path.name]
    return (manifest, found[0]) if found else None


# ---------------------------------------------------------------- job records


@dataclass(frozen=True)
class JobRecord:
    """How the newest attempt to train a split went: `started` (written first; left as it is when
    the process was killed), then `finished`, `stopped` (a signal; resumable), `diverged` (a
    non-finite loss, gradient or state) or `failed` (any other error, `message` says which)."""

    outcome: str
    step: int | None = None
    message: str = ""
    pid: int = 0
    host: str = ""
    at: str = ""


def job_record_path(manifest: SplitsManifest, split: Split) -> Path:
    return manifest.root / JOBS_DIR / f"{split.dir}.json"


def write_job_record(manifest: SplitsManifest, split: Split, outcome: str, step: int | None = None,
                     message: str = "") -> None:
    record = JobRecord(outcome, step, one_line(message), os.getpid(), socket.gethostname(),
                       _dt.datetime.now().astimezone().isoformat(timespec="seconds"))
    text = json.dumps(asdict(record)) + "\n"
    atomic_write(job_record_path(manifest, split), lambda tmp: tmp.write_text(text))


def read_job_record(manifest: SplitsManifest, split: Split) -> JobRecord | None:
    """The split's record, None when there is none or it cannot be read (then the checkpoints speak)."""
    try:
        data = json.loads(job_record_path(manifest, split).read_text(encoding="utf-8"))
        return JobRecord(str(data["outcome"]), data.get("step"), str(data.get("message", "")),
                         int(data.get("pid", 0)), str(data.get("host", "")), str(data.get("at", "")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def log_path(manifest: SplitsManifest, split: Split) -> Path:
    return manifest.root / LOGS_DIR / f"{split.dir}.log"


# ---------------------------------------------------------------- state of a split

STATES = ("finished", "running", "not started", "stopped", "interrupted", "failed", "non-finite stop")


@dataclass(frozen=True)
class SplitStatus:
    split: Split
    state: str  # one of STATES
    step: int  # of the newest checkpoint (0: none)
    steps: int  # the split's target, train.steps of its config
    checkpoint: Path | None
    detail: str = ""


def _checkpoint_step(path: Path) -> int:
    return int(path.stem.split("-")[1])  # ckpt-00000050.pt


def split_config(manifest: SplitsManifest, split: Split) -> Config:
    path = manifest.path(split) / CONFIG_FILE
    if not path.is_file():
        raise RunDirError(f"{manifest.path(split)}: split directory has no {CONFIG_FILE} (made by `condgan splits "
                          "init`; was it deleted?)")
    try:
        return load_config(path)
    except ConfigError as exc:
        raise RunDirError(f"{manifest.path(split)}: {exc}") from None


def split_status(manifest: SplitsManifest, split: Split) -> SplitStatus:
    """The state of one split, from its lock, newest checkpoint, target steps and job record.

    In order: `running` (a process holds its lock), `finished` (a checkpoint at the target step),
    then what the job record says (`non-finite stop`, `failed`, `stopped`; `interrupted` when it
    still says `started`: the process was killed), `interrupted` for checkpoints short of the
    target without a record, and `not started`."""
    run_dir = manifest.path(split)
    steps = split_config(manifest, split).train.steps
    ckpt = latest_checkpoint(run_dir)
    step = _checkpoint_step(ckpt) if ckpt is not None else 0
    holder = lock_holder(run_dir)
    if holder is not None:
        return SplitStatus(split, "running", step, steps, ckpt, holder.describe())
    if ckpt is not None and step >= steps:
        return SplitStatus(split, "finished", step, steps, ckpt)
    record = read_job_record(manifest, split)
    if record is not None and record.outcome in ("diverged", "failed", "stopped"):
        state = {"diverged": "non-finite stop", "failed": "failed", "stopped": "stopped"}[record.outcome]
        return SplitStatus(split, state, step, steps, ckpt, record.message)
    if record is not None and record.outcome == "started":
        return SplitStatus(split, "interrupted", step, steps, ckpt,
                           f"pid {record.pid} on {record.host} started at {record.at} and ended without a record "
                           "(killed?)")
    if ckpt is not None:
        return SplitStatus(split, "interrupted", step, steps, ckpt, "checkpoints short of the target steps")
    return SplitStatus(split, "not started", 0, steps, None)
