"""Keep the exporter's chatter in a log file and turn its failures into one line.

``torch.onnx.export`` (dynamo) prints warnings, fake-tensor tracebacks and, when it fails,
an error hundreds of lines long. The user of ``profy export`` needs one line: which model
failed and the exporter's final error; the full output goes to ``<mode>_fold<K>.export.log``
beside the model for whoever debugs it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

__all__ = ["captured_output", "final_error"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@contextlib.contextmanager
def captured_output(log_path: Path) -> Iterator[None]:
    """Send file descriptors 1 and 2 to ``log_path`` for the duration (C++ and Python
    output alike: torch logs, warnings and native prints all end up there)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "w", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            log.write(traceback.format_exc())  # straight to the file: sys.stderr may not be fd 2
            log.flush()
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def final_error(exc: BaseException, limit: int = 400) -> str:
    """One line: the exporter's headline (which step failed) and its root cause.

    ``ConversionError`` messages open with the failed step ("Failed to decompose the FX
    graph for ONNX compatibility. This is step 2/3 ...") and chain the error that caused it.
    """
    root = exc
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__

    def first_line(e: BaseException) -> str:
        lines = [ln.strip() for ln in _ANSI.sub("", str(e)).splitlines() if ln.strip()]
        return lines[0] if lines else type(e).__name__

    head = first_line(exc).split(". ")[0].rstrip(".")
    cause = f"{type(root).__name__}: {first_line(root)}"
    text = cause if root is exc else f"{head}: {cause}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
