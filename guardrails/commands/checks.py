"""``guardrails checks``: list the registered checks, their parameters and defaults."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    from guardrails._criteria import load_criteria
    from guardrails._registry import load_all_checks

    registry = load_all_checks()
    selected = load_criteria(args.criteria).checks if args.criteria or args.selected else None
    rows = [spec for name, spec in sorted(registry.items())
            if selected is None or name in selected]
    if args.json:
        listing = {s.name: {"category": s.category, "description": s.description,
                            "params": dict(s.params),
                            "choices": {k: list(v) for k, v in s.choices.items()}}
                   for s in rows}
        print(json.dumps(listing, indent=2, sort_keys=True, default=str))
        return 0
    from rich.table import Table

    from profy.contract.console import make_console, print_table

    table = Table(title="registered checks")
    for col in ("check", "category", "parameters (defaults)", "description"):
        table.add_column(col)
    for spec in rows:
        params = ", ".join(f"{k}={v!r}" + (f" (one of {'|'.join(map(str, spec.choices[k]))})"
                                           if k in spec.choices else "")
                           for k, v in spec.params.items())
        table.add_row(spec.name, spec.category, params, spec.description)
    print_table(make_console(), table)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("checks", help="list the registered checks and their parameters")
    p.add_argument("--criteria", help="only the checks this criteria file selects")
    p.add_argument("--selected", action="store_true",
                   help="only the checks the default criteria select")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_run)
