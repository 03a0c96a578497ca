"""``profy ablate``: CNN vs CNN+TCN x SpecAugment off/on on one fold."""

from __future__ import annotations

import argparse
from pathlib import Path

from profy.commands._common import EXIT_OK, console

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ablate", help="CNN vs CNN+TCN x SpecAugment off/on on one fold")
    p.add_argument("--data", required=True, type=Path, help="corpus root")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--fold", required=True, type=int, help="the fold to train and score")
    p.add_argument("--config", default="mm-audiofix", help="base profile (default: mm-audiofix)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--cache", type=Path, default=None, help="feature cache (default: OUT/cache)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--labels", type=Path, default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from profy.training import ablate

    result = ablate(args.data, args.out, fold=args.fold, profile=args.config,
                    epochs=args.epochs, overrides=args.set, cache_dir=args.cache,
                    labels_path=args.labels, workers=args.workers, progress=True,
                    console=console())
    out = console()
    out.print(result.markdown_path.read_text(encoding="utf-8"))
    out.print(f"ablation: {result.json_path}\ntable:    {result.markdown_path}\n"
              f"({result.seconds:.1f} s)")
    return EXIT_OK
