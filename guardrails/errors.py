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


class GuardrailsError(Exception):
    """Root of every error guardrails raises on purpose (exit code 2)."""


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

    def __reduce__(self):  # rebuilt from the constructor's arguments (guardrails._lanes)
        return type(self), (self.path, self.problem)


class ArtifactError(BadInputError):
    """A run artifact is missing or corrupt.

    Inside ``guardrails ci`` this becomes a failing check naming the file (a missing
    file is never a pass); single-purpose commands report it as bad input.
    """


class CriteriaError(GuardrailsError, ValueError):
    """The criteria file is malformed: unknown check, unknown key, wrong type."""
