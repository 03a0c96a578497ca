"""``data.quarantine``: how much of the corpus a run left out, and that it really did.

``profy train`` writes ``quarantine.json`` (format: :mod:`profy.contract.quarantine`) into every
run, listing each take it left out (``--skip-bad``) with the rule and observed value.
The check recomputes the figures from the run's own artifacts rather than trusting the
file's ``count``: the quarantined fraction is ``left out / (left out + takes in
splits.parquet)``, and it fails when

- the fraction is above ``max_fraction`` (default 5%: leaving out more is a data
  problem to fix, not to hide);
- a quarantined take still appears in the splits or predictions (it was trained or
  scored on after all);
- the file is missing or malformed (missing evidence is a failure, never a pass).

Whether each rule entry is justified under the gate's thresholds is judged by
``data.audio_stats`` (rule ``quarantine.justified``), which holds those thresholds.
"""

from __future__ import annotations

from typing import Any

from guardrails._context import RunContext
from guardrails._registry import register
from guardrails._result import CheckResult
from profy.contract.layout import PREDICTIONS_FILE, QUARANTINE_FILE, SPLITS_FILE

__all__ = ["quarantine"]

_FIELDS = ("sample_id", "rule", "observed", "expected")


def _entries(doc: Any) -> list[dict[str, Any]] | str:
    """The takes of a ``quarantine.json`` object, or what is wrong with it."""
    if not isinstance(doc, dict) or not isinstance(doc.get("takes"), list):
        return "not a quarantine record (no 'takes' list)"
    takes = doc["takes"]
    bad = [i for i, t in enumerate(takes)
           if not isinstance(t, dict) or any(f not in t for f in _FIELDS)]
    if bad:
        return f"entry {bad[0]} lacks one of {', '.join(_FIELDS)}"
    ids = [str(t["sample_id"]) for t in takes]
    if len(set(ids)) != len(ids):
        return "a take is listed twice"
    if doc.get("count") != len(takes):
        return f"'count' says {doc.get('count')!r} but {len(takes)} take(s) are listed"
    return takes


@register("data.quarantine", category="data", params={"max_fraction": 0.05},
          description="quarantine.json: takes left out (--skip-bad) <= max_fraction of the "
                      "corpus, none of them in splits or predictions")
def quarantine(ctx: RunContext, *, max_fraction: float) -> CheckResult:
    """Recompute the quarantined fraction from ``quarantine.json`` and ``splits.parquet``."""
    name = "data.quarantine"
    expected = {"fraction": f"<= {max_fraction}", "in_splits_or_predictions": 0}
    if not ctx.exists(QUARANTINE_FILE):
        return CheckResult(name, "data", False, observed=None, expected=expected,
                           message=f"missing evidence: {ctx.run_dir / QUARANTINE_FILE} "
                                   "(`profy train` writes it into every run; retrain)")
    path = ctx.path(QUARANTINE_FILE)
    takes = _entries(ctx.json(QUARANTINE_FILE))
    if isinstance(takes, str):
        return CheckResult(name, "data", False, observed=None, expected=expected,
                           message=f"{path}: {takes}", details={"path": str(path)})
    left_out = {str(t["sample_id"]) for t in takes}
    used = set(ctx.table(SPLITS_FILE).column("sample_id").to_pylist())
    scored = set(ctx.table(PREDICTIONS_FILE).column("sample_id").to_pylist())
    leaked = sorted(left_out & (used | scored))
    total = len(left_out) + len(used)
    fraction = len(left_out) / total if total else 0.0
    by_rule: dict[str, int] = {}
    for t in takes:
        by_rule[str(t["rule"])] = by_rule.get(str(t["rule"]), 0) + 1
    passed = fraction <= max_fraction and not leaked
    observed = {"quarantined": len(left_out), "takes": total, "fraction": round(fraction, 4),
                "in_splits_or_predictions": len(leaked)}
    if leaked:
        message = (f"{len(leaked)} quarantined take(s) were trained or scored on anyway: "
                   f"{', '.join(leaked[:5])}")
    else:
        rules = ", ".join(f"{rule} {n}" for rule, n in sorted(by_rule.items())) or "none"
        verb = "<=" if fraction <= max_fraction else ">"
        message = (f"{len(left_out)} of {total} take(s) quarantined ({fraction:.1%} {verb} "
                   f"{max_fraction:.0%}); by rule: {rules}")
    return CheckResult(name, "data", passed, observed=observed, expected=expected,
                       message=message,
                       details={"path": str(path), "takes": takes, "leaked": leaked})
