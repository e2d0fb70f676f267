"""One writer per run directory: `RUN/.lock`, held with flock(2) while a process writes the run.

The lock is an advisory `fcntl.flock` on an open file descriptor. The kernel releases it when the
holding process ends, however it ends (SIGKILL, the OOM killer, a power cut of a node with its
network file system's lock lease), so a lock whose holder died is simply free again: taking over
a stale lock needs no guess from process ids or ages. The file holds the holder's pid, host name
and start time (JSON), for the refusal message and for the note on taking over a stale lock.

Releasing deletes the file while still holding the lock. A process that opened the old file just
before it was deleted may then lock the deleted inode, so `acquire` checks that the file it
locked is still the one at the path and retries otherwise.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from condgan.errors import RunDirError

LOCK_FILE = ".lock"


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a run's lock, as its lock file says."""

    pid: int | None
    host: str
    since: str

    def describe(self) -> str:
        if self.pid is None:
            return "a process that has not yet written its pid"
        return f"pid {self.pid} on host {self.host}, since {self.since}"


def _read_holder(fd: int) -> Holder | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        info = json.loads(text)
        return Holder(int(info["pid"]), str(info["host"]), str(info["since"]))
    except (ValueError, KeyError, TypeError):
        return Holder(None, "?", "?")


class RunLock:
    """`RunLock(run_dir).acquire()` … `release()`: exclusive right to write `run_dir`.

    `acquire` creates `run_dir` when it is missing (and `release` removes it again if it is still
    empty, so a start that fails leaves no trace). `stale` is the holder recorded in a lock file
    whose process had ended without releasing it (None when the file was absent or released).
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.stale: Holder | None = None
        self._fd: int | None = None
        self._created_dir = False

    def acquire(self) -> "RunLock":
        try:
            self._created_dir = not self.run_dir.exists()
            self.run_dir.mkdir(parents=True, exist_ok=True)
            while True:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = _read_holder(fd)
                    os.close(fd)
                    self._remove_created_dir()
                    raise RunDirError(
                        f"output directory {self.run_dir} is being written by another condgan process "
                        f"({holder.describe() if holder else 'unknown holder'}; lock {self.path}); "
                        "wait for it to end or stop it"
                    ) from None
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if same:
                    break
                os.close(fd)  # locked a file its holder had just released and deleted: try again
            self._fd = fd
            self.stale = _read_holder(fd)
            record = {"pid": os.getpid(), "host": socket.gethostname(),
                      "since": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(record) + "\n").encode())
        except OSError as exc:
            self.release()
            raise RunDirError(f"output directory {self.run_dir}: not writable (cannot create its lock "
                              f"{LOCK_FILE}: {exc.strerror or exc})") from None
        return self

    def release(self) -> None:
        """Delete the lock file and unlock (idempotent; never raises)."""
        if self._fd is not None:
            try:
                self.path.unlink()
            except OSError:
                pass
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None
        self._remove_created_dir()

    def _remove_created_dir(self) -> None:
        if self._created_dir:
            try:
                self.run_dir.rmdir()  # only when still empty: the run never started
            except OSError:
                pass
            else:
                self._created_dir = False

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def lock_holder(run_dir: str | Path) -> Holder | None:
    """Who holds `run_dir`'s lock now (None: nobody; a stale lock file of an ended process is free).

    Probes with a shared flock that it drops at once; it never creates or deletes the lock file.
    A writer starting in that instant sees the lock taken and refuses, naming no holder."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(fd) or Holder(None, "?", "?")
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
