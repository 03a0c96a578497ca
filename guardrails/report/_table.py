"""The terminal verdict table (rich)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from guardrails._result import CheckResult, jsonable
from guardrails.report._json import stability_text, summarize

__all__ = ["print_table"]

_STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}


def _short(value: Any, limit: int | None = 60) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):  # compact "key=value" reads better in a narrow column
        text = " ".join(f"{k}={json.dumps(jsonable(v))}" for k, v in sorted(value.items()))
    else:
        text = value if isinstance(value, str) else json.dumps(jsonable(value), sort_keys=True)
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def print_table(results: Sequence[CheckResult], *, title: str, verdict: str, console) -> None:
    """Print one row per check and a verdict line to a ``rich.console.Console``.

    On a terminal long cells are shortened to keep the table readable; off one (CI logs,
    pipes) nothing is cut: the table is as wide as its longest message.
    """
    from rich.table import Table
    from rich.text import Text  # plain Text cells: a "[x]" in a message is not markup

    from profy.contract.console import print_table as print_wide

    terminal = console.is_terminal
    cell, message = (60, 120) if terminal else (None, None)
    table = Table(title=title, title_justify="left", expand=False)
    # status and check never wrap; on a terminal evidence columns are capped so the message
    # keeps room (off one, nothing is capped: print_wide makes the table as wide as needed)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("observed", overflow="fold", max_width=28 if terminal else None)
    table.add_column("expected", overflow="fold", max_width=20 if terminal else None)
    table.add_column("stability", justify="right", no_wrap=True)
    table.add_column("message", overflow="fold", ratio=1)
    for r in results:
        style = _STYLE[r.status]
        table.add_row(Text(r.status.upper(), style=style), Text(r.name),
                      Text(_short(r.observed, cell)), Text(_short(r.expected, cell)),
                      Text(stability_text(r)),
                      Text(_short(r.message, message)))
    print_wide(console, table)
    counts = summarize(results)
    colour = "bold red" if verdict == "fail" else "bold green"
    console.print(f"[{colour}]verdict: {verdict.upper()}[/] ({counts['pass']} passed, "
                  f"{counts['fail']} failed, {counts['warn']} warnings, {counts['skip']} skipped)")
