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


class TrainingDiverged(CondganError):
    """A loss became NaN or infinite; the message names the step."""


class SamplesError(CondganError):
    """A samples file (.npz interchange format) is malformed or does not match the real data."""


class ReportError(CondganError):
    """An evaluation to report on (its metrics.json) is missing or malformed."""
