"""``guardrails onnx MODEL_OR_RUN``: the ONNX checks of one model file or a run's onnx/.

A model file must sit in ``RUN/onnx/`` (its metadata is checked against the run's config).
Exit 0 pass, 1 a check failed (parity, latency limit, int8 agreement), 2 bad input: a
missing file, a corrupt or truncated model, or metadata that disagrees with the run —
one line naming the file.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

__all__ = ["add_parser", "resolve_target"]


def resolve_target(target: Path) -> tuple[Path, list[Path] | None]:
    """``(run_dir, models or None for all)`` of a run folder or a ``RUN/onnx/*.onnx`` file.

    Raises:
        BadInputError: no such path, or a model outside a run folder's ``onnx/``.
    """
    from guardrails.errors import BadInputError

    if target.is_dir():
        if not (target / "onnx").is_dir():
            raise BadInputError(target / "onnx", "the run has no ONNX models (run "
                                                 "`profy export RUN`)")
        return target, None
    if not target.exists():
        raise BadInputError(target, "no such ONNX model or run folder")
    run = target.resolve().parent.parent
    if target.resolve().parent.name != "onnx" or not (run / "config.yaml").is_file():
        raise BadInputError(target, "an ONNX model must sit in RUN/onnx/ beside its run's "
                                    "config.yaml")
    return run, [target.resolve()]


def _run(args: argparse.Namespace) -> int:
    import guardrails.checks  # noqa: F401  (registers the onnx checks)
    from guardrails._cmd_ci import report_dir_for
    from guardrails._context import RunContext
    from guardrails._criteria import load_criteria
    from guardrails._registry import run_checks
    from guardrails.errors import BadInputError
    from guardrails.report import emit

    started = time.perf_counter()
    run, models = resolve_target(Path(args.target))
    criteria = load_criteria(args.criteria)
    report_dir = report_dir_for(run, args.report_dir)
    ctx = RunContext(run, report_dir=report_dir, engine=args.engine)
    ctx.onnx_models = models  # the checks cover only these when set
    names = None if not args.skip_quantization else [
        n for n in criteria.checks if n != "onnx.quantization"]
    results = run_checks(ctx, criteria, categories=["onnx"], names=names,
                         raise_artifact_errors=True)
    if not results:
        raise BadInputError(Path(criteria.source), "selects no onnx checks")
    return emit(results, title=f"guardrails onnx {Path(args.target).name}",
                report_dir=report_dir, junit=args.junit, markdown=args.markdown,
                console=False if args.quiet else None, run_dir=run.resolve(),
                criteria_source=criteria.source, elapsed_s=time.perf_counter() - started,
                extra={"command": "onnx", "models": [str(m) for m in models or []]})


def add_parser(sub) -> None:
    from guardrails._cmd_ci import add_output_options

    p = sub.add_parser("onnx", help="ONNX checker, signature, parity vs references, latency, "
                                    "int8 (onnxruntime only)")
    p.add_argument("target", metavar="MODEL_OR_RUN", help="RUN/onnx/<mode>_fold<K>.onnx or RUN")
    add_output_options(p)
    p.add_argument("--skip-quantization", action="store_true",
                   help="do not run the int8 quantization check")
    p.set_defaults(func=_run)
