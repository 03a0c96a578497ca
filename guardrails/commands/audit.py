"""``guardrails audit PATH...``: Parquet artifact audits of run folders or single files.

What is audited: :mod:`guardrails.checks.audit_paths`. A corrupt, truncated or empty
Parquet file is a failing audit naming the file (exit 1); a path that does not exist is
bad input (exit 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from guardrails.commands._verdict import Job, Outcome, Target, VerdictCommand

__all__ = ["COMMAND", "add_parser"]


def _paths(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="run folder(s) or Parquet file(s)")


def _target(args: argparse.Namespace) -> Target:
    from guardrails.errors import BadInputError

    paths = tuple(Path(p) for p in args.paths)
    for path in paths:
        if not path.exists():
            raise BadInputError(path, "no such file or folder")
    one_run = len(paths) == 1 and paths[0].is_dir()
    return Target(paths[0] if paths[0].is_dir() else paths[0].parent,
                  paths[0].resolve() if one_run else None, paths)


def _run(job: Job) -> Outcome:
    from guardrails.checks.audit_paths import audit_paths

    paths = list(job.target.paths)
    results = audit_paths(paths, engine=job.args.engine, report_dir=job.report_dir,
                          criteria=job.criteria)
    title = "guardrails audit " + " ".join(p.name for p in paths)
    return Outcome(results, title[:200], {"command": "audit", "engine": job.args.engine,
                                          "paths": [str(p) for p in paths]})


COMMAND = VerdictCommand(
    "audit", help="audit Parquet artifacts (run folders or files) against the declared "
                  "schemas",
    selects="audit", target_arguments=_paths, target=_target, run=_run, data_docs=True)
add_parser = COMMAND.add_parser
