"""``profy export``: ONNX models (normalization inside) + reference outputs."""

from __future__ import annotations

import argparse
from pathlib import Path

from profy.commands._common import EXIT_OK, console
from profy.contract.schemas import MODES  # the parser's one import of the data stack

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="ONNX models (normalization inside) + reference outputs")
    p.add_argument("run", type=Path, help="finished run folder")
    p.add_argument("--mode", choices=list(MODES), default=None,
                   help="one mode (default: every mode with checkpoints)")
    folds = p.add_mutually_exclusive_group()
    folds.add_argument("--fold", type=int, default=None, help="one fold (default: best fold)")
    folds.add_argument("--all-folds", action="store_true", help="every fold")
    p.add_argument("--tag", default=None, help="export the tag's mode and folds (re-hashed, "
                   "tag in metadata); --mode/--fold/--all-folds may only agree with it")
    p.add_argument("--registry", type=Path, default=None,
                   help="tag registry (default: RUN/../tags.json)")
    p.add_argument("--workers", type=int, default=2, help="parallel export processes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from profy.export import export_models, select_models, select_tagged

    if args.tag is not None:  # exactly what `profy tag` named, re-hashed; flags may only agree
        pairs = select_tagged(args.run, args.tag, registry=args.registry, mode=args.mode,
                              fold=args.fold, all_folds=args.all_folds)
    else:
        pairs = select_models(args.run, modes=[args.mode] if args.mode else None,
                              fold=args.fold, all_folds=args.all_folds)
    out = console()
    out.print(f"exporting {len(pairs)} model(s) in fresh processes, {args.workers} at once: "
              + ", ".join(f"{m} fold {k}" for m, k in pairs))
    for r in export_models(args.run, pairs, tag=args.tag, workers=args.workers):
        out.print(f"{r.mode} fold {r.fold}: {r.onnx_path} ({r.size_bytes / 1e6:.2f} MB, "
                  f"{r.seconds:.1f} s, max |ORT - eager| {r.max_abs_error:.2g})\n"
                  f"  references: {r.references_path}")
    return EXIT_OK
