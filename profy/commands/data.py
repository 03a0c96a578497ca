"""``profy data inspect`` and ``profy data prepare``: read and check a corpus."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from profy.commands._common import EXIT_OK, EXIT_PROBLEMS, console

__all__ = ["add_parser", "inspect", "prepare"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="read and check a corpus")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    p = data_sub.add_parser("inspect", help="counts and every problem found (exit 1 if any)")
    p.add_argument("root", type=Path, help="corpus root (holds playdata/ and labels.csv)")
    p.add_argument("--labels", type=Path, default=None,
                   help="labels file (default: ROOT/labels.csv)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=inspect)
    p = data_sub.add_parser("prepare", help="write manifest.parquet and splits.parquet")
    p.add_argument("root", type=Path)
    p.add_argument("--out", required=True, type=Path, help="folder for manifest and splits")
    p.add_argument("--labels", type=Path, default=None)
    p.add_argument("--skip-bad", action="store_true",
                   help="quarantine bad or missing takes into quarantine.json and go on")
    p.add_argument("--audio-stats", type=Path, default=None, metavar="FILE",
                   help="with --skip-bad: also leave out takes breaking the per-take "
                        "data-quality rules (audio_stats.parquet from `profy features`)")
    p.add_argument("--criteria", default=None, metavar="FILE_OR_PROFILE",
                   help="criteria whose data.audio_stats thresholds --skip-bad applies "
                        "(default: the release criteria of `guardrails ci`)")
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=prepare)


def inspect(args: argparse.Namespace) -> int:
    """Counts and every problem of a corpus; exit 1 if any."""
    from profy.data import inspect_corpus, render_report

    report = inspect_corpus(args.root, labels_path=args.labels, progress=not args.json)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        render_report(report, console())
    return EXIT_PROBLEMS if report.problems else EXIT_OK


def prepare(args: argparse.Namespace) -> int:
    """The manifest and the player-wise splits (bad takes quarantined with --skip-bad)."""
    from profy.data import prepare_corpus
    from profy.errors import ConfigError

    if args.audio_stats is not None and not args.skip_bad:
        raise ConfigError("--audio-stats applies the data-quality rules of --skip-bad; "
                          "add --skip-bad")
    result = prepare_corpus(args.root, args.out, labels_path=args.labels, skip_bad=args.skip_bad,
                            n_folds=args.folds, seed=args.seed, progress=True,
                            audio_stats=args.audio_stats, criteria=args.criteria)
    out = console()
    if result.quarantine_path is not None:
        out.print(f"[yellow]{result.n_quarantined} take(s) quarantined, listed in "
                  f"{result.quarantine_path}[/]")
        if args.audio_stats is None:
            out.print("note: only input-policy problems were checked; pass --audio-stats "
                      "(from `profy features`) to also apply the data-quality rules")
    out.print(f"{result.n_takes} takes, {result.n_folds} player-wise folds\n"
              f"manifest: {result.manifest_path}\nsplits:   {result.splits_path}")
    return EXIT_OK
