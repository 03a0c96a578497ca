"""Markdown summary of a verdict, sized for a pull-request comment.

Failures come first with their evidence; passes are folded into a ``<details>`` block.
Skipped checks (not judged: no evidence) are listed with their reasons right under the
verdict's counts, never folded away. The text is capped below GitHub's
65,536-character comment limit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from guardrails._result import CheckResult, jsonable
from guardrails.report._json import stability_text, summarize
from guardrails.report._skipped import skipped_lines

__all__ = ["MAX_CHARS", "markdown_summary"]

MAX_CHARS = 60_000  # GitHub refuses comments over 65,536 characters
_ICON = {"fail": ":x: FAIL", "warn": ":warning: WARN", "pass": ":white_check_mark: pass",
         "skip": ":fast_forward: skip"}
_ORDER = {"fail": 0, "warn": 1, "pass": 2, "skip": 3}


def _cell(value: Any, limit: int = 80) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(jsonable(value), sort_keys=True)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(results: Sequence[CheckResult]) -> list[str]:
    lines = ["| status | check | observed | expected | stability | message |",
             "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {_ICON[r.status]} | `{r.name}` | {_cell(r.observed)} | "
                     f"{_cell(r.expected)} | {stability_text(r)} | {_cell(r.message, 160)} |")
    return lines


def markdown_summary(results: Sequence[CheckResult], *, title: str, verdict: str,
                     run_dir: str | None = None, criteria_source: str | None = None) -> str:
    """The Markdown text: headline verdict, counts, failing checks, then the rest."""
    counts = summarize(results)
    head = ":x: **FAIL**" if verdict == "fail" else ":white_check_mark: **PASS**"
    lines = [f"## {title}: {head}", ""]
    if run_dir:
        lines.append(f"Run: `{run_dir}`  ")
    if criteria_source:
        lines.append(f"Criteria: `{criteria_source}`  ")
    lines += [f"{counts['total']} checks: {counts['pass']} passed, {counts['fail']} failed, "
              f"{counts['warn']} warnings, {counts['skip']} skipped.", ""]
    not_judged = skipped_lines(results)
    if not_judged:
        lines += [f"**Not judged** ({len(not_judged)} skipped: no evidence, not a pass):", ""]
        lines += [f"- `{name}`: {_cell(reason, 300)}" for name, reason in not_judged]
        lines.append("")
    ordered = sorted(results, key=lambda r: _ORDER[r.status])
    attention = [r for r in ordered if r.status in ("fail", "warn")]
    rest = [r for r in ordered if r.status not in ("fail", "warn")]
    if attention:
        lines += ["### Needs attention", "", *_table(attention), ""]
        for r in attention:
            if r.details:
                body = json.dumps(jsonable(r.details), indent=1, sort_keys=True)[:4000]
                lines += [f"<details><summary><code>{r.name}</code> details</summary>", "",
                          "```json", body, "```", "</details>", ""]
    if rest:
        lines += [f"<details><summary>{len(rest)} passed or skipped</summary>", "",
                  *_table(rest), "", "</details>", ""]
    text = "\n".join(lines)
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS] + "\n\n… (truncated; see verdict.json for every check)\n"
    return text
