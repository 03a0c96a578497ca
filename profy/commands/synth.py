"""``profy synth``: write a synthetic corpus in the real Profy layout."""

from __future__ import annotations

import argparse
from pathlib import Path

from profy.commands._common import EXIT_OK, console

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="write a synthetic corpus in the real Profy layout")
    # synthesize_corpus checks it against profy.data's SIZES (exit 2 listing them);
    # importing profy.data here would load pandas for every command's parser
    p.add_argument("--size", default="small",
                   help="tiny | small | medium | full, or NAME-defects with recording defects "
                        "planted (listed in planted_defects.csv) (default: small)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="corpus folder to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from profy.data import synthesize_corpus

    summary = synthesize_corpus(args.out, size=args.size, seed=args.seed, progress=True)
    console().print(
        f"wrote {summary.n_takes} takes by {summary.n_players} players "
        f"({summary.n_label_rows} rater rows, {summary.n_untagged_rows} untagged) "
        f"in {summary.seconds:.1f} s, {summary.bytes_written / 1e6:.0f} MB\n"
        f"corpus: {Path(summary.out_dir).resolve()}")
    return EXIT_OK
