"""The ``profy`` command: parses arguments and calls the library; nothing more.

Exit codes: 0 success; 1 the command ran and found problems (``data inspect``);
2 bad input or usage, with one readable line on stderr; 130 interrupted.
Heavy modules are imported inside the commands so ``profy --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from profy.errors import ProfyError

__all__ = ["main"]

EXIT_OK, EXIT_PROBLEMS, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def _console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)  # paths must stay copy-pasteable


def _cmd_synth(args: argparse.Namespace) -> int:
    from profy.data import synthesize_corpus

    summary = synthesize_corpus(args.out, size=args.size, seed=args.seed, progress=True)
    _console().print(
        f"wrote {summary.n_takes} takes by {summary.n_players} players "
        f"({summary.n_label_rows} rater rows, {summary.n_untagged_rows} untagged) "
        f"in {summary.seconds:.1f} s, {summary.bytes_written / 1e6:.0f} MB\n"
        f"corpus: {Path(summary.out_dir).resolve()}")
    return EXIT_OK


def _cmd_inspect(args: argparse.Namespace) -> int:
    from profy.data import inspect_corpus, render_report

    report = inspect_corpus(args.root, labels_path=args.labels, progress=not args.json)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        render_report(report, _console())
    return EXIT_PROBLEMS if report.problems else EXIT_OK


def _cmd_prepare(args: argparse.Namespace) -> int:
    from profy.data import prepare_corpus

    result = prepare_corpus(args.root, args.out, labels_path=args.labels, skip_bad=args.skip_bad,
                            n_folds=args.folds, seed=args.seed, progress=True)
    console = _console()
    if result.quarantine_path is not None:
        console.print(f"[yellow]{result.n_quarantined} bad take(s) quarantined, listed in "
                      f"{result.quarantine_path}[/]")
    console.print(f"{result.n_takes} takes, {result.n_folds} player-wise folds\n"
                  f"manifest: {result.manifest_path}\nsplits:   {result.splits_path}")
    return EXIT_OK


def _cmd_features(args: argparse.Namespace) -> int:
    from profy.config import FeatureConfig
    from profy.data import build_manifest, read_manifest, write_manifest
    from profy.features import compute_features

    if args.manifest is not None:  # reuse `profy data prepare`'s: skips re-parsing every CSV
        table = read_manifest(args.manifest)
    else:
        manifest = build_manifest(args.root, labels_path=args.labels, progress=True)
        write_manifest(manifest, args.out / "manifest.parquet")
        table = manifest.table
    run = compute_features(args.root, table, args.out, cfg=FeatureConfig(),
                           cache_dir=args.cache, workers=args.workers, progress=True)
    _print_feature_run(run, _console())
    return EXIT_OK


def _print_feature_run(run, console) -> None:
    console.print(
        f"{run.n_takes} takes in {run.seconds:.1f} s: {run.takes_per_s:.1f} takes/s, "
        f"{run.audio_s_per_s:.0f} s of audio per second "
        f"(cache: {run.cache.hits} hits, {run.cache.misses} misses, "
        f"{run.cache.rejected} rejected)\n"
        f"audio stats:   {run.audio_stats_path}\nfeature index: {run.index_path}\n"
        f"cache:         {run.cache_dir}")


def _cmd_train(args: argparse.Namespace) -> int:
    from profy.config import load_profile
    from profy.training import train

    overrides = []
    if args.modes is not None:
        overrides.append(f"train.modes=[{args.modes}]")
    for key, value in (("n_folds", args.folds), ("epochs", args.epochs), ("seed", args.seed)):
        if value is not None:
            overrides.append(f"train.{key}={value}")
    cfg = load_profile(args.config, [*overrides, *args.set])  # --set is applied last
    console = _console()
    result = train(cfg, args.data, args.out, cache_dir=args.cache, labels_path=args.labels,
                   skip_bad=args.skip_bad, workers=args.workers, profile=str(args.config),
                   progress=True, console=console)
    _print_train_result(result, console)
    return EXIT_OK


def _print_train_result(result, console) -> None:
    from rich.table import Table

    table = Table(title="held-out macro F1 per mode (player-wise folds)")
    for col, justify in (("mode", "left"), ("macro F1 mean ± std", "right"),
                         ("per fold", "right"), ("seconds per fold", "right")):
        table.add_column(col, justify=justify)
    for row in result.table().itertuples():
        table.add_row(row.mode, f"{row.macro_f1_mean:.3f} ± {row.macro_f1_std:.3f}",
                      " / ".join(f"{v:.3f}" for v in row.per_fold),
                      " / ".join(f"{v:.1f}" for v in row.seconds_per_fold))
    console.print(table)
    console.print(f"training: {result.seconds:.1f} s\nrun folder: {result.run_dir}")


def _cmd_demo(args: argparse.Namespace) -> int:
    from profy._demo import run_demo

    run_demo(args.out, size=args.size, seed=args.seed, console=_console())
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="profy", description="Profy: train, evaluate and release the pro/amateur classifier.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="write a synthetic corpus in the real Profy layout")
    p.add_argument("--size", default="small", help="tiny | small | full (default: small)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="corpus folder to write")
    p.set_defaults(func=_cmd_synth)

    data = sub.add_parser("data", help="read and check a corpus")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    p = data_sub.add_parser("inspect", help="counts and every problem found (exit 1 if any)")
    p.add_argument("root", type=Path, help="corpus root (holds playdata/ and labels.csv)")
    p.add_argument("--labels", type=Path, default=None,
                   help="labels file (default: ROOT/labels.csv)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_cmd_inspect)
    p = data_sub.add_parser("prepare", help="write manifest.parquet and splits.parquet")
    p.add_argument("root", type=Path)
    p.add_argument("--out", required=True, type=Path, help="folder for manifest and splits")
    p.add_argument("--labels", type=Path, default=None)
    p.add_argument("--skip-bad", action="store_true",
                   help="quarantine bad or missing takes into a report and go on")
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("features", help="features + audio_stats.parquet for a corpus (cached)")
    p.add_argument("root", type=Path, help="corpus root")
    p.add_argument("--out", required=True, type=Path, help="folder for stats, index, manifest")
    p.add_argument("--cache", type=Path, default=None, help="feature cache (default: OUT/cache)")
    p.add_argument("--workers", type=int, default=2, help="processes (default: 2)")
    p.add_argument("--labels", type=Path, default=None)
    p.add_argument("--manifest", type=Path, default=None,
                   help="reuse a manifest.parquet from `profy data prepare` (no re-read of CSVs)")
    p.set_defaults(func=_cmd_features)

    p = sub.add_parser("train", help="cross-validate the modes on a corpus into a run folder")
    p.add_argument("--config", required=True,
                   help="profile name (mm-audiofix, sensor-v1, audio-v1, paper, "
                        "legacy-20250925) or a YAML file")
    p.add_argument("--data", required=True, type=Path, help="corpus root")
    p.add_argument("--out", required=True, type=Path,
                   help="runs folder; the run goes to OUT/experiment_YYYYMMDD_HHMMSS")
    p.add_argument("--modes", default=None, help="comma-separated, e.g. sensor,multimodal")
    p.add_argument("--folds", type=int, default=None, help="player-wise folds (train.n_folds)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value (repeatable), e.g. --set model.hidden=16")
    p.add_argument("--cache", type=Path, default=None,
                   help="feature cache (default: OUT/../cache)")
    p.add_argument("--workers", type=int, default=2, help="feature processes (default: 2)")
    p.add_argument("--labels", type=Path, default=None)
    p.add_argument("--skip-bad", action="store_true",
                   help="quarantine bad or missing takes into a report and go on")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("demo", help="the main job end to end on the embedded synthetic corpus")
    p.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default: demo)")
    p.add_argument("--size", default="small")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``profy`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ProfyError as exc:
        print(f"profy: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("profy: interrupted; completed outputs are intact, partial ones were discarded",
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
