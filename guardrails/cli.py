"""The ``guardrails`` command (torch-free).

Exit codes: 0 pass, 1 a check failed, 2 bad input or usage (one readable line).
Each subcommand lives in its own small module exposing ``add_parser(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from guardrails.errors import GuardrailsError

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

# One module per subcommand; each adds its parser (order = order in --help).
COMMAND_MODULES = (
    "guardrails._cmd_schemas",
    "guardrails._cmd_checks",
    "guardrails._cmd_data",
    "guardrails._cmd_audit",
    "guardrails._cmd_onnx",
    "guardrails._cmd_ci",
    "guardrails._cmd_replay",
    "guardrails._cmd_history",
    "guardrails._cmd_gate",
)

EXIT_PASS, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: exit 2 with one line, as argparse does
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = _Parser(prog="guardrails", description="Torch-free release gates for Profy runs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``guardrails`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except GuardrailsError as exc:
        print(f"guardrails: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
