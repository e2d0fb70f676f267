"""The package's exception types.

Every error a user can cause (bad file, bad config value, bad checkpoint, ...) is raised as a
`CondganError` subclass whose message names the file or field, what was expected and what was
found. The CLI prints the message as one line and exits with `EXIT_USER_ERROR`.
"""

EXIT_USER_ERROR = 2


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
