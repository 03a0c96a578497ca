"""``verdict.json``: the machine-readable verdict (schema in ``verdict.schema.json``)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from guardrails._result import CheckResult, jsonable

__all__ = ["SCHEMA_PATH", "VERDICT_KIND", "VERDICT_SCHEMA_VERSION", "load_schema",
           "stability_text", "summarize", "verdict_dict"]

VERDICT_SCHEMA_VERSION = "1"
VERDICT_KIND = "profy.guardrails.verdict"
SCHEMA_PATH = Path(__file__).with_name("verdict.schema.json")


def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every ``verdict.json`` validates against."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def summarize(results: Sequence[CheckResult]) -> dict[str, int]:
    """Counts per status: ``{"total", "pass", "fail", "warn", "skip"}``."""
    counts = Counter(r.status for r in results)
    return {"total": len(results),
            **{s: counts.get(s, 0) for s in ("pass", "fail", "warn", "skip")}}


def verdict_dict(results: Sequence[CheckResult], *, title: str, run_dir: str | Path | None,
                 report_dir: str | Path, criteria_source: str | None,
                 elapsed_s: float | None, files: Mapping[str, str],
                 extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """The verdict document: overall outcome, one entry per check, timings, extras.

    ``verdict`` is ``"fail"`` when any check with severity ``error`` failed; failed
    warnings and skipped checks are listed but never fail it.
    """
    from guardrails import __version__

    failed = any(r.fails_verdict for r in results)
    checks_s = [r.duration_s for r in results if r.duration_s is not None]
    return jsonable({
        "schema_version": VERDICT_SCHEMA_VERSION,
        "kind": VERDICT_KIND,
        "title": title,
        "verdict": "fail" if failed else "pass",
        "exit_code": 1 if failed else 0,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "guardrails_version": __version__,
        "run_dir": None if run_dir is None else str(run_dir),
        "report_dir": str(report_dir),
        "criteria_source": criteria_source,
        "summary": summarize(results),
        "timings": {"total_s": elapsed_s,
                    "checks_s": round(sum(checks_s), 6) if checks_s else None},
        "files": dict(files),
        "checks": [r.to_dict() for r in results],
        "extra": dict(extra or {}),
    })


def stability_text(result: CheckResult) -> str:
    """The bootstrap pass probability of a threshold gate as ``"87%"``, else ``""``.

    Gates put it in ``details["stability"]``: the predicted probability that the gate
    passes on a fresh evaluation (:mod:`guardrails.gates._stability`); a fragile pass
    shows a low figure beside its PASS.
    """
    value = result.details.get("stability") if isinstance(result.details, dict) else None
    if isinstance(value, dict):  # some gates report {"pass_probability": p, ...}
        value = value.get("pass_probability")
    return f"{value:.0%}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
