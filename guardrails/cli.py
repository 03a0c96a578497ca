"""The ``guardrails`` command (torch-free).

Exit codes: 0 pass, 1 a check failed, 2 bad input or usage (one readable line).
Each subcommand lives in its own small module of :mod:`guardrails.commands` exposing
``add_parser(subparsers)``; the verdict commands share one skeleton
(:mod:`guardrails.commands._verdict`).
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import sys
from collections.abc import Sequence

from guardrails.errors import GuardrailsError

__all__ = ["COMMAND_MODULES", "build_parser", "console_main", "main"]

# One module per subcommand; each adds its parser (order = order in --help).
COMMAND_MODULES = (
    "guardrails.commands.schemas",
    "guardrails.commands.checks",
    "guardrails.commands.data",
    "guardrails.commands.audit",
    "guardrails.commands.onnx",
    "guardrails.commands.ci",
    "guardrails.commands.replay",
    "guardrails.commands.history",
    "guardrails.commands.gate",
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


def console_main() -> None:
    """The console script and ``python -m guardrails.cli``: ``main``, then a prompt exit.

    Every file guardrails writes is complete (atomic rename) before ``main`` returns, and
    forked check lanes have been joined. What is left is CPython tearing down the GX,
    pandas and onnxruntime modules, ~0.8 s of a ~10 s ``guardrails ci`` that buys a CI
    job nothing (benchmarks/bench_ci.py). So the atexit handlers run (logging, a Spark
    session's stop), the streams are flushed, and the process leaves without teardown.
    """
    code = main()
    atexit._run_exitfuncs()  # what a normal exit would run; os._exit skips it otherwise
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    console_main()
