"""``gate.results_match_predictions``: the published metrics are the predictions' metrics.

Every fold's macro F1, weighted F1 and accuracy in ``complete_results.json`` is
recomputed from ``predictions.parquet`` (held-out rows of that mode and fold) with
the gates' own numpy metrics, and so are the per-mode means and stds over folds (std
with ``ddof = STD_DDOF``, ``profy.contract.schemas``; the file's own ``std_ddof`` must declare
the same convention). A disagreement beyond ``tolerance`` fails, naming the mode, fold
(or statistic), metric and both values. When the stored
"macro F1" equals the recomputed *weighted* F1 instead, the message says so: the
old model's results reported weighted F1 as macro.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from guardrails._context import RunContext
from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.gates._evidence import (
    RESULTS,
    STD_DDOF,
    expected_folds,
    expected_modes,
    recompute,
    recompute_or_say,
)
from profy.contract.layout import PREDICTIONS_FILE

__all__ = ["recompute", "results_match_predictions"]

_METRICS = ("macro_f1", "weighted_f1", "accuracy")


def _num(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _compare(stored: Any, fresh: float, *, where: str, tolerance: float,
             weighted: float | None = None) -> str | None:
    value = _num(stored)
    if value is None or not math.isfinite(value):
        return f"{where}: stored {stored!r} is not a finite number (recomputed {fresh:.6f})"
    if abs(value - fresh) <= tolerance:
        return None
    hint = ""
    if weighted is not None and abs(value - weighted) <= tolerance:
        hint = " — it equals the WEIGHTED F1: weighted F1 reported as macro"
    return f"{where}: complete_results.json {value:.6f} != predictions {fresh:.6f}{hint}"


@register("gate.results_match_predictions", category="gate", params={"tolerance": 1e-6},
          description="complete_results.json per-fold/mean/std metrics equal those "
                      "recomputed from predictions.parquet (macro F1 is macro)")
def results_match_predictions(ctx: RunContext, *, tolerance: float) -> CheckResult:
    """Recompute every stored fold metric from the predictions and compare."""
    name = "gate.results_match_predictions"
    data = ctx.json(RESULTS)
    preds = ctx.frame(PREDICTIONS_FILE)
    modes_block = data.get("modes") if isinstance(data, dict) else None
    modes_block = modes_block if isinstance(modes_block, dict) else {}
    problems: list[str] = []
    table: dict[str, dict[str, Any]] = {}
    compared = 0
    declared = data.get("std_ddof") if isinstance(data, dict) else None
    if not (isinstance(declared, int) and not isinstance(declared, bool)
            and declared == STD_DDOF):
        problems.append(f"{RESULTS} std_ddof {declared!r} != {STD_DDOF} "
                        "(profy.contract.schemas.STD_DDOF, the convention every std is "
                        "recomputed with)")
    for mode in expected_modes(ctx):
        block = modes_block.get(mode)
        if not isinstance(block, dict):
            problems.append(f"{mode}: mode missing from {RESULTS}")
            continue
        folds = block.get("folds") if isinstance(block.get("folds"), dict) else {}
        fresh_by_fold: dict[int, dict[str, float]] = {}
        for k in expected_folds(ctx):
            fresh = recompute_or_say(preds, mode, k, problems)
            if fresh is None:
                continue
            stored = folds.get(str(k))
            if not isinstance(stored, dict):
                problems.append(f"{mode}: fold {k} missing from {RESULTS}")
                continue
            fresh_by_fold[k] = fresh
            table[f"{mode}/{k}"] = {"stored_macro_f1": stored.get("macro_f1"), **fresh}
            for metric in _METRICS:
                compared += 1
                issue = _compare(stored.get(metric), fresh[metric],
                                 where=f"{mode} fold {k} {metric}", tolerance=tolerance,
                                 weighted=fresh["weighted_f1"] if metric == "macro_f1" else None)
                if issue:
                    problems.append(issue)
        if fresh_by_fold and len(fresh_by_fold) == len(expected_folds(ctx)):
            for stat, fn in (("mean", np.mean),
                             ("std", lambda v: np.std(v, ddof=STD_DDOF))):
                stat_block = block.get(stat) if isinstance(block.get(stat), dict) else {}
                for metric in _METRICS:
                    compared += 1
                    fresh_stat = float(fn([fresh_by_fold[k][metric]
                                           for k in sorted(fresh_by_fold)]))
                    issue = _compare(stat_block.get(metric), fresh_stat,
                                     where=f"{mode} {stat} {metric}", tolerance=tolerance)
                    if issue:
                        problems.append(issue)
    passed = not problems
    message = (f"{compared} stored metrics equal their recomputation from predictions.parquet"
               if passed else "; ".join(problems[:4]) + (f" (+{len(problems) - 4} more)"
                                                          if len(problems) > 4 else ""))
    return CheckResult(name, "gate", passed,
                       observed={"mismatches": len(problems), "compared": compared},
                       expected={"mismatches": 0, "tolerance": tolerance}, message=message,
                       details={"problems": problems, "per_fold": table})
