"""``profy tag`` and ``profy tags``: name released checkpoint sets, list and re-hash them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from profy.commands._common import EXIT_OK, EXIT_PROBLEMS, console

__all__ = ["add_parser", "tag", "tags"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tag", help="name a run's checkpoints of one mode with a semantic tag")
    p.add_argument("run", type=Path, help="finished run folder")
    p.add_argument("--mode", required=True, help="sensor | audio | multimodal")
    p.add_argument("--tag", required=True, help="e.g. mm-audiofix")
    p.add_argument("--registry", type=Path, default=None,
                   help="tag registry (default: RUN/../tags.json, i.e. the runs folder)")
    p.add_argument("--folds", default=None, help="comma-separated (default: all)")
    p.add_argument("--replace", action="store_true", help="move an existing tag")
    p.set_defaults(func=tag)

    p = sub.add_parser("tags", help="list the semantic tags of a registry")
    p.add_argument("--registry", type=Path, default=None,
                   help="tag registry (default: RUNS/tags.json)")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="runs folder (default: runs)")
    p.add_argument("--verify", action="store_true",
                   help="re-hash every tagged file (exit 1 if any changed)")
    p.add_argument("--resolve", default=None, metavar="TAG",
                   help="print one tag's files after re-hashing them (exit 2 if changed)")
    p.set_defaults(func=tags)


def _registry(args: argparse.Namespace, run: Path | None = None) -> Path:
    """--registry, else RUNS/tags.json (the run's parent folder, or --runs)."""
    from profy.contract.layout import TAGS_FILE, default_registry

    if args.registry is not None:
        return args.registry
    return default_registry(run) if run is not None else Path(args.runs) / TAGS_FILE


def tag(args: argparse.Namespace) -> int:
    """Hash and register the mode's checkpoints under the tag (opens them: needs torch)."""
    from profy.training import register_tag

    folds = None if args.folds is None else tuple(int(k) for k in args.folds.split(","))
    registry = _registry(args, args.run)
    entry = register_tag(registry, args.tag, args.run, mode=args.mode, folds=folds,
                         replace=args.replace)
    console().print(f"tag {entry.tag} -> {entry.run_dir} {entry.mode} folds "
                    f"{','.join(map(str, entry.folds))} ({len(entry.files)} files hashed)\n"
                    f"registry: {registry.resolve()}")
    return EXIT_OK


def tags(args: argparse.Namespace) -> int:
    """List the registry (``--verify``: re-hash each tag; ``--resolve``: one tag as JSON)."""
    from rich.table import Table

    from profy.contract.console import print_table
    from profy.contract.tags import list_tags, resolve_tag
    from profy.errors import ProfyError

    registry = _registry(args)
    if args.resolve is not None:
        entry = resolve_tag(registry, args.resolve, verify=True)  # changed file -> exit 2
        print(json.dumps({"tag": entry.tag, "run": str(entry.run_dir), "mode": entry.mode,
                          "folds": list(entry.folds), "config_hash": entry.config_hash,
                          "checkpoints": [str(p) for p in entry.checkpoint_paths()]},
                         indent=2))
        return EXIT_OK
    table = Table(title=f"tags in {registry}")
    for col in ("tag", "mode", "folds", "config hash", "created", "run", "files"):
        table.add_column(col)
    bad = 0
    for entry in list_tags(registry):
        status = "-"
        if args.verify:
            try:
                resolve_tag(registry, entry.tag, verify=True)
                status = "ok"
            except ProfyError as exc:
                status, bad = f"CHANGED: {exc}", bad + 1
        table.add_row(entry.tag, entry.mode, ",".join(map(str, entry.folds)),
                      entry.config_hash[:12], entry.created_at, str(entry.run_dir), status)
    print_table(console(), table)
    return EXIT_PROBLEMS if bad else EXIT_OK
