"""``profy report``: plots + a self-contained ``RUN/report.html``."""

from __future__ import annotations

import argparse
from pathlib import Path

from profy.commands._common import EXIT_OK, console

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="plots + a self-contained RUN/report.html")
    p.add_argument("run", type=Path, help="finished run folder")
    p.add_argument("--verdict", type=Path, default=None,
                   help="verdict.json to show (default: RUN/guardrails/verdict.json if present)")
    p.add_argument("--out", type=Path, default=None, help="HTML file (default: RUN/report.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from profy.visualization.report import write_report

    path = write_report(args.run, verdict=args.verdict, out=args.out)
    console().print(f"report: {path.resolve()}\nplots:  {Path(args.run).resolve() / 'plots'}")
    return EXIT_OK
