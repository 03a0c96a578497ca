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

from profy._cli_tags import cmd_tag, cmd_tags
from profy.errors import ProfyError

__all__ = ["main"]

EXIT_OK, EXIT_PROBLEMS, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def _console():
    from profy.contract.console import make_console

    return make_console()  # paths must stay copy-pasteable; tables via print_table


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
    from profy.errors import ConfigError

    if args.audio_stats is not None and not args.skip_bad:
        raise ConfigError("--audio-stats applies the data-quality rules of --skip-bad; "
                          "add --skip-bad")
    result = prepare_corpus(args.root, args.out, labels_path=args.labels, skip_bad=args.skip_bad,
                            n_folds=args.folds, seed=args.seed, progress=True,
                            audio_stats=args.audio_stats, criteria=args.criteria)
    console = _console()
    if result.quarantine_path is not None:
        console.print(f"[yellow]{result.n_quarantined} take(s) quarantined, listed in "
                      f"{result.quarantine_path}[/]")
        if args.audio_stats is None:
            console.print("note: only input-policy problems were checked; pass --audio-stats "
                          "(from `profy features`) to also apply the data-quality rules")
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
    from profy.errors import ConfigError
    from profy.training import render_cv_result, resume, train

    console = _console()
    if args.resume is not None:
        given = [f for f, v in (("--config", args.config), ("--data", args.data),
                                ("--only-fold", args.only_fold), ("--run-dir", args.run_dir),
                                ("--modes", args.modes), ("--folds", args.folds),
                                ("--criteria", args.criteria),
                                ("--epochs", args.epochs), ("--seed", args.seed),
                                ("--device", args.device), ("--set", args.set or None))
                 if v is not None]
        if given:
            raise ConfigError(f"--resume continues the run with its own config.yaml, splits "
                              f"and features; drop {', '.join(given)}")
        result = resume(args.resume, progress=True, console=console)
        render_cv_result(result, console)
        return EXIT_OK
    if args.config is None or args.data is None or (args.out is None and args.run_dir is None):
        raise ConfigError("profy train needs --config, --data and --out (or --run-dir); "
                          "or --resume RUN")
    if args.only_fold is not None and args.run_dir is None:  # else one experiment_* per job
        raise ConfigError("--only-fold needs --run-dir RUN, the run folder every fold job "
                          "shares and `profy collect RUN` merges")
    overrides = []
    if args.modes is not None:
        overrides.append(f"train.modes=[{args.modes}]")
    for key, value in (("n_folds", args.folds), ("epochs", args.epochs), ("seed", args.seed),
                       ("device", args.device)):
        if value is not None:
            overrides.append(f"train.{key}={value}")
    cfg = load_profile(args.config, [*overrides, *args.set])  # --set is applied last
    result = train(cfg, args.data, args.out, cache_dir=args.cache, labels_path=args.labels,
                   skip_bad=args.skip_bad, workers=args.workers, profile=str(args.config),
                   criteria=args.criteria,
                   progress=True, console=console, run_dir=args.run_dir,
                   only_fold=args.only_fold)
    render_cv_result(result, console)
    if args.only_fold is not None:
        console.print(f"fold {args.only_fold} done; once every fold is in: "
                      f"profy collect {result.run_dir}")
    return EXIT_OK


def _cmd_collect(args: argparse.Namespace) -> int:
    from profy.training import collect

    obj = collect(args.run)
    console = _console()
    for mode, part in obj["modes"].items():
        console.print(f"{mode:>10}: macro F1 {part['mean']['macro_f1']:.3f} ± "
                      f"{part['std']['macro_f1']:.3f}")
    console.print(f"results: {Path(args.run).resolve() / 'complete_results.json'}")
    return EXIT_OK


def _cmd_ablate(args: argparse.Namespace) -> int:
    from profy.training import ablate

    result = ablate(args.data, args.out, fold=args.fold, profile=args.config,
                    epochs=args.epochs, overrides=args.set, cache_dir=args.cache,
                    labels_path=args.labels, workers=args.workers, progress=True,
                    console=_console())
    console = _console()
    console.print(result.markdown_path.read_text(encoding="utf-8"))
    console.print(f"ablation: {result.json_path}\ntable:    {result.markdown_path}\n"
                  f"({result.seconds:.1f} s)")
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from profy.export import export_models, select_models, select_tagged

    if args.tag is not None:  # exactly what `profy tag` named, re-hashed; flags may only agree
        pairs = select_tagged(args.run, args.tag, registry=args.registry, mode=args.mode,
                              fold=args.fold, all_folds=args.all_folds)
    else:
        pairs = select_models(args.run, modes=[args.mode] if args.mode else None,
                              fold=args.fold, all_folds=args.all_folds)
    console = _console()
    console.print(f"exporting {len(pairs)} model(s) in fresh processes, {args.workers} at once: "
                  + ", ".join(f"{m} fold {k}" for m, k in pairs))
    for r in export_models(args.run, pairs, tag=args.tag, workers=args.workers):
        console.print(f"{r.mode} fold {r.fold}: {r.onnx_path} ({r.size_bytes / 1e6:.2f} MB, "
                      f"{r.seconds:.1f} s, max |ORT - eager| {r.max_abs_error:.2g})\n"
                      f"  references: {r.references_path}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from profy._demo import run_demo

    run_demo(args.out, size=args.size, seed=args.seed, console=_console())
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from profy.visualization.report import write_report

    path = write_report(args.run, verdict=args.verdict, out=args.out)
    _console().print(f"report: {path.resolve()}\nplots:  {Path(args.run).resolve() / 'plots'}")
    return EXIT_OK


def _cmd_release_notes(args: argparse.Namespace) -> int:
    from profy.visualization.release_notes import write_release_notes

    path = write_release_notes(args.run, args.baseline, out=args.out, registry=args.registry)
    _console().print(f"release notes: {path.resolve()}")
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
                   help="quarantine bad or missing takes into quarantine.json and go on")
    p.add_argument("--audio-stats", type=Path, default=None, metavar="FILE",
                   help="with --skip-bad: also leave out takes breaking the per-take "
                        "data-quality rules (audio_stats.parquet from `profy features`)")
    p.add_argument("--criteria", default=None, metavar="FILE_OR_PROFILE",
                   help="criteria whose data.audio_stats thresholds --skip-bad applies "
                        "(default: the release criteria of `guardrails ci`)")
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
    p.add_argument("--config", default=None,
                   help="profile name (mm-audiofix, sensor-v1, audio-v1, paper, "
                        "legacy-20250925) or a YAML file")
    p.add_argument("--data", default=None, type=Path, help="corpus root")
    p.add_argument("--out", default=None, type=Path,
                   help="runs folder; the run goes to OUT/experiment_YYYYMMDD_HHMMSS")
    p.add_argument("--modes", default=None, help="comma-separated, e.g. sensor,multimodal")
    p.add_argument("--folds", type=int, default=None, help="player-wise folds (train.n_folds)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                   help="train.device: auto = CUDA when available, else CPU")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value (repeatable), e.g. --set model.hidden=16")
    p.add_argument("--cache", type=Path, default=None,
                   help="feature cache (default: OUT/../cache)")
    p.add_argument("--workers", type=int, default=2, help="feature processes (default: 2)")
    p.add_argument("--labels", type=Path, default=None)
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out bad takes (input policy) and takes breaking the gate's "
                        "per-take data-quality rules; listed in RUN/quarantine.json")
    p.add_argument("--criteria", default=None, metavar="FILE_OR_PROFILE",
                   help="criteria whose data.audio_stats thresholds --skip-bad applies "
                        "(default: the release criteria of `guardrails ci`)")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN",
                   help="finish an interrupted run from its own config, splits and features, "
                        "keeping finished (mode, fold) shards")
    p.add_argument("--only-fold", type=int, default=None, metavar="K",
                   help="train only fold K (all modes) into --run-dir; `profy collect` merges")
    p.add_argument("--run-dir", type=Path, default=None, metavar="DIR",
                   help="run folder shared by --only-fold jobs (created on first use; "
                        "another config or other splits are refused)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("collect", help="merge a run's fold shards into complete_results.json")
    p.add_argument("run", type=Path, help="run folder")
    p.set_defaults(func=_cmd_collect)

    p = sub.add_parser("tag", help="name a run's checkpoints of one mode with a semantic tag")
    p.add_argument("run", type=Path, help="finished run folder")
    p.add_argument("--mode", required=True, help="sensor | audio | multimodal")
    p.add_argument("--tag", required=True, help="e.g. mm-audiofix")
    p.add_argument("--registry", type=Path, default=None,
                   help="tag registry (default: RUN/../tags.json, i.e. the runs folder)")
    p.add_argument("--folds", default=None, help="comma-separated (default: all)")
    p.add_argument("--replace", action="store_true", help="move an existing tag")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("tags", help="list the semantic tags of a registry")
    p.add_argument("--registry", type=Path, default=None,
                   help="tag registry (default: RUNS/tags.json)")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="runs folder (default: runs)")
    p.add_argument("--verify", action="store_true",
                   help="re-hash every tagged file (exit 1 if any changed)")
    p.add_argument("--resolve", default=None, metavar="TAG",
                   help="print one tag's files after re-hashing them (exit 2 if changed)")
    p.set_defaults(func=cmd_tags)

    p = sub.add_parser("ablate", help="CNN vs CNN+TCN x SpecAugment off/on on one fold")
    p.add_argument("--data", required=True, type=Path, help="corpus root")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--fold", required=True, type=int, help="the fold to train and score")
    p.add_argument("--config", default="mm-audiofix", help="base profile (default: mm-audiofix)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--cache", type=Path, default=None, help="feature cache (default: OUT/cache)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--labels", type=Path, default=None)
    p.set_defaults(func=_cmd_ablate)

    p = sub.add_parser("export", help="ONNX models (normalization inside) + reference outputs")
    p.add_argument("run", type=Path, help="finished run folder")
    p.add_argument("--mode", choices=["sensor", "audio", "multimodal"], default=None,
                   help="one mode (default: every mode with checkpoints)")
    folds = p.add_mutually_exclusive_group()
    folds.add_argument("--fold", type=int, default=None, help="one fold (default: best fold)")
    folds.add_argument("--all-folds", action="store_true", help="every fold")
    p.add_argument("--tag", default=None, help="export the tag's mode and folds (re-hashed, "
                   "tag in metadata); --mode/--fold/--all-folds may only agree with it")
    p.add_argument("--registry", type=Path, default=None,
                   help="tag registry (default: RUN/../tags.json)")
    p.add_argument("--workers", type=int, default=2, help="parallel export processes")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("demo", help="the main job end to end on the embedded synthetic corpus")
    p.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default: demo)")
    p.add_argument("--size", default="small")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("report", help="plots + a self-contained RUN/report.html")
    p.add_argument("run", type=Path, help="finished run folder")
    p.add_argument("--verdict", type=Path, default=None,
                   help="verdict.json to show (default: RUN/guardrails/verdict.json if present)")
    p.add_argument("--out", type=Path, default=None, help="HTML file (default: RUN/report.html)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("release-notes", help="Markdown: what changed against a baseline run/tag")
    p.add_argument("run", type=Path, help="finished run folder")
    p.add_argument("--baseline", required=True, help="baseline run folder or semantic tag")
    p.add_argument("--registry", type=Path, default=None,
                   help="tag registry (default: RUN/../tags.json)")
    p.add_argument("--out", type=Path, default=None,
                   help="Markdown file (default: RUN/release_notes.md)")
    p.set_defaults(func=_cmd_release_notes)
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
