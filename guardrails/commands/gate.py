"""``guardrails gate RUN --baseline RUN_OR_TAG``: acceptance gates and baseline comparison.

Runs the criteria's ``gate`` and ``baseline`` checks on RUN against the baseline (a run
folder, or a semantic tag resolved in ``tags.json``: ``--registry``, else the one beside
RUN), prints the per-mode paired deltas and their bootstrap intervals, and writes the
verdict (``verdict.json``, JUnit, Markdown). Runs that cannot be compared (different
corpora, label sets or splits) get no paired F1 comparison: ``baseline.f1_delta`` fails
with the reason (printed, also under ``--quiet``, and in the verdict) and the command
exits 1 like any failed check, while ``baseline.drift`` and the gates still report -
drift between two corpora is what a user comparing them needs to see. Exit 2 stays for
bad input (no such run or tag, bad criteria). The method is in
:mod:`guardrails.gates.baseline`.
"""

from __future__ import annotations

import argparse
import sys

from guardrails.commands._verdict import Job, Outcome, VerdictCommand, run_folder

__all__ = ["COMMAND", "add_parser", "print_deltas"]


def print_deltas(results, console) -> None:
    """A table of the ``baseline.f1_delta[...]`` results: per-fold deltas and the interval."""
    from rich.table import Table

    from profy.contract.console import print_table

    rows = [r for r in results if r.name.startswith("baseline.f1_delta[") and r.details]
    if not rows:
        return
    folds = sorted({k for r in rows for k in r.details.get("per_fold_delta", {})})
    table = Table(title="paired macro-F1 deltas (candidate - baseline)", title_justify="left")
    table.add_column("mode")
    for k in folds:
        table.add_column(f"fold {k}", justify="right")
    table.add_column("delta", justify="right")
    table.add_column("CI", justify="right")
    table.add_column("status")
    for r in rows:
        d = r.details
        per = d.get("per_fold_delta", {})
        ci = d.get("ci")
        table.add_row(d.get("mode", r.name), *[f"{per[k]:+.4f}" if k in per else "–"
                                               for k in folds],
                      f"{d['delta']:+.4f}" if "delta" in d else "–",
                      f"{d.get('confidence', 0):.0%} [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "–",
                      r.status.upper())
    print_table(console, table)


def _run_and_baseline(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="candidate run folder")
    p.add_argument("--baseline", metavar="RUN_OR_TAG", required=True,
                   help="baseline run folder, or a tag in tags.json (e.g. mm-audiofix)")
    p.add_argument("--registry", metavar="FILE",
                   help="tag registry (default: tags.json beside RUN)")


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the bootstrap resampling (same seed, same interval)")


def _resolve_baseline(job: Job) -> None:
    from guardrails.gates.baseline import resolve_baseline

    job.state["baseline"] = resolve_baseline(job.args.baseline, job.target.base,
                                             job.args.registry)


def _run(job: Job) -> Outcome:
    from guardrails._context import RunContext
    from guardrails._registry import run_checks

    base_dir, tag = job.state["baseline"]
    seed = job.args.seed
    ctx = RunContext(job.target.base, report_dir=job.report_dir,
                     baseline=RunContext(base_dir, seed=seed), seed=seed)
    results = run_checks(ctx, job.criteria, categories=["gate", "baseline"],
                         raise_artifact_errors=False)
    return Outcome(results, f"guardrails gate {job.target.base.name} vs {tag or base_dir.name}",
                   {"command": "gate", "baseline": str(base_dir), "baseline_tag": tag,
                    "seed": seed})


def _after(job: Job, results: list, console) -> None:
    if console is not None:
        print_deltas(results, console)
    for refused in (r for r in results if r.details.get("refused")):
        # the one line a user must not miss, even with --quiet: no comparison was made
        print(f"guardrails: {refused.name} {refused.message}", file=sys.stderr)


COMMAND = VerdictCommand(
    "gate", help="acceptance gates + paired comparison with a baseline run or tag; exit 0 "
                 "pass, 1 fail (also: runs too different to compare; drift still reported), "
                 "2 bad input",
    selects="gate/baseline", target_arguments=_run_and_baseline, target=run_folder,
    prepare=_resolve_baseline, run=_run, after=_after, options=_options,
    output={"engine": False, "jobs": False, "quiet_help": "do not print the tables"})
add_parser = COMMAND.add_parser
