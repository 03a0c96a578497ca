"""The guardrails exception tree: for misuse and bad input only.

A check that finds a problem returns a failing :class:`~guardrails.CheckResult`; it
does not raise. The CLI turns every :class:`GuardrailsError` into exit code 2 with
one readable line.

    GuardrailsError
     ├── BadInputError        a file or folder is missing, unreadable or malformed
     │    └── ArtifactError   a run artifact (Parquet, JSON, log, model) is missing or corrupt
     └── CriteriaError (ValueError)  the criteria file names an unknown check or key
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ArtifactError", "BadInputError", "CriteriaError", "GuardrailsError"]


def _rebuild(cls: type[BaseException], args: tuple, state: dict) -> BaseException:
    """Unpickle an exception without calling its ``__init__`` (whose signature varies)."""
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class GuardrailsError(Exception):
    """Root of every error guardrails raises on purpose (exit code 2).

    Every subclass survives pickling with its message and attributes, whatever its
    ``__init__`` takes (``tests/test_errors.py`` checks each class).
    """

    def __reduce__(self) -> tuple:
        return _rebuild, (type(self), self.args, dict(self.__dict__))


class BadInputError(GuardrailsError):
    """A file or folder is missing, unreadable or malformed.

    Args:
        path: the file at fault; it leads the message.
        problem: what is wrong with it, in one line.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class ArtifactError(BadInputError):
    """A run artifact is missing or corrupt.

    Inside ``guardrails ci`` this becomes a failing check naming the file (a missing
    file is never a pass); single-purpose commands report it as bad input.
    """


class CriteriaError(GuardrailsError, ValueError):
    """The criteria file is malformed: unknown check, unknown key, wrong type."""
