"""The ``profy`` command: parses arguments and calls the library; nothing more.

Each subcommand is a module of :mod:`profy.commands` that registers its own arguments
(``add_parser``) beside its handler; this module builds the parser from them and
dispatches. Exit codes: 0 success; 1 the command ran and found problems (``data
inspect``, ``tags --verify``); 2 bad input or usage, with one readable line on stderr;
130 interrupted. Torch and the training stack are imported inside the handlers, so
``profy --help`` loads no model code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from profy.commands import COMMANDS
from profy.commands._common import EXIT_BAD_INPUT, EXIT_INTERRUPTED
from profy.errors import ProfyError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="profy", description="Profy: train, evaluate and release the pro/amateur classifier.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``profy`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ProfyError as exc:
        print(f"profy: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("profy: interrupted; completed outputs are intact, partial ones were discarded",
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
