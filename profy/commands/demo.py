"""``profy demo``: the main job end to end on the embedded synthetic corpus."""

from __future__ import annotations

import argparse
from pathlib import Path

from profy.commands._common import EXIT_OK, console

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job end to end on the embedded synthetic corpus")
    p.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default: demo)")
    p.add_argument("--size", default="small")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from profy._demo import run_demo

    run_demo(args.out, size=args.size, seed=args.seed, console=console())
    return EXIT_OK
