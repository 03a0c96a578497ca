"""Console output that stays copyable in CI logs (shared by ``profy`` and ``guardrails``).

On a terminal, rich fits tables to the window and folds long cells. Without one (CI
logs, ``| tee``, a file), rich assumes 80 columns and would cut a take id or a path
with an ellipsis, so the one thing a user needs from the log (which take, which file)
could not be copied. Here, off a terminal, a table is printed as wide as its content:
every id, path and message appears whole on its row's line. Rules and plain lines keep
the console's own width. Torch-free (rich only).
"""

from __future__ import annotations

from typing import Any

__all__ = ["make_console", "print_table"]

_WIDE = 1 << 14  # wider than any row we print; a measurement bound, not an output width


def make_console(*, stderr: bool = False, file: Any = None) -> Any:
    """A rich ``Console`` for command output: no highlighting, long lines never wrapped.

    Args:
        stderr: write to standard error. (Default: ``False``)
        file: write to this file object instead. (Default: ``None``, standard output)
    """
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, stderr=stderr, file=file)


def print_table(console: Any, table: Any) -> None:
    """Print a rich table; off a terminal, as wide as it needs so no cell is cut.

    Args:
        console: the ``rich.console.Console`` to print to.
        table: a ``rich.table.Table`` (or any renderable).
    """
    if console.is_terminal:
        console.print(table)
        return
    from rich.console import Console
    from rich.measure import Measurement

    need = Measurement.get(console, console.options.update_width(_WIDE), table).maximum
    if need <= console.width:
        console.print(table)
        return
    Console(file=console.file, width=need, highlight=False, soft_wrap=True,
            no_color=console.no_color, color_system=None).print(table)
