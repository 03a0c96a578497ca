"""``guardrails replay --smoke|--benchmark|--robustness RUN_OR_DIR``: ONNX replays.

Runs one replay check (``replay.smoke``, ``replay.benchmark`` or ``replay.robustness``)
with its thresholds from the criteria file (the defaults when the file does not list
it) and the tags, registry and history given on the command line, then writes the same
verdict.json / JUnit / Markdown as the gates. Unlike ``guardrails ci RUN`` (which
replays RUN's own exported models, the candidate), an explicit replay resolves its model
through the tag (``--tag``, default ``mm-audiofix``): the scheduled replay of a release.
A check the criteria mark ``required`` fails instead of skipping (e.g. a first
benchmark, which has no reference to compare yet). Exit codes: 0 pass, 1 a check failed
(a missing or corrupt artifact of the tagged runs included, named in the result),
2 bad input (unknown tag, registry not found, a tagged checkpoint changed, usage).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

__all__ = ["add_parser", "replay_results"]

_KINDS = {"smoke": "replay.smoke", "benchmark": "replay.benchmark",
          "robustness": "replay.robustness"}


def replay_results(kind: str, target: Path, *, criteria, overrides: dict) -> list:
    """Run one replay check on ``target`` (a runs folder or a run); returns CheckResults.

    Unlike ``run_checks`` the check's ``applies`` is not consulted: an explicit replay
    that cannot find its tag is bad input, not a skip. The model is the tag's
    (``ctx.replay_by_tag``), not ``target``'s own export.
    """
    from guardrails._context import RunContext
    from guardrails._registry import _as_list, load_all_checks, require
    from guardrails._result import CheckResult
    from guardrails.errors import ArtifactError

    name = _KINDS[kind]
    spec = load_all_checks()[name]
    params = {**spec.params, **criteria.checks.get(name, {})}
    params.update({k: v for k, v in overrides.items() if k in spec.params and v is not None})
    severity = criteria.severities.get(name, "error")
    ctx = RunContext(target, replay_by_tag=True)
    try:
        results = _as_list(name, spec.func(ctx, **params))
    except ArtifactError as exc:  # evidence missing or corrupt: a failing replay, named
        results = [CheckResult(name, "replay", False, observed="missing evidence",
                               expected="readable artifact", message=str(exc),
                               details={"path": str(exc.path)})]
    results = require(results, required=name in getattr(criteria, "required", ()))
    return [dataclasses.replace(r, severity=severity) for r in results]


def _run(args: argparse.Namespace) -> int:
    from guardrails._cmd_ci import report_dir_for
    from guardrails._criteria import load_criteria
    from guardrails.errors import BadInputError
    from guardrails.report import emit

    started = time.perf_counter()
    kind = next(k for k in _KINDS if getattr(args, k))
    target = Path(getattr(args, kind))
    if not target.is_dir():
        raise BadInputError(target, "not a run or runs folder (no such directory)")
    criteria = load_criteria(args.criteria)
    report_dir = report_dir_for(target, args.report_dir)
    overrides = {"registry": args.registry, "tag": args.tag, "baseline_tag": args.baseline_tag,
                 "history": args.history, "seed": args.seed,
                 "rebase": True if args.rebase else None}
    results = replay_results(kind, target, criteria=criteria, overrides=overrides)
    return emit(results, title=f"guardrails replay --{kind} {target.name}",
                report_dir=report_dir, junit=args.junit, markdown=args.markdown,
                console=False if args.quiet else None, run_dir=target.resolve(),
                criteria_source=criteria.source, elapsed_s=time.perf_counter() - started,
                extra={"command": "replay", "kind": kind, "tag": args.tag,
                       "baseline_tag": args.baseline_tag,
                       "history": results[0].details.get("history") if results else None})


def add_parser(sub) -> None:
    from guardrails._cmd_ci import add_output_options

    p = sub.add_parser("replay", help="replay tagged ONNX release models on cached features "
                                      "(smoke, benchmark, robustness)")
    which = p.add_mutually_exclusive_group(required=True)
    for kind, help_ in (("smoke", "release model on the baseline's best-validation fold"),
                        ("benchmark", "tagged model on its fixed held-out set vs references"),
                        ("robustness", "perturbed audio/sensor levels vs sensor-only")):
        which.add_argument(f"--{kind}", metavar="RUN_OR_DIR", help=help_)
    p.add_argument("--tag", default=None, help="release model tag (default: mm-audiofix)")
    p.add_argument("--baseline-tag", default=None,
                   help="sensor-only baseline tag (default: sensor-v1)")
    p.add_argument("--registry", default=None,
                   help="tags.json (default: in RUN_OR_DIR, else beside it)")
    p.add_argument("--history", default=None,
                   help="history Parquet (default: replay_history.parquet beside the registry)")
    p.add_argument("--seed", type=int, default=None, help="perturbation seed (robustness)")
    p.add_argument("--rebase", action="store_true",
                   help="benchmark: store this replay as the new reference")
    add_output_options(p)
    p.set_defaults(func=_run)
