"""``profy collect``: merge a run's fold shards into ``complete_results.json``."""

from __future__ import annotations

import argparse
from pathlib import Path

from profy.commands._common import EXIT_OK, console

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("collect", help="merge a run's fold shards into complete_results.json")
    p.add_argument("run", type=Path, help="run folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from profy.contract.layout import COMPLETE_RESULTS_FILE
    from profy.training import collect

    obj = collect(args.run)
    out = console()
    for mode, part in obj["modes"].items():
        out.print(f"{mode:>10}: macro F1 {part['mean']['macro_f1']:.3f} ± "
                  f"{part['std']['macro_f1']:.3f}")
    out.print(f"results: {Path(args.run).resolve() / COMPLETE_RESULTS_FILE}")
    return EXIT_OK
