"""``guardrails replay --smoke|--benchmark|--robustness RUN_OR_DIR``: ONNX replays.

Runs one replay check (``replay.smoke``, ``replay.benchmark`` or ``replay.robustness``)
with its thresholds from the criteria file (the defaults when the file does not list
it) and the tags, registry and history given on the command line, then writes the same
verdict.json / JUnit / Markdown as the gates. The model resolves through the tag
(``--tag``, default ``mm-audiofix``; :mod:`guardrails.replay._explicit`). Exit codes: 0
pass, 1 a check failed (a missing or corrupt artifact of the tagged runs included, named
in the result), 2 bad input (unknown tag, registry not found, a tagged checkpoint
changed, usage).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from guardrails.commands._verdict import Job, Outcome, Target, VerdictCommand

__all__ = ["COMMAND", "add_parser"]

_KINDS = (("smoke", "release model on the baseline's best-validation fold"),
          ("benchmark", "tagged model on its fixed held-out set vs references"),
          ("robustness", "perturbed audio/sensor levels vs sensor-only"))


def _which(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    for kind, help_ in _KINDS:
        which.add_argument(f"--{kind}", metavar="RUN_OR_DIR", help=help_)


def _options(p: argparse.ArgumentParser) -> None:
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


def _kind(args: argparse.Namespace) -> str:
    return next(kind for kind, _ in _KINDS if getattr(args, kind))


def _target(args: argparse.Namespace) -> Target:
    from guardrails.errors import BadInputError

    target = Path(getattr(args, _kind(args)))
    if not target.is_dir():
        raise BadInputError(target, "not a run or runs folder (no such directory)")
    return Target(target, target.resolve(), (target,))


def _run(job: Job) -> Outcome:
    from guardrails.replay._explicit import replay_results

    args, kind, target = job.args, _kind(job.args), job.target.base
    overrides = {"registry": args.registry, "tag": args.tag, "baseline_tag": args.baseline_tag,
                 "history": args.history, "seed": args.seed,
                 "rebase": True if args.rebase else None}
    results = replay_results(kind, target, criteria=job.criteria, overrides=overrides)
    return Outcome(results, f"guardrails replay --{kind} {target.name}",
                   {"command": "replay", "kind": kind, "tag": args.tag,
                    "baseline_tag": args.baseline_tag,
                    "history": results[0].details.get("history") if results else None})


COMMAND = VerdictCommand(
    "replay", help="replay tagged ONNX release models on cached features (smoke, benchmark, "
                   "robustness)",
    selects="replay", target_arguments=_which, target=_target, run=_run, options=_options)
add_parser = COMMAND.add_parser
