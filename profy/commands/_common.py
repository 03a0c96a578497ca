"""What every ``profy`` command shares: exit codes and the console."""

from __future__ import annotations

from typing import Any

__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_PROBLEMS", "console"]

# 0 success; 1 the command ran and found problems; 2 bad input or usage; 130 interrupted.
EXIT_OK, EXIT_PROBLEMS, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def console() -> Any:
    """A ``rich`` console whose paths stay copy-pasteable (tables via ``print_table``)."""
    from profy.contract.console import make_console

    return make_console()

