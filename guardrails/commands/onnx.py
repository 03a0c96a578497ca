"""``guardrails onnx MODEL_OR_RUN``: the ONNX checks of one model file or a run's onnx/.

A model file must sit in ``RUN/onnx/`` (its metadata is checked against the run's config;
:func:`guardrails._targets.onnx_target`). Exit 0 pass, 1 a check failed (parity, latency
limit, int8 agreement), 2 bad input: a missing file, a corrupt or truncated model, or
metadata that disagrees with the run - one line naming the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from guardrails.commands._verdict import Job, Outcome, Target, VerdictCommand

__all__ = ["COMMAND", "add_parser"]


def _model_or_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="MODEL_OR_RUN", help="RUN/onnx/<mode>_fold<K>.onnx or RUN")


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--skip-quantization", action="store_true",
                   help="do not run the int8 quantization check")


def _target(args: argparse.Namespace) -> Target:
    from guardrails._targets import onnx_target

    run, models = onnx_target(Path(args.target))
    return Target(run, run.resolve(), tuple(models or ()))


def _run(job: Job) -> Outcome:
    from guardrails._context import RunContext
    from guardrails._registry import run_checks

    models = list(job.target.paths) or None  # the checks cover only these when set
    ctx = RunContext(job.target.base, report_dir=job.report_dir, engine=job.args.engine,
                     onnx_models=models)
    names = None if not job.args.skip_quantization else [
        n for n in job.criteria.checks if n != "onnx.quantization"]
    results = run_checks(ctx, job.criteria, categories=["onnx"], names=names,
                         raise_artifact_errors=True)
    return Outcome(results, f"guardrails onnx {Path(job.args.target).name}",
                   {"command": "onnx", "models": [str(m) for m in models or []]})


COMMAND = VerdictCommand(
    "onnx", help="ONNX checker, signature, parity vs references, latency, int8 "
                 "(onnxruntime only)",
    selects="onnx", target_arguments=_model_or_run, target=_target, run=_run,
    options=_options)
add_parser = COMMAND.add_parser
