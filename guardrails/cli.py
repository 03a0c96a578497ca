"""The ``guardrails`` command (torch-free).

Exit codes: 0 pass, 1 a check failed, 2 bad input or usage (one readable line).
This first version prints the artifact contract it gates on; the checks, data
suites, audits and gates register here as they land.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _cmd_schemas(args: argparse.Namespace) -> int:
    from profy import schemas

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
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    for artifact, spec in contract.items():
        table = Table(title=f"{artifact}.parquet (schema v{spec['schema_version']})")
        for col in ("column", "type", "nullable", "range"):
            table.add_column(col)
        for col, info in spec["columns"].items():
            table.add_row(col, info["type"], str(info["nullable"]),
                          str(spec["ranges"].get(col, "")))
        console.print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="guardrails",
                                     description="Torch-free release gates for Profy runs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("schemas", help="print the artifact schemas the gates read")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_schemas)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``guardrails`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
