"""The package's exception types.

Every error a user can cause (bad file, bad config value, bad checkpoint, ...) is raised as a
`CondganError` subclass whose message names the file or field, what was expected and what was
found. The CLI prints the message as one line and exits with `EXIT_USER_ERROR`.
"""

EXIT_USER_ERROR = 2
MAX_MESSAGE_CHARS = 400  # an error message is one line of at most this many characters


def one_line(text: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` on one line (runs of whitespace, newlines included, become one space) of at most
    `limit` characters, so that no echoed value can flood a terminal or a log. A longer text
    keeps its start and its end (where messages say what to do) around a "…"."""
    flat = " ".join(str(text).split())
    if len(flat) <= limit:
        return flat
    tail = (limit - 1) * 2 // 5
    return flat[:limit - 1 - tail] + "…" + (flat[-tail:] if tail else "")


class CondganError(Exception):
    """Base class of all errors caused by user input; the CLI turns them into exit code 2."""


class DataError(CondganError):
    """A data file or folder is missing, corrupted or inconsistent."""


class ConfigError(CondganError):
    """A config file, key or value is invalid."""


class CheckpointError(CondganError):
    """A checkpoint is missing, unsafe, corrupted or belongs to another architecture."""


class RunDirError(CondganError):
    """A run directory cannot be used (already holds a run, not writable, ...)."""


class NonFiniteState(CheckpointError):
    """A model or optimiser state to be saved, or a checkpoint read, holds a NaN or an infinity."""


class TrainingDiverged(CondganError):
    """A loss, a gradient or the model state became NaN or infinite; the message names the step and
    the newest checkpoint that is good (or 'none')."""


class TrainingStopped(Exception):
    """Training stopped at a step boundary on a signal (SIGTERM, SIGINT) after saving a checkpoint.

    Not a user error: the CLI prints the message and exits with 128 + the signal number (the
    shell's convention for a process ended by that signal)."""

    def __init__(self, message: str, signum: int, step: int, checkpoint) -> None:
        super().__init__(message)
        self.signum, self.step, self.checkpoint = signum, step, checkpoint

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class SamplesError(CondganError):
    """A samples file (.npz interchange format) is malformed or does not match the real data."""


class WriteError(CondganError):
    """An output file or folder cannot be written (not writable, disk full, ...); names the path.

    `path` and `reason` are the target and the system's reason, when a write itself failed."""

    def __init__(self, message: str, path: object = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.path, self.reason = path, reason


class StatsError(CondganError):
    """A feature-statistics file is unreadable, malformed, or belongs to another feature extractor."""


class ReportError(CondganError):
    """An evaluation to report on (its metrics.json) is missing or malformed."""
