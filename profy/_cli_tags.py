"""``profy tag`` and ``profy tags``: name released checkpoint sets, list and re-hash them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from profy.errors import ProfyError

__all__ = ["cmd_tag", "cmd_tags"]

EXIT_OK, EXIT_PROBLEMS = 0, 1  # as profy.cli


def _console():
    from profy.cli import _console  # late: profy.cli imports this module

    return _console()


def _registry(args: argparse.Namespace, run: Path | None = None) -> Path:
    """--registry, else RUNS/tags.json (the run's parent folder, or --runs)."""
    if args.registry is not None:
        return args.registry
    return (run.resolve().parent if run is not None else args.runs) / "tags.json"


def cmd_tag(args: argparse.Namespace) -> int:
    from profy.training import register_tag

    folds = None if args.folds is None else tuple(int(k) for k in args.folds.split(","))
    registry = _registry(args, args.run)
    entry = register_tag(registry, args.tag, args.run, mode=args.mode, folds=folds,
                         replace=args.replace)
    _console().print(f"tag {entry.tag} -> {entry.run_dir} {entry.mode} folds "
                     f"{','.join(map(str, entry.folds))} ({len(entry.files)} files hashed)\n"
                     f"registry: {registry.resolve()}")
    return EXIT_OK


def cmd_tags(args: argparse.Namespace) -> int:
    from rich.table import Table

    from profy.contract.console import print_table
    from profy.training import list_tags, resolve_tag

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
    print_table(_console(), table)
    return EXIT_PROBLEMS if bad else EXIT_OK
