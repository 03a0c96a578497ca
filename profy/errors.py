"""Profy's one exception tree.

Exceptions are for misuse and bad input; a failed quality check is data, not an
exception. Every message names the offending file or value. Every class pickles
(worker processes hand them to the parent intact; ``tests/test_errors.py`` checks each).

    ProfyError
     ├── ConfigError (ValueError)       a config value, profile or key is invalid
     ├── DataError                      an input file is missing, unsafe or malformed
     │    ├── MissingInputError         a file or folder that should exist does not
     │    ├── UnsafePathError           a path or id escapes the data root
     │    ├── LabelsError               labels.csv is malformed or inconsistent
     │    └── MalformedFileError        a CSV/WAV/Parquet/JSON cannot be read as promised
     ├── LeakageError                   a take or player sits on both sides of a split
     ├── FeatureError                   features cannot be computed or reused
     └── ExportError                    a trained model cannot be exported to ONNX

    ProfyWarning (UserWarning)          something the user should see, e.g. skipped rows
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ConfigError",
    "DataError",
    "ExportError",
    "FeatureError",
    "LabelsError",
    "LeakageError",
    "MalformedFileError",
    "MissingInputError",
    "ProfyError",
    "ProfyWarning",
    "UnsafePathError",
]


def _rebuild(cls: type[BaseException], args: tuple, state: dict) -> BaseException:
    """Unpickle an exception without calling its ``__init__`` (whose signature varies)."""
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class ProfyError(Exception):
    """Root of every error Profy raises on purpose; the CLI turns it into exit code 2.

    Every subclass survives pickling with its message and attributes (``path``,
    ``problem``), whatever its ``__init__`` takes: a worker process's error reaches the
    parent as the same exception, so the CLI prints the same one line.
    """

    def __reduce__(self) -> tuple:
        return _rebuild, (type(self), self.args, dict(self.__dict__))


class ConfigError(ProfyError, ValueError):
    """A config value, profile name or key is invalid (unknown keys included)."""


class DataError(ProfyError):
    """An input file is missing, unsafe or malformed.

    Args:
        path: the file (or folder) at fault; it leads the message.
        problem: what is wrong with it, in one line.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class MissingInputError(DataError):
    """A file or folder that should exist does not."""


class UnsafePathError(DataError):
    """A path or id escapes the data root (``..``, absolute path, or a symlink out)."""


class LabelsError(DataError):
    """The labels file lacks a column, or its rows disagree about a take."""


class MalformedFileError(DataError):
    """A CSV, WAV, Parquet or JSON file cannot be read as its format promises."""


class LeakageError(ProfyError):
    """A take or a player appears on both sides of a split."""


class FeatureError(ProfyError):
    """Features cannot be computed, or cached/normalization artifacts do not match."""


class ExportError(ProfyError):
    """The ONNX exporter failed on a trained model; the message names the model, the
    exporter's final error and the log file that holds its full output."""


class ProfyWarning(UserWarning):
    """A warning from Profy itself (tests turn these into errors)."""
