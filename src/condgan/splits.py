"""Class splits as independent jobs: `condgan splits init | run | status` and `condgan train` of one split.

The AC-GAN paper's ImageNet workload is 100 AC-GANs of 10 classes each (Odena et al. 2017, §4).
`init_splits` writes a splits root (layout: condgan.run.splits): the class → split assignment
(`condgan.methods.class_splits.split_classes`, as the in-process `method.class_splits` cuts them)
and one run directory per split whose config trains only its classes (`data.classes`). Each
split is then an ordinary, resumable run: `train_split` trains one (what `condgan train --out
RUN/split-007` does, e.g. as one task of a SLURM job array) and keeps its job record;
`run_splits` trains them on this machine K at a time as subprocesses. `condgan sample` and
`condgan eval --run` read a splits root as one model over all classes (condgan.sampling.load_run).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Sequence

from condgan.config import METHOD_CONFIGS, preset_or_path, resolve_config, save_config
from condgan.data import dataset_class_names
from condgan.errors import (CondganError, ConfigError, RunDirError, TrainingDiverged, TrainingStopped, WriteError,
                            one_line)
from condgan.io import atomic_write, check_writable
from condgan.methods.class_splits import ClassSplitConfig, split_classes
from condgan.run.directory import CONFIG_FILE
from condgan.run.lock import lock_holder
from condgan.run.splits import (LOGS_DIR, Split, SplitsManifest, SplitStatus, log_path, read_manifest, split_config,
                                split_dir_name, split_of_dir, split_status, write_job_record, write_manifest)

POLL_S = 0.2  # how often `run_splits` looks at its subprocesses


def init_splits(out: str | Path, configs: Sequence[str | Path], overrides: Sequence[str], num_splits: int,
                mode: str | None = None) -> SplitsManifest:
    """Write a new splits root at `out` (a missing or empty folder) for the config made of `configs`
    (preset names or files) and `overrides`; `mode` defaults to the config's `method.split_mode`.

    Reads the dataset's class names only (a folder's sub-folder names; no image is decoded), so the
    data itself is checked when each split starts training.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunDirError(f"output directory {out}: {'not empty' if out.is_dir() else 'is a file'}; "
                          "`condgan splits init` writes a new splits root")
    check_writable(out, folder=True, what="--out")
    cfg = resolve_config([preset_or_path(str(c)) for c in configs], list(overrides))
    m = cfg.method
    if not isinstance(m, ClassSplitConfig):
        usable = ", ".join(n for n in METHOD_CONFIGS.names() if issubclass(METHOD_CONFIGS.get(n), ClassSplitConfig))
        raise ConfigError(f"config field method.name: class splits need a method conditional on the dataset's classes "
                          f"({usable}), found {m.name!r}")
    if m.class_splits != 1:
        raise ConfigError(f"config field method.class_splits: expected 1 (each split is its own run here; "
                          f"class_splits N trains N sub-models in one process), found {m.class_splits}")
    if cfg.data.classes is not None:
        raise ConfigError(f"config field data.classes: expected none (splits init assigns each split its classes), "
                          f"found {list(cfg.data.classes)}")
    mode = mode or m.split_mode
    if mode not in ("contiguous", "random"):
        raise ConfigError(f"--mode: expected contiguous or random, found {mode!r}")
    names = dataset_class_names(cfg.data.name, cfg.data.data_dir)
    if isinstance(num_splits, bool) or not 1 <= num_splits <= len(names):
        raise ConfigError(f"--splits: expected a number of splits in [1, {len(names)}] (the classes of "
                          f"{cfg.data.name}), found {num_splits}")
    groups = split_classes(len(names), num_splits, mode, cfg.train.seed)
    splits = tuple(Split(i, split_dir_name(i, num_splits), tuple(g), tuple(names[c] for c in g))
                   for i, g in enumerate(groups))
    manifest = SplitsManifest(out, cfg.to_dict(), cfg.data.name, tuple(names), mode, cfg.train.seed, splits)
    for split in splits:  # the manifest comes last: a folder without it is not a splits root
        split_cfg = cfg.replace(data=dataclasses.replace(cfg.data, classes=split.classes))
        atomic_write(manifest.path(split) / CONFIG_FILE, lambda tmp, c=split_cfg: save_config(c, tmp))
    write_manifest(manifest)
    return manifest


def train_split(split_dir: str | Path, overrides: Sequence[str] = (), *, progress: bool = True,
                nproc: int | None = None, force: bool = False) -> Path:
    """Train (or continue) one split of a splits root with its own config; returns its newest checkpoint.

    `overrides` may change what a resume may change (steps, device, threads, speed settings);
    `force` restarts the split from scratch (its checkpoints and logs deleted) with its config and
    `overrides`. `nproc` trains it on that many local processes (torch's elastic launcher). Rank 0
    (also under torchrun) writes the split's job record: `started` first, then how it ended; errors
    are raised as they come.
    """
    from condgan.api import train_config
    from condgan.training.loop import train, train_spawned

    split_dir = Path(split_dir)
    found = split_of_dir(split_dir)
    if found is None:
        raise RunDirError(f"{split_dir}: not a split directory of a class-splits root")
    manifest, split = found
    holder = lock_holder(split_dir)
    if holder is not None:  # refused before its record is touched; the loop's lock would refuse too
        raise RunDirError(f"output directory {split_dir} is being written by another condgan process "
                          f"({holder.describe()}); wait for it to end or stop it")
    if force:
        cfg = resolve_config(base=split_config(manifest, split).to_dict(), overrides=list(overrides))
    else:
        cfg = train_config(None, split_dir, overrides, resume=True)
    record = int(os.environ.get("RANK", "0")) == 0
    if record:
        write_job_record(manifest, split, "started")
    try:
        if nproc:
            ckpt = train_spawned(nproc, cfg, split_dir, resume=not force, force=force, progress=progress)
        else:
            ckpt = train(cfg, split_dir, resume=not force, force=force, progress=progress).checkpoint
    except TrainingStopped as stop:
        if record:
            write_job_record(manifest, split, "stopped", stop.step, str(stop))
        raise
    except TrainingDiverged as exc:
        if record:
            write_job_record(manifest, split, "diverged", None, str(exc))
        raise
    except BaseException as exc:  # a user error, a crash, Ctrl-C twice: the record says so, then it goes on
        if record:
            write_job_record(manifest, split, "failed", None, f"{type(exc).__name__}: {exc}"
                             if not isinstance(exc, CondganError) else str(exc))
        raise
    if record:
        write_job_record(manifest, split, "finished", int(ckpt.stem.split("-")[1]))
    return ckpt


def splits_status(root: str | Path) -> list[SplitStatus]:
    manifest = read_manifest(root)
    return [split_status(manifest, s) for s in manifest.splits]


# ---------------------------------------------------------------- run K at a time


@dataclass(frozen=True)
class JobEnd:
    split: Split
    exit_code: int
    line: str  # the last `condgan:` line of its log ("" when it finished)


@dataclass(frozen=True)
class RunSummary:
    skipped: list[SplitStatus]  # finished or running when the run began
    ended: list[JobEnd]
    stopped_by: int  # the signal that stopped this run (0: none)

    @property
    def failed(self) -> list[JobEnd]:
        return [e for e in self.ended if e.exit_code != 0]


def _last_condgan_line(path: Path) -> str:
    """The last line a job printed that starts with `condgan:` (its error or stop line), else its last line."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(path) - 65536))
            lines = [ln.strip() for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    ours = [ln for ln in lines if ln.startswith("condgan:")]
    return one_line((ours or lines or [""])[-1], 300)


def run_splits(root: str | Path, jobs: int, *, threads: int | None = None, device: str | None = None,
               gpus: Sequence[str] = (), echo=print) -> RunSummary:
    """Train the splits of `root` that are not finished (nor running elsewhere), `jobs` at a time.

    Each is `condgan train --out RUN/split-i` in a subprocess of its own session, its output appended
    to RUN/logs/split-i.log. A split that fails is reported (`echo`, and in the summary) and the
    others go on; running it again resumes the unfinished ones. With `gpus`, each job gets one of
    them as CUDA_VISIBLE_DEVICES. SIGTERM or SIGINT to this process is passed on to the running jobs
    (each saves at its next step boundary) and no further job starts.
    """
    manifest = read_manifest(root)
    if isinstance(jobs, bool) or jobs < 1:
        raise ConfigError(f"--jobs: expected a positive number of parallel jobs, found {jobs}")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads: expected a positive number of threads, found {threads}")
    statuses = [split_status(manifest, s) for s in manifest.splits]
    skipped = [s for s in statuses if s.state in ("finished", "running")]
    todo = [s.split for s in statuses if s.state not in ("finished", "running")]
    check_writable(manifest.root / LOGS_DIR, folder=True, what="log folder")
    free_gpus = list(gpus)
    running: dict[int, tuple[subprocess.Popen, str | None]] = {}
    ended: list[JobEnd] = []
    stop = _Stop()
    with stop:
        while (todo and not stop.signum) or running:
            while todo and not stop.signum and len(running) < jobs and (free_gpus or not gpus):
                split = todo.pop(0)
                gpu = free_gpus.pop(0) if gpus else None
                running[split.index] = (_start(manifest, split, threads, device, gpu), gpu)
                stop.procs = [p for p, _ in running.values()]
                echo(f"{split.dir}: started (log {log_path(manifest, split)})")
            time.sleep(POLL_S)
            for index, (proc, gpu) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[index]
                stop.procs = [p for p, _ in running.values()]
                if gpu is not None:
                    free_gpus.append(gpu)
                split = manifest.splits[index]
                end = JobEnd(split, proc.returncode, "" if proc.returncode == 0 else
                             _last_condgan_line(log_path(manifest, split)))
                ended.append(end)
                echo(f"{split.dir}: " + ("finished" if end.exit_code == 0 else f"ended with exit code "
                                         f"{end.exit_code}: {end.line or 'see ' + str(log_path(manifest, split))}"))
    return RunSummary(skipped, ended, stop.signum)


def _start(manifest: SplitsManifest, split: Split, threads: int | None, device: str | None,
           gpu: str | None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "condgan.cli", "train", "--out", str(manifest.path(split)), "--no-progress"]
    cmd += ["--threads", str(threads)] if threads else []
    cmd += ["--device", device] if device else []
    env = dict(os.environ, **({"CUDA_VISIBLE_DEVICES": gpu} if gpu is not None else {}))
    path = log_path(manifest, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "ab") as log:
            log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
            log.flush()
            # A session of its own: Ctrl-C reaches the job only through this process (once).
            return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    start_new_session=True)
    except OSError as exc:
        raise WriteError(f"log file {path}: cannot start the job ({exc.strerror or exc})", path,
                         exc.strerror) from None


class _Stop:
    """While inside: SIGTERM/SIGINT are passed on to `procs` and recorded in `signum` (no new job starts)."""

    def __init__(self) -> None:
        self.signum = 0
        self.procs: list[subprocess.Popen] = []
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "_Stop":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = self.signum or signum
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signum)

