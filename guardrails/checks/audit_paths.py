"""Audits of several run folders or single Parquet files in one verdict (``guardrails audit``).

A run folder gets every ``audit.*`` check the criteria select (schemas, ranges, keys,
referential integrity); a file gets its artifact's schema audit (the artifact is read
from the file's ``profy_artifact`` metadata, else its name). A corrupt, truncated or
empty Parquet file is a failing audit naming the file, since finding such files is an
audit's job; a path that does not exist is bad input.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from guardrails._context import RunContext
from guardrails._registry import Selection, run_checks
from guardrails._result import CheckResult
from guardrails.checks.audit import audit_path
from guardrails.errors import ArtifactError, BadInputError

__all__ = ["audit_paths"]


def _label(result: CheckResult, label: str | None) -> CheckResult:
    return result if label is None else dataclasses.replace(result,
                                                            name=f"{result.name} [{label}]")


def audit_paths(paths: list[Path], *, engine: str, report_dir: Path,
                criteria: Selection) -> list[CheckResult]:
    """Audit each path (run folder or Parquet file); with several, each result's name is
    suffixed ``[i:name]`` and each path keeps its evidence in ``report_dir/<i>_<name>/``.

    Raises:
        BadInputError: a path that is neither a file nor a folder.
    """
    results = []
    many = len(paths) > 1
    for i, path in enumerate(paths):
        label = f"{i + 1}:{path.name}" if many else None
        sub_dir = report_dir / f"{i + 1}_{path.name}" if many else report_dir
        if path.is_dir():
            ctx = RunContext(path, report_dir=sub_dir, engine=engine)
            found = run_checks(ctx, criteria, categories=["audit"])
        elif path.is_file():
            try:
                found = [audit_path(path, engine=engine, report_dir=sub_dir)]
            except ArtifactError as exc:
                found = [CheckResult(f"audit.{path.stem}", "audit", False,
                                     observed="unreadable", expected="a readable Parquet file",
                                     message=str(exc), details={"path": str(path)})]
        else:
            raise BadInputError(path, "no such file or folder")
        results += [_label(r, label) for r in found]
    return results
