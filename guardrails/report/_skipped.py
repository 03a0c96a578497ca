"""The checks a verdict did not judge, listed right under its verdict line.

A skip is not a pass: the check found no evidence to look at (no ``onnx/``, no tag, no
``--baseline``), so the verdict says nothing about it. Every output names them where
the verdict is read: the console (:func:`print_skipped`, under the table's verdict
line), the Markdown summary and the HTML report's verdict section.
"""

from __future__ import annotations

from collections.abc import Sequence

from guardrails._result import CheckResult

__all__ = ["print_skipped", "skipped_lines"]


def _reason(result: CheckResult) -> str:
    msg = result.message or "no reason given"
    return msg[len("skipped: "):] if msg.startswith("skipped: ") else msg


def skipped_lines(results: Sequence[CheckResult]) -> list[tuple[str, str]]:
    """``(check name, reason)`` of every skipped result, in the results' order."""
    return [(r.name, _reason(r)) for r in results if r.status == "skip"]


def print_skipped(results: Sequence[CheckResult], console) -> None:
    """Print the skipped checks (none: nothing) to a ``rich.console.Console``."""
    from rich.text import Text  # plain text: a "[x]" in a reason is not markup

    lines = skipped_lines(results)
    if not lines:
        return
    console.print(Text(f"not judged ({len(lines)} skipped: no evidence, not a pass):",
                       style="yellow"))
    for name, reason in lines:
        console.print(Text(f"  - {name}: {reason}"), soft_wrap=True)
