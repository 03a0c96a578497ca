"""Quarantine: the takes a run leaves out, and the per-take rules that decide it.

One definition both halves import (torch-free: pyarrow and the standard library):

- :data:`TAKE_RULES`, the per-take data-quality rules on ``audio_stats.parquet``. The
  guardrails suite ``data.audio_stats`` builds its Great Expectations rules from them
  and ``profy train --skip-bad`` quarantines the takes that break them, both with the
  thresholds of the same criteria file (``checks["data.audio_stats"]``); no copy.
- ``quarantine.json``, the record of every left-out take (input-policy problems and
  data-quality rule breaks): take, rule, observed value, expected bound.

``quarantine.json``::

    {"version": 1,
     "count": 2,                      # takes left out
     "n_candidates": 240,             # takes before quarantine (count + takes used)
     "criteria": {"source": ".../default.yaml", "data.audio_stats": {...}} | null,
     "takes": [{"sample_id": "...", "rule": "nonzero_frames.min", "observed": 115,
                "expected": ">= 120", "path": "", "problem": "..."}]}

``rule`` is a :data:`TAKE_RULES` name, or ``input.<kind>`` (``malformed``, ``missing``,
``unsafe``) for a file the input policy refused (``path`` names it then).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from profy.contract.layout import QUARANTINE_FILE  # re-exported: the rules' file

__all__ = ["QUARANTINE_FILE", "QUARANTINE_VERSION", "TAKE_RULES", "TakeRule", "input_entry",
           "quarantine_document", "rule_entry", "still_broken", "take_rule_breaks"]

QUARANTINE_VERSION = 1


@dataclass(frozen=True)
class TakeRule:
    """One per-take rule: ``low <= row[column] <= high``, bounds from criteria params.

    Attributes:
        name: the rule id, as the guardrails suite reports it.
        column: the ``audio_stats.parquet`` column it reads.
        low: a ``data.audio_stats`` parameter name, a fixed number, or ``None``.
        high: the same for the upper bound.
        description: what the rule asks, for reports.
    """

    name: str
    column: str
    low: str | float | None
    high: str | float | None
    description: str

    def bounds(self, params: Mapping[str, Any]) -> tuple[float | None, float | None]:
        """The (low, high) bounds under ``params`` (the criteria's ``data.audio_stats``)."""
        def resolve(bound: str | float | None) -> float | None:
            return params[bound] if isinstance(bound, str) else bound

        return resolve(self.low), resolve(self.high)

    def expected(self, params: Mapping[str, Any]) -> str:
        """The bound as text, e.g. ``">= 120"`` or ``"in [0.0, 100.0]"``."""
        low, high = self.bounds(params)
        if self.column == "finite":
            return "true"
        if high is None:
            return f">= {low}"
        return f"<= {high}" if low is None else f"in [{low}, {high}]"

    def broken_by(self, value: Any, params: Mapping[str, Any]) -> bool:
        """Whether one take's ``value`` breaks the rule (a missing or NaN value does)."""
        if self.column == "finite":
            return value is not True
        if value is None or isinstance(value, bool):
            return True
        value = float(value)
        if not math.isfinite(value):
            return True
        low, high = self.bounds(params)
        return (low is not None and value < low) or (high is not None and value > high)


TAKE_RULES: tuple[TakeRule, ...] = (
    TakeRule("nonzero_frames.min", "nonzero_frames", "min_nonzero_frames", None,
             "enough non-zero log-mel frames (the plan's >= 120)"),
    TakeRule("snr_db.bounds", "snr_db", "min_snr_db", "max_snr_db", "SNR proxy within bounds"),
    TakeRule("nonsilent_ratio.bounds", "nonsilent_ratio", "min_nonsilent_ratio", 1.0,
             "non-silent ratio within bounds"),
    TakeRule("finite.flag", "finite", None, None, "every feature value finite"),
)
_BY_NAME = {rule.name: rule for rule in TAKE_RULES}


def rule_entry(sample_id: str, rule: TakeRule, value: Any,
               params: Mapping[str, Any]) -> dict[str, Any]:
    """One ``quarantine.json`` entry for a take that breaks ``rule``."""
    observed = value if isinstance(value, bool) or value is None else float(value)
    return {"sample_id": sample_id, "rule": rule.name, "observed": observed,
            "expected": rule.expected(params), "path": "",
            "problem": f"{rule.column} = {observed!r}, expected {rule.expected(params)}"}


def take_rule_breaks(rows: Iterable[Mapping[str, Any]],
                     params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Entries for every take (``audio_stats`` row) breaking a rule; one per take.

    A take that breaks several rules is recorded under the first (rules in
    :data:`TAKE_RULES` order), so the count is a count of takes.

    Args:
        rows: ``audio_stats.parquet`` rows as mappings.
        params: the criteria's ``data.audio_stats`` parameters.
    """
    entries = []
    for row in rows:
        for rule in TAKE_RULES:
            if rule.broken_by(row.get(rule.column), params):
                entries.append(rule_entry(str(row["sample_id"]), rule, row.get(rule.column),
                                          params))
                break
    return entries


def still_broken(entry: Mapping[str, Any], params: Mapping[str, Any]) -> bool | None:
    """Whether a recorded rule entry breaks its rule under ``params``; None if not a rule entry."""
    rule = _BY_NAME.get(str(entry.get("rule")))
    return None if rule is None else rule.broken_by(entry.get("observed"), params)


def quarantine_document(takes: list[dict[str, Any]], *, n_candidates: int,
                        criteria: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``quarantine.json`` object (see the module docstring)."""
    return {"version": QUARANTINE_VERSION, "count": len(takes), "n_candidates": int(n_candidates),
            "criteria": None if criteria is None else dict(criteria),
            "takes": sorted(takes, key=lambda t: t["sample_id"])}


def input_entry(sample_id: str, kind: str, path: str | Path, problem: str) -> dict[str, Any]:
    """A ``quarantine.json`` entry for a take the input policy refused."""
    return {"sample_id": sample_id, "rule": f"input.{kind}", "observed": problem,
            "expected": "files readable under the input policy", "path": str(path),
            "problem": problem}

