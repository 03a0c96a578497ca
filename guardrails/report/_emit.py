"""``emit``: write every verdict output for one set of check results."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from guardrails._result import CheckResult
from guardrails.errors import BadInputError
from guardrails.report._json import verdict_dict
from guardrails.report._junit import junit_xml
from guardrails.report._markdown import markdown_summary
from guardrails.report._skipped import print_skipped
from guardrails.report._table import print_table
from profy.contract.atomic import atomic_write_json, atomic_write_text  # torch-free helpers

__all__ = ["VERDICT_FILE", "JUNIT_FILE", "MARKDOWN_FILE", "emit", "writable_dir"]

VERDICT_FILE, JUNIT_FILE, MARKDOWN_FILE = "verdict.json", "junit.xml", "summary.md"


def writable_dir(path: str | Path, *, hint: str = "pass --report-dir DIR") -> Path:
    """Create ``path`` if needed and make sure we can write there.

    Raises:
        BadInputError: it cannot be created or written (e.g. a read-only run folder).
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(path, f"cannot create the report folder ({exc.strerror}); "
                                  f"{hint}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise BadInputError(path, f"report folder is not writable; {hint}")
    return path


def emit(results: Sequence[CheckResult], *, title: str, report_dir: str | Path,
         junit: str | Path | None = None, markdown: str | Path | None = None,
         console: Any = None, extra: Mapping[str, Any] | None = None,
         run_dir: str | Path | None = None, criteria_source: str | None = None,
         elapsed_s: float | None = None, more_files: Mapping[str, str | None] | None = None
         ) -> int:
    """Write ``verdict.json``, ``junit.xml`` and ``summary.md`` and print the table.

    Args:
        results: the check outcomes (from :func:`guardrails.run_checks` or built by hand).
        title: headline of every output, e.g. ``"guardrails ci experiment_..."``.
        report_dir: folder receiving ``verdict.json``, ``junit.xml``, ``summary.md``.
        junit: also write the JUnit XML here (e.g. where CI collects it). (Default: None)
        markdown: also write the Markdown summary here. (Default: None)
        console: a ``rich.console.Console`` for the table; ``False`` prints nothing.
            (Default: a console on stdout)
        extra: command-specific data, stored under ``"extra"`` in ``verdict.json``.
        run_dir: the run judged (recorded in the verdict). (Default: None)
        criteria_source: the criteria file used (recorded). (Default: None)
        elapsed_s: total wall time of the command (recorded). (Default: None)
        more_files: other outputs of the command, name -> path (``None`` entries are
            dropped), recorded under ``files`` and printed. (Default: None)

    Returns:
        0 when no check fails the verdict (failed warnings and skips do not), else 1.

    Raises:
        BadInputError: ``report_dir`` (or an output path's folder) is not writable.
    """
    results = list(results)
    for result in results:
        if not isinstance(result, CheckResult):
            raise TypeError(f"emit() takes CheckResult objects, got {type(result).__name__}")
    out = writable_dir(report_dir)
    files = {"verdict": str(out / VERDICT_FILE), "junit": str(out / JUNIT_FILE),
             "markdown": str(out / MARKDOWN_FILE)}
    if junit is not None:
        files["junit_copy"] = str(junit)
    if markdown is not None:
        files["markdown_copy"] = str(markdown)
    files.update({k: str(v) for k, v in (more_files or {}).items() if v is not None})
    verdict = verdict_dict(results, title=title, run_dir=run_dir, report_dir=out,
                           criteria_source=criteria_source, elapsed_s=elapsed_s, files=files,
                           extra=extra)
    xml = junit_xml(results, title=title)
    md = markdown_summary(results, title=title, verdict=verdict["verdict"],
                          run_dir=verdict["run_dir"], criteria_source=criteria_source)
    for target, text in ((out / JUNIT_FILE, xml), (junit, xml), (out / MARKDOWN_FILE, md),
                         (markdown, md)):
        if target is not None:
            _write(Path(target), text)
    _write_json(out / VERDICT_FILE, verdict)  # last: its presence means the set is complete
    if console is not False:
        if console is None:
            from profy.contract.console import make_console

            console = make_console()  # off a terminal the table is as wide as its cells
        print_table(results, title=title, verdict=verdict["verdict"], console=console)
        print_skipped(results, console)  # right under the verdict line: not judged
        console.print(f"report: {out} (verdict.json, junit.xml, summary.md)", soft_wrap=True)
        for name in sorted(set(files) - {"verdict", "junit", "markdown"}):
            console.print(f"{name}: {files[name]}", soft_wrap=True)
    return int(verdict["exit_code"])


def _write(path: Path, text: str) -> None:
    # a lone surrogate in a message must not abort the report: escape it
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise BadInputError(path, f"cannot write report file ({exc.strerror})") from None


def _write_json(path: Path, obj: Any) -> None:
    try:
        atomic_write_json(path, obj)
    except OSError as exc:
        raise BadInputError(path, f"cannot write report file ({exc.strerror})") from None
