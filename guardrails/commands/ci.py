"""``guardrails ci RUN``: every registered check the criteria select, one verdict for CI.

The default criteria are the release gate: evidence they mark ``required`` (the ONNX
checks, the smoke replay) fails when absent ("missing evidence: ... run `profy export
RUN`"); ``--criteria dev`` is the pre-export inner-loop profile where it skips. The
replays run RUN's own exported models (the candidate), with the baseline resolved
through the tag registry (``--registry``, else ``tags.json`` beside RUN). A missing or
corrupt artifact is a failing check here, never a crash or a pass.
"""

from __future__ import annotations

import argparse

from guardrails.commands._verdict import (
    Job,
    Outcome,
    VerdictCommand,
    run_argument,
    run_folder,
)

__all__ = ["COMMAND", "add_parser", "category_outcome", "point_replays"]


def point_replays(job: Job) -> None:
    """``--history`` and ``--registry`` replace the criteria's settings of every check
    declaring them (replays append history there; their baseline tags resolve there)."""
    for option in ("history", "registry"):
        value = getattr(job.args, option, None)
        if value:
            for params in job.criteria.checks.values():
                if option in params:
                    params[option] = str(value)


def category_outcome(job: Job, *, command: str, categories: list[str] | None,
                     raise_artifact_errors: bool) -> Outcome:
    """The criteria's checks of ``categories`` on the run (with ``--baseline`` when given)."""
    from guardrails._context import RunContext
    from guardrails._registry import run_checks

    args = job.args
    baseline = None
    if getattr(args, "baseline", None):  # a run folder or a semantic tag (tags.json)
        from guardrails.gates.baseline import resolve_baseline

        baseline_dir, _ = resolve_baseline(args.baseline, job.target.base,
                                           getattr(args, "registry", None))
        baseline = RunContext(baseline_dir)
    ctx = RunContext(job.target.base, report_dir=job.report_dir, engine=args.engine,
                     baseline=baseline, seed=getattr(args, "seed", 0))
    results = run_checks(ctx, job.criteria, categories=categories,
                         raise_artifact_errors=raise_artifact_errors,
                         jobs=getattr(args, "jobs", 1))
    return Outcome(results, f"guardrails {command} {job.target.base.name}",
                   {"command": command, "engine": args.engine, "categories": categories,
                    "baseline": None if baseline is None else str(baseline.run_dir)})


def _options(p: argparse.ArgumentParser) -> None:
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


COMMAND = VerdictCommand(
    "ci", help="run every applicable check on a run; exit 0 pass, 1 fail, 2 bad input",
    selects="any", target_arguments=run_argument, target=run_folder, prepare=point_replays,
    run=lambda job: category_outcome(job, command="ci", categories=None,
                                     raise_artifact_errors=False),
    options=_options, data_docs=True)
add_parser = COMMAND.add_parser
