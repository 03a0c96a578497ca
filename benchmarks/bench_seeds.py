"""Held-out macro F1 per mode over several seeds: is a verdict robust or a lucky seed?

For each profile and seed, trains the full cross-validation (3 modes x 3 player-wise folds)
on one synthetic corpus and records each mode's mean/std of fold macro F1, plus the
fraction of held-out takes whose sensor weight is >= 0.5. The seed drives the folds, the
weights, shuffling and augmentation; the corpus stays fixed so profiles are comparable.

    .venv/bin/python benchmarks/bench_seeds.py [--size small] [--seeds 0 1 2]
        [--profiles mm-audiofix legacy-20250925] [--set train.epochs=10 ...]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import write_result  # noqa: E402


def _summary(runs: list[dict], profiles: list[str]) -> dict[str, dict]:
    """Per profile and mode: mean over seeds of the fold means, the worst seed's mean and
    the largest fold std, and the fraction of held-out takes with sensor weight >= 0.5."""
    summary: dict[str, dict] = {}
    for profile in profiles:
        mine = [r for r in runs if r["profile"] == profile]
        if not mine:
            continue
        summary[profile] = {
            mode: {"mean_of_means": statistics.mean(r["modes"][mode]["mean"] for r in mine),
                   "std_of_means": statistics.pstdev(r["modes"][mode]["mean"] for r in mine),
                   "min_mean": min(r["modes"][mode]["mean"] for r in mine),
                   "max_std": max(r["modes"][mode]["std"] for r in mine)}
            for mode in mine[0]["modes"]}
        summary[profile]["min_frac_sensor_ge_0.5"] = min(r["frac_sensor_ge_0.5"] for r in mine)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small")
    parser.add_argument("--corpus-seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--profiles", nargs="+", default=["mm-audiofix", "legacy-20250925"])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--name", default="seeds",
                        help="result file benchmarks/results/NAME.json (default: seeds)")
    args = parser.parse_args()

    import pyarrow.parquet as pq

    from profy.config import load_profile
    from profy.data import synthesize_corpus
    from profy.training import train

    work = Path(tempfile.mkdtemp(prefix="bench_seeds_"))
    try:
        corpus = work / "corpus"
        synthesize_corpus(corpus, size=args.size, seed=args.corpus_seed, progress=True)
        runs = []
        for profile in args.profiles:
            for seed in args.seeds:
                cfg = load_profile(profile, [f"train.seed={seed}", *args.overrides])
                result = train(cfg, corpus, work / "runs", cache_dir=work / "cache",
                               profile=profile, progress=True)
                table = result.table()
                weights = pq.read_table(result.run_dir / "modality_weights.parquet")
                sensor = weights["sensor_weight"].to_numpy()
                row = {"profile": profile, "seed": seed, "seconds": result.seconds,
                       "frac_sensor_ge_0.5": float((sensor >= 0.5).mean()),
                       "modes": {r.mode: {"mean": r.macro_f1_mean, "std": r.macro_f1_std,
                                          "per_fold": r.per_fold}
                                 for r in table.itertuples()}}
                runs.append(row)
                print(profile, seed, {m: round(v["mean"], 3) for m, v in row["modes"].items()})
                # written after every run, so an interrupted study keeps what it measured
                summary = _summary(runs, args.profiles)
                write_result(args.name, {"size": args.size, "corpus_seed": args.corpus_seed,
                                       "seeds": args.seeds, "overrides": args.overrides,
                                       "complete": len(runs) == len(args.profiles) * len(
                                           args.seeds), "runs": runs, "summary": summary})
        for profile, modes in _summary(runs, args.profiles).items():
            print(profile, {m: f"{v['mean_of_means']:.3f} (min {v['min_mean']:.3f}, "
                               f"max std {v['max_std']:.3f})" if isinstance(v, dict) else v
                            for m, v in modes.items()})
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
