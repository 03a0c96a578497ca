"""``guardrails data RUN``: the data-quality suites (Great Expectations) on one run.

A missing or unreadable artifact is bad input here (exit 2, naming the file).
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    from guardrails._cmd_ci import run_category_command

    return run_category_command(args, command="data", categories=["data"],
                                raise_artifact_errors=True)


def add_parser(sub) -> None:
    from guardrails._cmd_ci import add_data_docs_option, add_output_options

    p = sub.add_parser("data", help="data-quality suites: audio stats, normalization "
                                    "(leakage gate), splits")
    p.add_argument("run", metavar="RUN", help="run folder (runs/experiment_...)")
    add_output_options(p)
    add_data_docs_option(p)
    p.set_defaults(func=_run)
