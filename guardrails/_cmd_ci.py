"""``guardrails ci RUN``: every registered check the criteria select, one verdict for CI.

The default criteria are the release gate: evidence they mark ``required`` (the ONNX
checks, the smoke replay) fails when absent ("missing evidence: ... run `profy export
RUN`"); ``--criteria dev`` is the pre-export inner-loop profile where it skips. The
replays run RUN's own exported models (the candidate), with the baseline resolved
through the tag registry (``--registry``, else ``tags.json`` beside RUN).

Also holds what ``data`` and ``audit`` share: the report-folder rule (``RUN/guardrails``
when writable, else the user must pass ``--report-dir``; run folders may be mounted
read-only) and the common output options.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

__all__ = ["add_data_docs_option", "add_output_options", "add_parser", "finish_data_docs",
           "report_dir_for", "run_category_command", "start_data_docs"]


def add_output_options(p: argparse.ArgumentParser) -> None:
    """``--criteria --report-dir --junit --markdown --engine --quiet --jobs``."""
    p.add_argument("--criteria", metavar="FILE_OR_PROFILE",
                   help="criteria YAML selecting checks and thresholds, or a named profile: "
                        "default (the release gate: ONNX checks and smoke replay required) "
                        "or dev (pre-export inner loop: absent evidence skips)")
    p.add_argument("--report-dir", metavar="DIR",
                   help="where verdict.json, junit.xml, summary.md and GX results go "
                        "(default: RUN/guardrails)")
    p.add_argument("--junit", metavar="FILE", help="also write the JUnit XML here")
    p.add_argument("--markdown", metavar="FILE", help="also write the Markdown summary here")
    p.add_argument("--engine", choices=("pandas", "spark"), default="pandas",
                   help="engine for the GX suites and audits (default: pandas)")
    p.add_argument("--quiet", action="store_true", help="do not print the verdict table")
    p.add_argument("--jobs", type=int, default=2, metavar="N",
                   help="2 (default) overlaps table checks with ONNX inference, then runs the "
                        "timed checks alone; 1 runs every check in turn")


def add_data_docs_option(p: argparse.ArgumentParser) -> None:
    """``--data-docs``, for the commands that run GX suites (data, audit, ci)."""
    p.add_argument("--data-docs", action="store_true",
                   help="also render GX's Data Docs page of every suite into "
                        "REPORT_DIR/gx/docs/ (index.html links them)")


def start_data_docs(args: argparse.Namespace) -> None:
    """Turn page rendering on before the checks run (a forked lane inherits it)."""
    if getattr(args, "data_docs", False):
        from guardrails.checks._gx import enable_data_docs

        enable_data_docs()


def finish_data_docs(args: argparse.Namespace, report_dir: Path) -> str | None:
    """Link the pages from ``index.html``; its path (for the verdict), or None."""
    if not getattr(args, "data_docs", False):
        return None
    from guardrails.checks._gx import enable_data_docs
    from guardrails.checks._gx_docs import write_index

    enable_data_docs(False)  # one command's setting, not the process's (tests call main twice)
    index = write_index(report_dir)
    return None if index is None else str(index)


def report_dir_for(default_base: Path, explicit: str | None) -> Path:
    """The report folder: ``--report-dir`` or ``default_base/guardrails``, checked writable."""
    from guardrails.report._emit import writable_dir

    if explicit:
        return writable_dir(explicit)
    return writable_dir(Path(default_base) / "guardrails",
                        hint="the run folder may be read-only: pass --report-dir DIR")


def run_category_command(args: argparse.Namespace, *, command: str,
                         categories: list[str] | None, raise_artifact_errors: bool) -> int:
    """Run the criteria's checks of ``categories`` on ``args.run`` and emit the verdict."""
    from guardrails._context import RunContext
    from guardrails._criteria import load_criteria
    from guardrails._registry import run_checks
    from guardrails.errors import BadInputError
    from guardrails.report import emit

    started = time.perf_counter()
    run = Path(args.run)
    if not run.is_dir():
        raise BadInputError(run, "not a run folder (no such directory)")
    criteria = load_criteria(args.criteria)
    if getattr(args, "history", None):  # replays append here, not beside a read-only registry
        for params in criteria.checks.values():
            if "history" in params:
                params["history"] = str(args.history)
    if getattr(args, "registry", None):  # the replays' baseline tags resolve here too
        for params in criteria.checks.values():
            if "registry" in params:
                params["registry"] = str(args.registry)
    report_dir = report_dir_for(run, args.report_dir)
    baseline = None
    if getattr(args, "baseline", None):  # a run folder or a semantic tag (tags.json)
        from guardrails.gates.baseline import resolve_baseline

        baseline_dir, _ = resolve_baseline(args.baseline, run, getattr(args, "registry", None))
        baseline = RunContext(baseline_dir)
    ctx = RunContext(run, report_dir=report_dir, engine=args.engine, baseline=baseline,
                     seed=getattr(args, "seed", 0))
    start_data_docs(args)
    results = run_checks(ctx, criteria, categories=categories,
                         raise_artifact_errors=raise_artifact_errors,
                         jobs=getattr(args, "jobs", 1))
    data_docs = finish_data_docs(args, report_dir)
    if not results:
        raise BadInputError(Path(criteria.source),
                            f"selects no {'/'.join(categories or ['any'])} checks")
    return emit(results, title=f"guardrails {command} {run.name}", report_dir=report_dir,
                junit=args.junit, markdown=args.markdown,
                console=False if args.quiet else None, run_dir=run.resolve(),
                criteria_source=criteria.source, elapsed_s=time.perf_counter() - started,
                more_files={"data_docs": data_docs},
                extra={"command": command, "engine": args.engine,
                       "categories": categories,
                       "baseline": None if baseline is None else str(baseline.run_dir)})


def _run(args: argparse.Namespace) -> int:
    # A missing or corrupt artifact is a failing check here, never a crash or a pass.
    return run_category_command(args, command="ci", categories=None,
                                raise_artifact_errors=False)


def add_parser(sub) -> None:
    p = sub.add_parser("ci", help="run every applicable check on a run; exit 0 pass, 1 fail, "
                                  "2 bad input")
    p.add_argument("run", metavar="RUN", help="run folder (runs/experiment_...)")
    add_output_options(p)
    add_data_docs_option(p)
    p.add_argument("--baseline", metavar="RUN_OR_TAG",
                   help="run folder or semantic tag to compare against")
    p.add_argument("--registry", metavar="FILE",
                   help="tag registry for --baseline and the replays' baseline tag "
                        "(default: RUN/../tags.json)")
    p.add_argument("--seed", type=int, default=0, help="seed for resampling checks (default 0)")
    p.add_argument("--history", metavar="FILE",
                   help="replay history Parquet the replay checks append to (default: "
                        "replay_history.parquet beside tags.json; give one when runs/ is "
                        "mounted read-only)")
    p.set_defaults(func=_run)
