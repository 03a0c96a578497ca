"""``profy release-notes``: Markdown of what changed against a baseline run or tag."""

from __future__ import annotations

import argparse
from pathlib import Path

from profy.commands._common import EXIT_OK, console

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("release-notes", help="Markdown: what changed against a baseline run/tag")
    p.add_argument("run", type=Path, help="finished run folder")
    p.add_argument("--baseline", required=True, help="baseline run folder or semantic tag")
    p.add_argument("--registry", type=Path, default=None,
                   help="tag registry (default: RUN/../tags.json)")
    p.add_argument("--out", type=Path, default=None,
                   help="Markdown file (default: RUN/release_notes.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from profy.visualization.release_notes import write_release_notes

    path = write_release_notes(args.run, args.baseline, out=args.out, registry=args.registry)
    console().print(f"release notes: {path.resolve()}")
    return EXIT_OK
