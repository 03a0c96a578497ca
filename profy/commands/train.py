"""``profy train``: cross-validate the modes on a corpus into a run folder (or resume one,
or train one fold of a shared run folder)."""

from __future__ import annotations

import argparse
from pathlib import Path

from profy.commands._common import EXIT_OK, console

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from profy.config import load_profile
    from profy.errors import ConfigError
    from profy.training import render_cv_result, resume, train

    out = console()
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
        result = resume(args.resume, progress=True, console=out)
        render_cv_result(result, out)
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
                   progress=True, console=out, run_dir=args.run_dir,
                   only_fold=args.only_fold)
    render_cv_result(result, out)
    if args.only_fold is not None:
        out.print(f"fold {args.only_fold} done; once every fold is in: "
                  f"profy collect {result.run_dir}")
    return EXIT_OK
