"""Torch-free readers of a run folder's artifacts, with errors that name the file.

Plots, the HTML report, release notes and the dashboard all read the same few files;
reading them here once means one clear error (``MissingInputError`` /
``MalformedFileError`` naming the file) instead of a pandas traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from profy.contract.layout import COMPLETE_RESULTS_FILE
from profy.errors import MalformedFileError, MissingInputError

__all__ = ["check_status", "read_json", "read_table", "read_verdict", "require_run",
           "verdict_checks"]


def require_run(run: str | Path) -> Path:
    """Return ``run`` as a resolved folder holding ``complete_results.json``.

    Raises:
        MissingInputError: not a folder, or no ``complete_results.json`` in it.
    """
    path = Path(run)
    if not path.is_dir():
        raise MissingInputError(path, "run folder not found")
    if not (path / COMPLETE_RESULTS_FILE).is_file():
        raise MissingInputError(path / COMPLETE_RESULTS_FILE,
                                "not a finished run folder (no complete_results.json)")
    return path.resolve()


def read_table(run: Path, rel: str, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read ``run/rel`` (Parquet) and check that ``columns`` are present.

    Raises:
        MissingInputError: the file is absent.
        MalformedFileError: not readable Parquet, or a required column is missing.
    """
    import pyarrow.parquet as pq

    path = Path(run) / rel
    if not path.is_file():
        raise MissingInputError(path, "artifact not found")
    try:
        frame = pq.read_table(path).to_pandas()
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise MalformedFileError(path, f"not readable Parquet ({exc})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MalformedFileError(path, f"missing column(s) {', '.join(missing)}")
    return frame


def read_json(path: str | Path) -> Any:
    """Parse a JSON file.

    Raises:
        MissingInputError: the file is absent.
        MalformedFileError: not UTF-8 JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(path, "file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedFileError(path, f"not readable JSON ({exc})") from None


def read_verdict(run: Path, verdict: str | Path | None = None) -> tuple[dict | None, Path | None]:
    """The run's gate verdict, if any: ``(obj, path)`` or ``(None, None)``.

    Looks at ``verdict`` when given (it must exist), else ``RUN/guardrails/verdict.json``
    and ``RUN/verdict.json``. An unreadable verdict is an error, never "not gated yet":
    a damaged verdict must not look like a missing one.
    """
    if verdict is not None:
        candidates = [Path(verdict)]
        if not candidates[0].is_file():
            raise MissingInputError(candidates[0], "verdict file not found")
    else:
        candidates = [Path(run) / "guardrails" / "verdict.json", Path(run) / "verdict.json"]
    for path in candidates:
        if path.is_file():
            obj = read_json(path)
            if not isinstance(obj, dict):
                raise MalformedFileError(path, "a verdict must be a JSON object")
            verdict_checks(obj, path)  # validates the shape once, here
            return obj, path
    return None, None


def verdict_checks(obj: dict, path: str | Path = "<verdict>") -> list[dict[str, Any]]:
    """The ``checks`` list of a verdict (``CheckResult.to_dict`` entries), validated.

    Raises:
        MalformedFileError: ``checks`` is missing, not a list, or an entry lacks a name.
    """
    checks = obj.get("checks", obj.get("results"))
    if not isinstance(checks, list):
        raise MalformedFileError(path, "verdict has no 'checks' list")
    for i, entry in enumerate(checks):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise MalformedFileError(path, f"verdict check #{i} has no 'name'")
    return checks


def check_status(entry: dict[str, Any]) -> str:
    """``pass``/``fail``/``warn``/``skip`` of one verdict entry (``status`` if present)."""
    status = entry.get("status")
    if isinstance(status, str):
        return status
    if entry.get("skipped"):
        return "skip"
    if entry.get("passed"):
        return "pass"
    return "warn" if entry.get("severity") == "warning" else "fail"
