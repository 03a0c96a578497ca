"""``guardrails audit PATH...``: Parquet artifact audits of run folders or single files.

A run folder gets every ``audit.*`` check the criteria select (schemas, ranges, keys,
referential integrity); a file gets its artifact's schema audit (the artifact is read
from the file's ``profy_artifact`` metadata, else its name). A corrupt, truncated or
empty Parquet file is a failing audit naming the file (exit 1), since finding such
files is this command's job; a path that does not exist is bad input (exit 2).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

__all__ = ["add_parser", "audit_paths"]


def _label(result, label: str | None):
    import dataclasses

    return result if label is None else dataclasses.replace(result,
                                                            name=f"{result.name} [{label}]")


def audit_paths(paths: list[Path], *, engine: str, report_dir: Path, criteria) -> list:
    """Audit each path (run folder or Parquet file); returns CheckResults."""
    from guardrails._context import RunContext
    from guardrails._registry import run_checks
    from guardrails._result import CheckResult
    from guardrails.checks.audit import audit_path
    from guardrails.errors import ArtifactError, BadInputError

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


def _run(args: argparse.Namespace) -> int:
    from guardrails._cmd_ci import finish_data_docs, report_dir_for, start_data_docs
    from guardrails._criteria import load_criteria
    from guardrails.errors import BadInputError
    from guardrails.report import emit

    started = time.perf_counter()
    paths = [Path(p) for p in args.paths]
    for path in paths:
        if not path.exists():
            raise BadInputError(path, "no such file or folder")
    criteria = load_criteria(args.criteria)
    base = paths[0] if paths[0].is_dir() else paths[0].parent
    report_dir = report_dir_for(base, args.report_dir)
    start_data_docs(args)
    results = audit_paths(paths, engine=args.engine, report_dir=report_dir, criteria=criteria)
    data_docs = finish_data_docs(args, report_dir)
    if not results:
        raise BadInputError(Path(criteria.source), "selects no audit checks")
    title = "guardrails audit " + " ".join(p.name for p in paths)
    return emit(results, title=title[:200], report_dir=report_dir, junit=args.junit,
                markdown=args.markdown, console=False if args.quiet else None,
                run_dir=paths[0].resolve() if len(paths) == 1 and paths[0].is_dir() else None,
                criteria_source=criteria.source, elapsed_s=time.perf_counter() - started,
                more_files={"data_docs": data_docs},
                extra={"command": "audit", "engine": args.engine,
                       "paths": [str(p) for p in paths]})


def add_parser(sub) -> None:
    from guardrails._cmd_ci import add_data_docs_option, add_output_options

    p = sub.add_parser("audit", help="audit Parquet artifacts (run folders or files) against "
                                     "the declared schemas")
    p.add_argument("paths", nargs="+", metavar="PATH", help="run folder(s) or Parquet file(s)")
    add_output_options(p)
    add_data_docs_option(p)
    p.set_defaults(func=_run)
