"""``guardrails history FILE``: the replay trend, one series per (kind, tag), and its
change points.

Prints a rich table of the rows (oldest first) and, per series, the strongest mean shift
of the chosen metric found by :func:`guardrails.replay._history.series_change_points` (a
two-window mean-shift test: flagged when the shift exceeds ``k`` pooled sigmas, sigma
floored at ``min_sigma``). Exit codes: 0 (1 with ``--fail-on-change`` when a change
point is flagged), 2 for a missing or unreadable history.
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from guardrails.errors import BadInputError
    from guardrails.replay._history import HISTORY_METRICS, read_history, series_change_points
    from profy.contract.console import make_console, print_table

    table = read_history(args.file)
    if args.metric not in HISTORY_METRICS:
        raise BadInputError(args.file, f"metric must be macro_f1, latency_ms or baseline_f1, "
                                       f"not {args.metric!r}")
    rows = sorted(table.to_pylist(), key=lambda r: r["timestamp"])[-args.last:]
    view = Table(title=f"replay history {args.file} ({table.num_rows} rows)")
    for col in ("time (UTC)", "kind", "tag", "fold", "takes", "macro F1", "baseline F1",
                "latency ms", "model", "data", "verdict"):
        view.add_column(col)

    def fmt(x, spec=".3f"):
        return "-" if x is None else format(x, spec)

    for r in rows:
        view.add_row(r["timestamp"].strftime("%Y-%m-%d %H:%M:%S"), r["kind"], r["tag"],
                     fmt(r["fold"], "d"), str(r["n_takes"]), fmt(r["macro_f1"]),
                     fmt(r["baseline_f1"]), fmt(r["latency_ms"], ".2f"),
                     r["model_sha256"][:10], r["data_sha256"][:10],
                     "[green]pass" if r["verdict"] == "pass" else "[red]fail")
    console = make_console()
    print_table(console, view)
    flagged = False
    points = series_change_points(table, metric=args.metric, window=args.window, k=args.k,
                                  min_sigma=args.min_sigma)
    for (kind, tag), cp in points.items():
        if cp is None:
            console.print(f"{kind} {tag}: fewer than {2 * args.window} replays, no change-point "
                          "test")
        elif cp.flagged:
            flagged = True
            console.print(f"[bold red]CHANGE POINT[/] {kind} {tag}: {args.metric} "
                          f"{cp.before:.3f} -> {cp.after:.3f} from replay #{cp.index + 1} "
                          f"of the series ({cp.score:.1f} sigma > {args.k:g})")
        else:
            console.print(f"{kind} {tag}: stable {args.metric} (largest shift {cp.score:.1f} "
                          f"sigma <= {args.k:g})")
    return 1 if flagged and args.fail_on_change else 0


def add_parser(sub) -> None:
    p = sub.add_parser("history", help="print the replay trend and flag change points")
    p.add_argument("file", metavar="FILE", help="replay_history.parquet")
    p.add_argument("--metric", default="macro_f1",
                   help="macro_f1 (default), latency_ms or baseline_f1")
    p.add_argument("--window", type=int, default=3,
                   help="minimum replays on each side of a change point (default 3)")
    p.add_argument("--k", type=float, default=3.0,
                   help="flag shifts larger than k pooled sigmas (default 3)")
    p.add_argument("--min-sigma", type=float, default=0.01,
                   help="floor of sigma in the metric's units (default 0.01)")
    p.add_argument("--last", type=int, default=50, help="rows to show (default 50)")
    p.add_argument("--fail-on-change", action="store_true",
                   help="exit 1 when a change point is flagged")
    p.set_defaults(func=_run)
