"""``guardrails schemas``: print the artifact contract the gates read."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    from profy.contract import schemas

    contract = {}
    for name in ("MANIFEST_SCHEMA", "SPLITS_SCHEMA", "AUDIO_STATS_SCHEMA", "FEATURE_INDEX_SCHEMA"):
        schema = getattr(schemas, name)
        artifact = schema.metadata[b"profy_artifact"].decode()
        contract[artifact] = {
            "schema_version": schemas.SCHEMA_VERSION,
            "columns": {f.name: {"type": str(f.type), "nullable": f.nullable} for f in schema},
            "ranges": {k: list(v) if isinstance(v, tuple) else v
                       for k, v in schemas.RANGES.get(artifact, {}).items()},
        }
    if args.json:
        print(json.dumps(contract, indent=2, sort_keys=True))
        return 0
    from rich.table import Table

    from profy.contract.console import make_console, print_table

    console = make_console()
    for artifact, spec in contract.items():
        table = Table(title=f"{artifact}.parquet (schema v{spec['schema_version']})")
        for col in ("column", "type", "nullable", "range"):
            table.add_column(col)
        for col, info in spec["columns"].items():
            table.add_row(col, info["type"], str(info["nullable"]),
                          str(spec["ranges"].get(col, "")))
        print_table(console, table)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("schemas", help="print the artifact schemas the gates read")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_run)
