"""``CheckResult``: what every check returns. A failed check is data, not an exception."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CATEGORIES", "SEVERITIES", "CheckResult", "jsonable"]

SEVERITIES = ("error", "warning")  # error: a failure fails the verdict; warning: reported only
CATEGORIES = ("data", "audit", "onnx", "gate", "baseline", "replay")


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, tuples and non-finite floats made JSON-safe.

    NaN and infinities become the strings ``"nan"``, ``"inf"``, ``"-inf"`` so that a
    verdict file shows them instead of silently writing invalid JSON.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome with its evidence.

    Attributes:
        name: registered check name, e.g. ``"data.audio_stats"``.
        category: one of :data:`CATEGORIES`.
        passed: the verdict; ``False`` for a failure (also when evidence is missing).
        severity: ``"error"`` (a failure fails the run) or ``"warning"``.
        observed: what was measured (a number, a dict of numbers, a short string).
        expected: the threshold or rule it was held against.
        message: one readable line saying why it passed or failed.
        details: further evidence (per-fold tables, offending ids, file paths).
        skipped: the check did not apply to this run (e.g. no ONNX models); never a failure.
        duration_s: wall time of the check (set by ``run_checks``; a check returning
            several results shares its time evenly among them).
    """

    name: str
    category: str
    passed: bool
    severity: str = "error"
    observed: Any = None
    expected: Any = None
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False
    duration_s: float | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")
        if self.category not in CATEGORIES:
            raise ValueError(f"category {self.category!r} is not one of {CATEGORIES}")

    @property
    def status(self) -> str:
        """``"skip"``, ``"pass"``, ``"warn"`` (failed warning) or ``"fail"``."""
        if self.skipped:
            return "skip"
        if self.passed:
            return "pass"
        return "warn" if self.severity == "warning" else "fail"

    @property
    def fails_verdict(self) -> bool:
        """True when this result makes the overall verdict a failure."""
        return self.status == "fail"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        """The result :meth:`to_dict` describes (what a forked check lane sends back)."""
        return cls(data["name"], data["category"], data["passed"], data["severity"],
                   observed=data["observed"], expected=data["expected"],
                   message=data["message"], details=data["details"],
                   skipped=data["status"] == "skip", duration_s=data["duration_s"])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (the verdict.json ``checks`` entry)."""
        return jsonable({
            "name": self.name, "category": self.category, "passed": self.passed,
            "status": self.status, "severity": self.severity, "observed": self.observed,
            "expected": self.expected, "message": self.message, "details": self.details,
            "duration_s": None if self.duration_s is None else round(self.duration_s, 6),
        })
