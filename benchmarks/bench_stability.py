"""Reported verdict stability vs the empirical pass rate over fresh `profy train` runs.

For each corpus size and seed, synthesizes a corpus with that seed (new players from the
same population), trains the full cross-validation (``train.seed`` = the seed) and runs
the plan gates with their default thresholds. Per gate and size: the mean reported
stability, the empirical pass rate over the seeds (each seed is a fresh evaluation), and
per seed (stability, passed). The stability of seed ``s`` predicts the pass rate of the
*other* seeds, so the table also lists the mean absolute gap between each seed's
stability and the leave-one-out pass rate. With a handful of seeds the pass rate's own
sd is about ``sqrt(p (1 - p) / n)`` (0.2 at 6 seeds): read gaps against it.

    .venv/bin/python benchmarks/bench_stability.py [--sizes small full] [--seeds 0 1 2 3 4 5]
        [--profile mm-audiofix] [--set train.epochs=10 ...]

Writes ``benchmarks/results/stability.json`` (after every run) and ``stability.md``.
Long: one full training per size and seed (the ``small`` size about 2 min each on
2 cores, ``full`` several times that).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import RESULTS, write_result  # noqa: E402

GATES = ("gate.multimodal_f1", "gate.audio_f1", "gate.multimodal_vs_sensor",
         "gate.sensor_weight_share", "gate.slices", "gate.calibration")


def gate_rows(run_dir: Path, seed: int) -> dict[str, dict]:
    """Each plan gate's verdict and reported stability on one run (default thresholds)."""
    from guardrails import RunContext, criteria_from_dict, run_checks

    crit = criteria_from_dict({"version": 1, "checks": {g: {} for g in GATES}})
    with tempfile.TemporaryDirectory() as rep:
        results = run_checks(RunContext(run_dir, report_dir=Path(rep), seed=seed), crit)
    return {r.name: {"passed": bool(r.passed), "stability": r.details.get("stability"),
                     "noise": r.details.get("noise"), "message": r.message}
            for r in results if r.name in GATES}


def summarize(runs: list[dict]) -> dict[str, dict]:
    """Per size and gate: mean stability, pass rate, leave-one-out gap."""
    out: dict[str, dict] = {}
    for size in sorted({r["size"] for r in runs}):
        mine = [r for r in runs if r["size"] == size]
        out[size] = {}
        for gate in GATES:
            rows = [r["gates"][gate] for r in mine if gate in r["gates"]]
            stab = [x["stability"] for x in rows if x["stability"] is not None]
            passed = [x["passed"] for x in rows]
            loo = [abs(x["stability"] - sum(p for j, p in enumerate(passed) if j != i)
                       / (len(passed) - 1))
                   for i, x in enumerate(rows) if x["stability"] is not None and len(rows) > 1]
            out[size][gate] = {
                "n_runs": len(rows), "pass_rate": sum(passed) / len(rows) if rows else None,
                "mean_stability": sum(stab) / len(stab) if stab else None,
                "stability_unknown": len(rows) - len(stab),
                "mean_abs_gap_loo": sum(loo) / len(loo) if loo else None}
    return out


def markdown(summary: dict[str, dict]) -> str:
    lines = ["| size | gate | runs | empirical pass rate | mean reported stability | "
             "mean abs gap (leave-one-out) |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    fmt = (lambda v: "-" if v is None else f"{v:.2f}")  # noqa: E731
    for size, gates in summary.items():
        for gate, s in gates.items():
            lines.append(f"| {size} | `{gate}` | {s['n_runs']} | {fmt(s['pass_rate'])} | "
                         f"{fmt(s['mean_stability'])} | {fmt(s['mean_abs_gap_loo'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["small", "full"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--profile", default="mm-audiofix")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--workers", type=int, default=2, help="feature processes")
    parser.add_argument("--device", default=None, help="train.device (auto|cpu|cuda)")
    parser.add_argument("--name", default="stability", help="results file stem")
    args = parser.parse_args()

    from profy.config import load_profile
    from profy.data import synthesize_corpus
    from profy.training import train

    work = Path(tempfile.mkdtemp(prefix="bench_stability_"))
    runs: list[dict] = []
    try:
        for size in args.sizes:
            for seed in args.seeds:
                corpus = work / f"corpus_{size}_{seed}"
                synthesize_corpus(corpus, size=size, seed=seed, progress=True)
                device = [f"train.device={args.device}"] if args.device else []
                cfg = load_profile(args.profile, [f"train.seed={seed}", *device,
                                                  *args.overrides])
                result = train(cfg, corpus, work / "runs", cache_dir=work / f"cache_{size}",
                               profile=args.profile, skip_bad=True, progress=True,
                               workers=args.workers)
                runs.append({"size": size, "seed": seed, "run_seconds": result.seconds,
                             "gates": gate_rows(result.run_dir, seed)})
                shutil.rmtree(corpus, ignore_errors=True)
                summary = summarize(runs)
                write_result(args.name, {"profile": args.profile, "sizes": args.sizes,
                                         "seeds": args.seeds, "overrides": args.overrides,
                                         "device": args.device or "config",
                                           "complete": len(runs) == len(args.sizes)
                                           * len(args.seeds), "runs": runs,
                                           "summary": summary})
                (RESULTS / f"{args.name}.md").write_text(markdown(summary))
        print(markdown(summarize(runs)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
