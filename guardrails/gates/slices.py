"""Per-slice metrics and calibration of the released probabilities.

``gate.slices``: held-out takes of every mode (pooled over folds) sliced by ``piece``,
``piece_kind`` (scale/arpeggio) and ``label``. A piece or piece-kind slice scores its
macro F1 over both classes; a label slice scores that class's F1 over the mode's
takes (macro F1 inside a one-class slice means nothing). The worst slice with at
least ``min_samples`` takes is shown; the gate (on ``mode``, the released model)
requires its F1 ``>= min_worst_f1`` (the default criteria list it as a warning).

``gate.calibration``: expected calibration error of P(pro) per mode, pooled over folds,
with ``n_bins`` equal-width bins and a reliability table (count, mean predicted,
fraction pro, gap per non-empty bin) in the details; the gate requires ``mode``'s
ECE ``<= max_ece``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.gates._evidence import MODES, expected_modes, held_out
from guardrails.gates._metrics import counts, ece_table, macro_f1, macro_f1_from_counts

__all__ = ["calibration", "slice_table", "slices"]

DIMENSIONS = ("piece", "piece_kind", "label")
_CLASS = {0: "amateur", 1: "pro"}


def slice_table(rows) -> list[dict[str, Any]]:
    """One dict per slice: ``dimension``, ``slice``, ``n``, ``accuracy``, ``f1``."""
    out = []
    y, p = rows["label"].to_numpy(), rows["prediction"].to_numpy()
    for dim in ("piece", "piece_kind"):
        for value, g in rows.groupby(dim, sort=True):
            gy, gp = g["label"].to_numpy(), g["prediction"].to_numpy()
            out.append({"dimension": dim, "slice": str(value), "n": int(len(g)),
                        "accuracy": float(np.mean(gy == gp)), "f1": macro_f1(gy, gp)})
    c = counts(y, p)
    for cls in (0, 1):
        mask = y == cls
        if not mask.any():
            continue
        # one-vs-rest F1 of this class over all the mode's takes
        tp = c[3] if cls else c[0]
        f1 = 2 * tp / (2 * tp + c[1] + c[2]) if (2 * tp + c[1] + c[2]) else 0.0
        out.append({"dimension": "label", "slice": _CLASS[cls], "n": int(mask.sum()),
                    "accuracy": float(np.mean(p[mask] == cls)), "f1": float(f1)})
    return out


@register("gate.slices", category="gate",
          params={"mode": "multimodal", "min_worst_f1": 0.5, "min_samples": 5},
          choices={"mode": MODES},
          description="per-slice F1 (piece, piece kind, label); worst slice >= min_worst_f1")
def slices(ctx, *, mode: str, min_worst_f1: float, min_samples: int) -> CheckResult:
    """Slice metrics for every mode, gated on the worst slice of ``mode``."""
    frame = held_out(ctx)
    per_mode: dict[str, Any] = {}
    worst_by_mode: dict[str, Any] = {}
    for m in expected_modes(ctx):
        rows = frame[frame["mode"] == m]
        if rows.empty:
            continue
        table = slice_table(rows)
        per_mode[m] = table
        big = [s for s in table if s["n"] >= min_samples] or table
        worst = min(big, key=lambda s: (s["f1"] if np.isfinite(s["f1"]) else -1.0, -s["n"]))
        worst_by_mode[m] = worst
    worst = worst_by_mode.get(mode)
    expected = {"worst_f1": f">= {min_worst_f1}", "min_samples": min_samples}
    if worst is None:
        return CheckResult("gate.slices", "gate", False, observed=None, expected=expected,
                           message=f"{mode}: no held-out predictions to slice",
                           details={"per_mode": per_mode})
    ok = bool(np.isfinite(worst["f1"]) and worst["f1"] >= min_worst_f1)
    text = (f"{mode}: worst slice {worst['dimension']}={worst['slice']} "
            f"F1 {worst['f1']:.3f} (n={worst['n']})")
    return CheckResult("gate.slices", "gate", ok,
                       observed={"worst": f"{worst['dimension']}={worst['slice']}",
                                 "f1": round(worst["f1"], 4), "n": worst["n"]},
                       expected=expected,
                       message=text + ("" if ok else f" < {min_worst_f1}"),
                       details={"worst_by_mode": worst_by_mode, "per_mode": per_mode,
                                "metric": "macro F1 (piece, piece_kind); class F1 (label)"})


@register("gate.calibration", category="gate",
          params={"mode": "multimodal", "max_ece": 0.15, "n_bins": 10},
          choices={"mode": MODES},
          description="expected calibration error of P(pro) per mode + reliability table")
def calibration(ctx, *, mode: str, max_ece: float, n_bins: int) -> CheckResult:
    """ECE and reliability table per mode; gate on ``mode``'s ECE."""
    frame = held_out(ctx)
    per_mode: dict[str, Any] = {}
    for m in expected_modes(ctx):
        rows = frame[frame["mode"] == m]
        if rows.empty:
            continue
        prob = rows["probability"].to_numpy(dtype=np.float64)
        if not np.isfinite(prob).all() or (prob < 0).any() or (prob > 1).any():
            per_mode[m] = {"ece": float("nan"), "problem": "probabilities outside [0, 1] or NaN"}
            continue
        ece, table = ece_table(rows["label"].to_numpy(), prob, n_bins)
        per_mode[m] = {"ece": ece, "n": int(len(rows)), "reliability": table,
                       "macro_f1": float(macro_f1_from_counts(
                           counts(rows["label"].to_numpy(), rows["prediction"].to_numpy())))}
    ece = (per_mode.get(mode) or {}).get("ece")
    ok = ece is not None and bool(np.isfinite(ece)) and ece <= max_ece
    if ece is None:
        message = f"{mode}: no held-out predictions"
    elif not np.isfinite(ece):
        message = f"{mode}: ECE is not computable ({per_mode[mode].get('problem')})"
    else:
        message = f"{mode}: ECE {ece:.4f} {'<=' if ok else '>'} {max_ece} ({n_bins} bins)"
    return CheckResult("gate.calibration", "gate", ok,
                       observed={m: round(v["ece"], 4) for m, v in per_mode.items()},
                       expected={mode: f"<= {max_ece}"}, message=message,
                       details={"per_mode": per_mode, "n_bins": n_bins,
                                "method": "ECE: equal-width bins of P(pro), pooled folds"})
