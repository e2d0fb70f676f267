"""Fault injection against the real `condgan train` command: does a run survive, and is anything lost?

Each scenario trains a tiny run through the CLI in a subprocess (`python -m condgan.cli train`),
hurts it (SIGKILL at seeded random moments, SIGTERM, SIGINT, a disk that fills, a second writer, a
NaN gradient under a finite loss, a torn metrics.jsonl, a leftover temporary file, a start that
fails), lets it recover the way a user would (`--resume`) and compares what it ends with against
an uninterrupted reference run of the same command (trained in this process through the same
`condgan.cli.main`): every metrics.jsonl row (wall-clock `images_per_sec` excluded) and every
tensor of the final checkpoint (weights, buffers, optimiser states) must be bit-identical.

A case "survived" when every check of it held (exit codes, one-line messages, files left); "rows
lost" counts reference rows missing from, or different in, the recovered run. tests/test_faults.py
runs these scenarios at CI size; this script prints the table:

    PYTHONPATH=src python benchmarks/faults.py [--seeds 3] [--kills 4] [--work DIR]
    PYTHONPATH=src python benchmarks/faults.py --cost   # CPU time of the per-step gradient check

Fashion-MNIST cases read the dataset from condgan's usual places (or `--data-dir`); the real-disk
case mounts a 4 MiB tmpfs and needs root (it is reported as skipped otherwise).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from unittest import mock

import torch

WALL_CLOCK = ("images_per_sec",)  # row fields that measure time, not training: excluded from equality
COMMON = ["--no-progress", "--set", "train.threads=1", "--set", "train.grid_every=100000"]


def fashion_acgan(data_dir: str | None = None) -> list[str]:
    """AC-GAN with BatchNorm (DCGAN 28 px nets, 8 channels) on Fashion-MNIST; checkpoints every 7
    steps, rows every 3 (not a multiple: running sums must travel in the checkpoint)."""
    data = ["--data-dir", str(data_dir)] if data_dir else ["--set", "data.num_samples=320"]
    return ["--config", "acgan-fashion-mnist", *data, "--set", "model.g_channels=8", "--set", "model.d_channels=8",
            "--batch-size", "16", "--set", "train.log_every=3", "--set", "train.ckpt_every=7",
            "--set", "train.keep_ckpts=2"]


def selfcond_ring() -> list[str]:
    """Self-Cond GAN on the 2D ring, re-clustering every 9 steps, checkpoints every 10, rows every 4."""
    return ["--config", "selfcond-ring", "--set", "data.num_samples=600", "--set", "method.num_clusters=8",
            "--set", "method.recluster_every=9", "--set", "method.cluster_fit_size=300", "--batch-size", "20",
            "--set", "train.log_every=4", "--set", "train.ckpt_every=10", "--set", "train.keep_ckpts=2"]


def acgan_ring() -> list[str]:
    """The fastest run: AC-GAN on the 2D ring with 16-unit MLPs; checkpoints every 5 steps, rows every 3."""
    return ["--data", "ring", "--set", "data.num_samples=500", "--set", "model.hidden=16", "--batch-size", "16",
            "--set", "train.log_every=3", "--set", "train.ckpt_every=5", "--set", "train.keep_ckpts=3"]


@dataclass
class Outcome:
    case: str
    survived: bool
    rows_lost: int = 0
    note: str = ""

    def __str__(self) -> str:
        return f"{self.case}: {'survived' if self.survived else 'FAILED'}, {self.rows_lost} rows lost; {self.note}"


class Checks:
    """Collects the failed checks of one case (a case goes on after a failed check, to report it all)."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def __call__(self, ok: bool, what: str) -> bool:
        if not ok:
            self.failed.append(what)
        return ok

    def outcome(self, case: str, rows_lost: int = 0, note: str = "") -> Outcome:
        ok = not self.failed
        return Outcome(case, ok, rows_lost, note if ok else "; ".join(self.failed + ([note] if note else [])))


# ---------------------------------------------------------------- run directory helpers


def rows(run: Path) -> list[dict]:
    out = []
    path = run / "metrics.jsonl"
    for line in (path.read_text().splitlines() if path.exists() else []):
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def comparable(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in rows(run)]


def checkpoints(run: Path) -> list[Path]:
    folder = run / "checkpoints"
    return sorted(folder.glob("ckpt-*.pt")) if folder.is_dir() else []


def ckpt_step(run: Path) -> int:
    found = checkpoints(run)
    return int(found[-1].stem.split("-")[1]) if found else 0


def temp_files(run: Path) -> list[Path]:
    return [p for p in run.rglob("*.tmp") if p.is_file()]


def final_state(run: Path) -> dict:
    state = torch.load(checkpoints(run)[-1], map_location="cpu", weights_only=True)
    return {"model": state["model"], "optimizers": state["optimizers"]}


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def compare(run: Path, ref: Path, check: Checks) -> int:
    """Rows of `ref` missing from or different in `run` (checked: none), and the final states equal."""
    ours, theirs = comparable(run), comparable(ref)
    lost = sum(1 for i, r in enumerate(theirs) if i >= len(ours) or ours[i] != r)
    check(lost == 0 and len(ours) == len(theirs), f"rows differ from the uninterrupted run ({lost} of {len(theirs)})")
    check(_same(final_state(run), final_state(ref)), "final weights/optimiser states differ from the uninterrupted run")
    return lost


def snapshot(folder: Path) -> dict[str, str] | None:
    """Every file under `folder` by its sha256 (and every folder), or None when `folder` is absent."""
    if not folder.exists():
        return None
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return out


# ---------------------------------------------------------------- running the CLI


def cli_main(argv: list[str]) -> tuple[int, str]:
    """`condgan.cli.main(argv)` in this process: (exit code, stderr)."""
    from condgan.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def one_line(stderr: str, needle: str = "") -> bool:
    lines = stderr.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("condgan: ") and needle in lines[0]


class Child:
    """`condgan train ...` in a subprocess (stdout/stderr to files beside the run)."""

    def __init__(self, work: Path, run: Path, argv: list[str]) -> None:
        self.start_step = ckpt_step(run) if "--resume" in argv else 0
        self.run = run
        logs = work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        stem = f"{run.name}-{len(list(logs.glob(run.name + '-*.err')))}"
        self.err_path = logs / f"{stem}.err"
        with open(logs / f"{stem}.out", "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "condgan.cli", "train", "--out", str(run), *argv],
                                         stdout=out, stderr=err, env=os.environ.copy())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_progress(self, timeout: float = 300) -> bool:
        """Wait until this process holds the run's lock and has written a checkpoint after the step it
        started from (rows alone could be stale ones a resume has yet to drop); False if it exited first."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if lock_holder(self.run) == self.pid and ckpt_step(self.run) > self.start_step:
                return self.proc.poll() is None
            if self.proc.poll() is not None:
                return False
            time.sleep(0.01)
        raise TimeoutError(f"{self.run}: no progress within {timeout} s")

    def sleep_before(self, seconds: float, step: int) -> None:
        """Sleep `seconds`, or less once the run's rows reach `step`: a SIGKILL meant to land mid-run
        must not arrive after a fast machine has finished the run (and released its lock)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and max((r["step"] for r in rows(self.run)), default=0) < step:
            time.sleep(0.005)

    def wait(self, timeout: float = 300) -> int:
        return self.proc.wait(timeout)

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")


class References:
    """Uninterrupted runs of a command, trained once in this process through `condgan.cli.main`."""

    def __init__(self, work: Path) -> None:
        self.work, self._done = work / "reference", {}

    def get(self, argv: list[str], steps: int) -> Path:
        key = (tuple(argv), steps)
        if key not in self._done:
            run = self.work / f"ref-{len(self._done)}"
            code, err = cli_main(["train", "--out", str(run), *argv, *COMMON, "--steps", str(steps)])
            if code != 0:
                raise RuntimeError(f"reference run failed: {err}")
            self._done[key] = run
        return self._done[key]


def lock_holder(run: Path) -> int | None:
    """The pid in `run`'s lock file (None when there is none, or it is being written)."""
    try:
        return int(json.loads((run / ".lock").read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ---------------------------------------------------------------- scenarios

STOP_LINE = re.compile(r"condgan: stopped by (SIG\w+) at step (\d+); checkpoint (\S+); resume with --resume")


def interrupted_chain(work: Path, refs: References, name: str, argv: list[str], steps: int,
                      faults: list[str], seed: int, max_delay: float = 1.0) -> list[Outcome]:
    """Train `steps` steps through a chain of processes, each ended by the next fault of `faults`
    ("kill": SIGKILL at a seeded random moment after the process's first checkpoint and before the
    last fifth of the steps; "term"/"int": SIGTERM/SIGINT), each followed by `--resume`, until the
    run completes.

    A process that is to get a signal trains with `--steps` far beyond `steps` (so that it cannot
    finish first; the resume sets `steps` back, a change resuming allows). After the first kill
    the run also gets a torn metrics.jsonl line and a leftover checkpoint temporary file on top of
    the stale lock the kill left; while the first signalled process trains, a second `--resume`
    and a `--force` into the same run are tried. Outcomes: the chain (rows and final state against
    the uninterrupted run) and one per extra fault exercised."""
    rng = random.Random(seed)
    run = work / name
    check, side, notes = Checks(), [], []
    injected: tuple[int | None, Path] | None = None  # (pid in the stale lock, leftover file) until judged
    torn = False
    child = None
    for fault in [*faults, "finish"]:
        n = steps if fault in ("kill", "finish") else 100 * steps
        child = Child(work, run, ["--resume", "--no-progress", "--steps", str(n)] if child else
                      [*argv, *COMMON, "--steps", str(n)])
        running = child.wait_progress()
        if injected is not None:
            holder, leftover = injected
            c = Checks()
            c(holder is not None and holder != child.pid and not _pid_alive(holder),
              "the kill left no lock file naming the dead process")
            c(running or child.proc.returncode == 0, f"resume over the stale lock failed: {child.stderr[-300:]}")
            c(f"taking over the lock of pid {holder}" in child.stderr, "no note on taking over the stale lock")
            side.append(c.outcome(f"{name}: stale lock taken over", note=f"lock of killed pid {holder}"))
            c = Checks()
            c(not leftover.exists(), "leftover temporary file not removed")
            side.append(c.outcome(f"{name}: leftover temp file cleaned", note=leftover.name))
            injected = None
        if fault == "finish" or not running:
            if fault != "finish":
                notes.append(f"{fault}: run finished first")
            break
        if fault == "kill":
            child.sleep_before(rng.uniform(0, max_delay), steps - max(steps // 5, 10))
            child.proc.send_signal(signal.SIGKILL)
            if child.wait() == 0:
                notes.append("kill: run finished first")
                break
            left = temp_files(run)  # the kill may have hit a checkpoint write
            notes.append(f"SIGKILL after row {max((r['step'] for r in rows(run)), default=0)}"
                         + (f" (mid-write: {len(left)} temp file)" if left else ""))
            if not torn:
                torn = True
                with open(run / "metrics.jsonl", "a") as fh:
                    fh.write('{"step": 99999, "D/lo')  # a row cut short
                leftover = run / "checkpoints" / ".ckpt-00099999.pt.k1ll3d.tmp"
                leftover.parent.mkdir(exist_ok=True)
                leftover.write_bytes(b"half a checkpoint")
                injected = (lock_holder(run), leftover)
            continue
        signum = {"term": signal.SIGTERM, "int": signal.SIGINT}[fault]
        if not any("second writer" in o.case for o in side):
            side.extend(second_writers(run, argv, child.pid))
        time.sleep(rng.uniform(0, max_delay / 4))
        child.proc.send_signal(signum)
        code = child.wait()
        last = (child.stderr.strip().splitlines() or [""])[-1]
        stop = STOP_LINE.search(last)
        c = Checks()
        c(code == 128 + signum, f"exit code {code}, expected {128 + signum}")
        c(stop is not None and stop.group(1) == signal.Signals(signum).name, f"no stop line: {last!r}")
        if stop:
            at = int(stop.group(2))
            c(Path(stop.group(3)).is_file() and ckpt_step(run) == at, "the stop checkpoint is not the newest one")
            c(at < steps, f"stopped at step {at}, past the {steps} steps of the comparison")
            notes.append(f"{signal.Signals(signum).name} at step {at}")
        c(not (run / ".lock").exists(), "lock not released")
        side.append(c.outcome(f"{name}: {signal.Signals(signum).name} saves and exits {128 + signum}",
                              note=f"stopped at step {stop.group(2) if stop else '?'}"))
    code = child.wait()
    check(code == 0, f"the last process exited {code}: {child.stderr.strip()[-300:]}")
    ref = refs.get(argv, steps)
    lost = compare(run, ref, check) if code == 0 else len(comparable(ref))
    check(not temp_files(run), f"temporary files left: {temp_files(run)}")
    check(not (run / ".lock").exists(), "lock not released at the end")
    if torn:
        side.append(Outcome(f"{name}: torn metrics.jsonl line", lost == 0, lost,
                            "dropped on resume" if lost == 0 else "rows differ"))
    chain = check.outcome(f"{name}: {'/'.join(faults)}, each then --resume: exact", lost, ", ".join(notes))
    return [chain] + side


def second_writers(run: Path, argv: list[str], holder: int) -> list[Outcome]:
    """While `holder` trains `run`: a second `--resume` and a `--force` into it are refused, naming the holder."""
    out = []
    names = f"pid {holder} on host {socket.gethostname()}"
    if lock_holder(run) != holder:  # never start a second real run from here
        return [Outcome("second writer refused", False, 0, f"{holder} does not hold the lock; not tried")]
    code, err = cli_main(["train", "--out", str(run), "--resume", "--no-progress"])
    c = Checks()
    c(code == 2 and one_line(err, names), f"second --resume: exit {code}, {err.strip()!r}")
    out.append(c.outcome("second writer (--resume) refused", note=f"names {names}"))
    code, err = cli_main(["train", "--out", str(run), *argv, *COMMON, "--steps", "5", "--force"])
    c = Checks()
    c(code == 2 and one_line(err, names), f"--force: exit {code}, {err.strip()!r}")
    c((run / "config.yaml").exists() and bool(checkpoints(run)) and bool(rows(run)),
      "--force deleted the live run's files")
    out.append(c.outcome("second writer (--force) refused, nothing deleted", note="lock taken before deleting"))
    return out


def signal_in_process(work: Path, refs: References, argv: list[str], steps: int, signum: int,
                      at: int) -> list[Outcome]:
    """The signal `signum` arrives during step `at` of `condgan.cli.main` in this process (sent with
    os.kill from inside the step, so at a known moment); then `--resume`, also in this process."""
    from condgan.training import loop

    run = work / f"in-process-{signal.Signals(signum).name}"
    real_step = loop._step

    def step_then_signal(s, step):
        real_step(s, step)
        if step == at - 1:
            os.kill(os.getpid(), signum)

    handler = signal.getsignal(signum)
    with mock.patch.object(loop, "_step", step_then_signal):
        code, err = cli_main(["train", "--out", str(run), *argv, *COMMON, "--steps", str(steps)])
    c = Checks()
    c(signal.getsignal(signum) == handler, "the previous signal handler was not restored")
    stop = STOP_LINE.search(err)
    c(code == 128 + signum and one_line(err), f"exit {code}, expected {128 + signum}: {err!r}")
    c(stop is not None and int(stop.group(2)) == at and ckpt_step(run) == at, f"no checkpoint of step {at}: {err!r}")
    code, err = cli_main(["train", "--out", str(run), "--resume", "--no-progress", "--steps", str(steps)])
    c(code == 0, f"resume: exit {code} {err!r}")
    lost = compare(run, refs.get(argv, steps), c) if code == 0 else 0
    name = signal.Signals(signum).name
    return [c.outcome(f"{name} (in process) saves at the step boundary, exits {128 + signum}, resume exact", lost,
                      f"stopped at step {at}")]


def nan_gradient(work: Path, refs: References, argv: list[str], steps: int, at: int) -> list[Outcome]:
    """A NaN gradient under a finite loss at step `at` (injected in this process with a gradient hook),
    then `--resume` in a subprocess without the fault, then `condgan sample`."""
    from condgan.methods.acgan import ACGAN

    real_loss = ACGAN.loss

    def poisoned(self, phase, step):
        loss, stats = real_loss(self, phase, step)
        if step.step == at and phase.name == "G":
            next(self.G.parameters()).register_hook(lambda g: torch.full_like(g, float("nan")))
        return loss, stats

    run = work / "nan-gradient"
    c = Checks()
    with mock.patch.object(ACGAN, "loss", poisoned):
        code, err = cli_main(["train", "--out", str(run), *argv, *COMMON, "--steps", str(steps)])
    good = checkpoints(run)
    c(code == 2 and one_line(err, f"step {at}: G gradient norm is nan under a finite loss"), f"exit {code}: {err!r}")
    c(bool(good) and str(good[-1]) in err, f"message does not name the last good checkpoint {good[-1:]}")
    c(all(bool(torch.isfinite(t).all()) for t in final_state(run)["model"].values()), "a checkpoint holds NaN")
    child = Child(work, run, ["--resume", "--no-progress", "--steps", str(steps)])
    code = child.wait()
    c(code == 0, f"resume after the NaN stop exited {code}: {child.stderr[-300:]}")
    lost = compare(run, refs.get(argv, steps), c) if code == 0 else 0
    code, err = cli_main(["sample", str(run), "--n", "8", "--out", str(work / "nan-samples.npz"), "--device", "cpu"])
    c(code == 0, f"sample after resume: exit {code} {err!r}")
    return [c.outcome("NaN gradient, finite loss: stopped, nothing non-finite saved, resume exact", lost,
                      f"detected at step {at}; last good {good[-1].name if good else 'none'}")]


def disk_full_in_process(work: Path, refs: References, argv: list[str], steps: int, target: str,
                         at: int) -> list[Outcome]:
    """The disk fills while writing the checkpoint of step `at` (`target` "checkpoint") or the metrics row
    of step `at` ("metrics"): simulated at the write call (half written, then ENOSPC)."""
    from condgan.training import loop

    run = work / f"disk-full-{target}"
    real_write_bytes, real_log_write = Path.write_bytes, loop.RunLog.write

    def full_write_bytes(self, data):
        if self.name.startswith(f".ckpt-{at:08d}.pt."):
            real_write_bytes(self, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write_bytes(self, data)

    def full_log_write(self, row):
        if row["step"] == at and self.enabled:
            line = json.dumps(row)
            self.file.write(line[: len(line) // 2])
            self.file.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.file.name)
        return real_log_write(self, row)

    patch = (mock.patch.object(Path, "write_bytes", full_write_bytes) if target == "checkpoint"
             else mock.patch.object(loop.RunLog, "write", full_log_write))
    with patch:
        code, err = cli_main(["train", "--out", str(run), *argv, *COMMON, "--steps", str(steps)])
    return _after_disk_full(run, refs, argv, steps, code, err, at, f"disk full during a {target} write (simulated)")


def _after_disk_full(run: Path, refs: References, argv: list[str], steps: int, code: int, err: str, at: int | None,
                     case: str, resume_steps: int | None = None) -> list[Outcome]:
    c = Checks()
    c(code == 2 and one_line(err, "No space left on device"), f"exit {code}: {err.strip()!r}")
    m = re.search(r"failed at step (\d+)", err)
    c(m is not None and (at is None or int(m.group(1)) == at), f"step not named: {err.strip()!r}")
    c(re.search(r"writing (checkpoints/ckpt-\d+\.pt|metrics\.jsonl|events) failed", err) is not None,
      f"the file is not named: {err.strip()!r}")
    good = checkpoints(run)
    c(bool(good) and f"last good checkpoint: {good[-1]}" in err, "last good checkpoint not named")
    c(not temp_files(run), f"temporary files left: {temp_files(run)}")
    c(not (run / ".lock").exists(), "lock not released")
    try:
        torch.load(good[-1], weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the previous checkpoint is damaged
        c(False, f"previous checkpoint unreadable: {exc}")
    n = resume_steps or steps
    code, err = cli_main(["train", "--out", str(run), "--resume", "--no-progress", "--steps", str(n)])
    c(code == 0, f"resume after freeing space: exit {code} {err!r}")
    lost = compare(run, refs.get(argv, n), c) if code == 0 else 0
    return [c.outcome(case, lost, f"stopped at step {m.group(1) if m else '?'}, {good[-1].name if good else '-'} intact")]


def disk_full_tmpfs(work: Path, refs: References, argv: list[str]) -> list[Outcome]:
    """A real full disk: the run lives on a 4 MiB tmpfs that a filler file fills after the first checkpoint."""
    case = "disk full on a real tmpfs (ENOSPC from the kernel)"
    if os.geteuid() != 0:
        return [Outcome(case, True, 0, "skipped: needs root to mount a tmpfs")]
    mnt = work / "tmpfs"
    mnt.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True).returncode:
        return [Outcome(case, True, 0, "skipped: mount -t tmpfs failed")]
    try:
        run = mnt / "run"
        child = Child(work, run, [*argv, *COMMON, "--steps", "100000"])
        end = time.monotonic() + 300
        while not checkpoints(run) and child.proc.poll() is None and time.monotonic() < end:
            time.sleep(0.01)
        filler = mnt / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 65536)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 512)
        os.close(fd)
        code = child.wait()
        filler.unlink()
        err = child.stderr
        m = re.search(r"failed at step (\d+)", err)
        stopped = int(m.group(1)) if m else 0
        return _after_disk_full(run, refs, argv, 0, code, err, None, case, resume_steps=stopped + 8)
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def failed_starts(work: Path, refs: References, argv: list[str], steps: int) -> list[Outcome]:
    """Starts that fail leave the run directory byte-identical (or absent, when it did not exist)."""
    run = work / "failed-start"
    shutil.copytree(refs.get(argv, steps), run)
    out = []

    def case(name: str, before: dict | None, code: int, err: str, needle: str) -> None:
        c = Checks()
        c(code == 2 and one_line(err, needle), f"exit {code}: {err.strip()!r}")
        c(snapshot(run if before is not None else work / "never-started") == before, "the directory changed")
        out.append(c.outcome(f"failed start leaves the directory unchanged: {name}"))

    before = snapshot(run)
    child = Child(work, run, [*argv, *COMMON, "--steps", str(steps), "--force",
                              "--set", "data.name=folder", "--data-dir", str(work / "no-such-data")])
    code = child.wait()
    case("--force with unloadable data (subprocess)", before, code, child.stderr, "no-such-data")
    code, err = cli_main(["train", "--out", str(run), "--resume", "--no-progress", "--set", "model.hidden=32"])
    case("--resume with another model", before, code, err, "model.hidden")
    newest = checkpoints(run)[-1]
    kept = newest.read_bytes()
    newest.write_bytes(kept[: len(kept) // 3])  # truncated by hand, say
    before = snapshot(run)
    code, err = cli_main(["train", "--out", str(run), "--resume", "--no-progress", "--steps", str(steps + 5)])
    case("--resume from a truncated checkpoint", before, code, err, newest.name)
    state = torch.load(io.BytesIO(kept), weights_only=True)
    first = next(iter(state["model"]))
    state["model"][first].view(-1)[0] = float("nan")
    torch.save(state, newest)  # as a version before the finiteness check could have written it
    before = snapshot(run)
    code, err = cli_main(["train", "--out", str(run), "--resume", "--no-progress", "--steps", str(steps + 5)])
    case("--resume from a checkpoint holding NaN weights", before, code, err, "non-finite")
    code, err = cli_main(["sample", str(run), "--n", "4", "--out", str(work / "never.npz"), "--device", "cpu"])
    case("sample from a checkpoint holding NaN weights", before, code, err, "non-finite")
    newest.write_bytes(kept)
    code, err = cli_main(["train", "--out", str(work / "never-started"), "--no-progress", "--config", "selfcond-ring",
                          "--set", "data.num_samples=50", "--set", "method.num_clusters=51", "--batch-size", "10"])
    case("new run whose method cannot start (no directory created)", None, code, err, "method.num_clusters")
    return out


# ---------------------------------------------------------------- the table


def run_all(work: Path, seeds: int = 2, kills: int = 3, fashion: list[str] | None = None,
            say: Callable[[str], None] = print) -> list[Outcome]:
    refs = References(work)
    fm = fashion if fashion is not None else fashion_acgan()
    outcomes: list[Outcome] = []

    def add(found: list[Outcome]) -> None:
        for o in found:
            say(f"  {o}")
            sys.stdout.flush()
        outcomes.extend(found)

    # Signals first (each stops within a few steps of its process's first checkpoint), then the
    # kills; the step counts leave room for every fault before the run could end by itself.
    for seed in range(seeds):
        add(interrupted_chain(work, refs, f"acgan-fm-bn-{seed}", fm, 150, ["term", "int"] + ["kill"] * kills, seed))
        add(interrupted_chain(work, refs, f"selfcond-ring-{seed}", selfcond_ring(), 150, ["kill"] * kills, 100 + seed,
                              max_delay=0.6))
        add(interrupted_chain(work, refs, f"acgan-ring-{seed}", acgan_ring(), 250, ["kill"] * (kills + 2), 200 + seed,
                              max_delay=0.4))
    for signum, at in ((signal.SIGINT, 13), (signal.SIGTERM, 22)):
        add(signal_in_process(work, refs, acgan_ring(), 40, signum, at))
    add(nan_gradient(work, refs, acgan_ring(), 40, at=27))
    add(disk_full_in_process(work, refs, acgan_ring(), 40, "checkpoint", at=20))
    add(disk_full_in_process(work, refs, acgan_ring(), 40, "metrics", at=24))
    add(disk_full_tmpfs(work, refs, acgan_ring()))
    add(failed_starts(work, refs, acgan_ring(), 40))
    return outcomes


def table(outcomes: list[Outcome]) -> str:
    width = max(len(o.case) for o in outcomes)
    lines = [f"{'case':{width}s}  survived  rows lost  note", f"{'-' * width}  --------  ---------  ----"]
    lines += [f"{o.case:{width}s}  {'yes' if o.survived else 'NO':8s}  {o.rows_lost:9d}  {o.note}" for o in outcomes]
    tried, survived = len(outcomes), sum(o.survived for o in outcomes)
    lost = sum(o.rows_lost for o in outcomes)
    lines.append(f"\ncases tried: {tried}, survived: {survived}, data lost: {lost} rows")
    return "\n".join(lines)


def grad_check_cost(reps: int = 200) -> str:
    """CPU time of the loop's per-step finiteness check (the gradient norm of both phases) against a
    whole training step (D and G phases, batch 64, one thread), for the default 28 px DCGAN nets
    on Fashion-MNIST and the default ring MLPs."""
    import statistics

    from condgan.config import resolve_config
    from condgan.methods import StepInputs, build_method
    from condgan.training import loop

    lines = []
    for name, over in {"fashion-mnist, DCGAN 28 px": ["data.name=fashion-mnist", "data.num_samples=640"],
                       "ring, MLP": ["data.name=ring", "data.num_samples=640"]}.items():
        cfg = resolve_config(overrides=over + ["train.batch_size=64"])
        data = loop.load_training_data(cfg)
        method = build_method(cfg, loop.data_spec(data))
        opts = {p.name: torch.optim.Adam(p.module.parameters()) for p in method.phases()}
        steps, norms = [], []
        for i in range(max(reps // 5, 10)):
            idx = torch.randint(0, len(data), (64,))
            inputs = StepInputs(data.data.x(idx), data.y[idx], idx, method.latent(64), method.sample_classes(64), i)
            t0 = time.process_time()
            for phase in method.phases():
                opts[phase.name].zero_grad(set_to_none=True)
                loss, _ = method.loss(phase.name, inputs)
                loss.backward()
                float(loss.detach())
                opts[phase.name].step()
            steps.append(time.process_time() - t0)
        for _ in range(reps):
            t0 = time.process_time()
            for opt in opts.values():
                float(loop._grad_norm(opt))
            norms.append(time.process_time() - t0)
        step, norm = statistics.median(steps) * 1e3, statistics.median(norms) * 1e3
        lines.append(f"{name:28s} step {step:8.2f} ms   gradient-norm check {norm:6.3f} ms   ({100 * norm / step:.2f}%)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="seeds of the random kill moments per chain")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs per chain")
    parser.add_argument("--data-dir", help="Fashion-MNIST files (default: condgan's usual places)")
    parser.add_argument("--work", help="where the runs go (default: a temporary folder, removed after)")
    parser.add_argument("--cost", action="store_true", help="only time the per-step gradient check")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.cost:
        print(grad_check_cost())
        return
    with contextlib.ExitStack() as stack:
        work = Path(args.work) if args.work else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        t0 = time.perf_counter()
        outcomes = run_all(work, args.seeds, args.kills, fashion_acgan(args.data_dir))
        print()
        print(table(outcomes))
        print(f"({time.perf_counter() - t0:.0f} s, torch {torch.__version__}, {os.cpu_count()} CPUs)")
    sys.exit(0 if all(o.survived and o.rows_lost == 0 for o in outcomes) else 1)


if __name__ == "__main__":
    main()
