"""SIGTERM and SIGINT during training: save at the next step boundary, then stop.

A batch scheduler preempting a job (SLURM: SIGTERM, then SIGKILL after `KillWait`, 30 s by
default) and Ctrl-C (SIGINT) both mean "stop soon, keep the work". While training, `StopSignals`
replaces the handlers of both signals with one that only records the signal; the loop asks
`requested()` after each step, writes a checkpoint of that step and raises `TrainingStopped`
(the CLI exits with 128 + the signal number: 143 for SIGTERM, 130 for SIGINT). A second SIGINT
before the boundary raises KeyboardInterrupt at once (an impatient Ctrl-C still works; the
checkpoint being written, if any, is then not renamed into place, so nothing half-written
remains). The previous handlers come back when training ends, however it ends.

Handlers can only be installed from the main thread; elsewhere (training started from a
worker thread) the signals keep their previous behaviour.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from condgan import dist

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Context manager: while inside, SIGTERM/SIGINT set `signum` instead of ending the process."""

    def __init__(self) -> None:
        self.signum = 0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self.signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now, without the checkpoint
        self.signum = self.signum or signum

    def requested(self, distributed: bool = False) -> int:
        """The signal to stop on (0: none); `distributed`: the same on every rank (one signalled rank stops all)."""
        return dist.max_int(self.signum) if distributed else self.signum


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name
