"""The train Indexed Job emulated locally against one ``profy train``: wall time, same metrics.

On one synthetic corpus, with the feature cache filled beforehand (both sides then only
read it): one plain ``profy train`` with the train Job's arguments, against every index of
``containers/k8s/train-cv-job.yaml`` started at once as local processes (one per fold, as
tests/k8s_jobs.py builds them) followed by the collect step (``profy collect``). Checks
that ``complete_results.json`` (timing and identity fields aside) and
``predictions.parquet`` are byte-equal, and records both wall times.

    .venv/bin/python benchmarks/bench_k8s.py [--size small] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _common import write_result  # noqa: E402
from k8s_jobs import indexes, load_job, metrics_view, pod_commands, start  # noqa: E402

BIN = Path(sys.executable).parent


def _check(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="profy-bench-k8s-") as tmp:
        work = Path(tmp)
        corpus, cache_claim = work / "corpus", work / "cache"
        _check([str(BIN / "profy"), "synth", "--size", args.size, "--seed", str(args.seed),
                "--out", str(corpus)])
        _check([str(BIN / "profy"), "features", str(corpus), "--out", str(work / "features"),
                "--cache", str(cache_claim / "features")])  # warm cache for both sides
        claims = {"profy-data": corpus, "profy-runs": work / "runs", "profy-cache": cache_claim}
        claims["profy-runs"].mkdir()
        job = load_job("train-cv-job.yaml")
        pods = [pod_commands(job, k, claims, work / f"pod-{k}")[0] for k in indexes(job)]

        single = list(pods[0].argv)
        for flag in ("--only-fold", "--run-dir"):
            at = single.index(flag)
            del single[at:at + 2]
        t0 = time.perf_counter()
        _check([*single, "--out", str(work / "single")])
        single_s = time.perf_counter() - t0
        (single_run,) = (work / "single").glob("experiment_*")

        t0 = time.perf_counter()
        procs = [start(cmd, work / f"pod-{i}.log") for i, cmd in enumerate(pods)]
        codes = [p.wait() for p in procs]
        if any(codes):
            raise SystemExit(f"fold jobs exited {codes}; logs in {work}")
        folds_s = time.perf_counter() - t0
        run_dir = Path(pods[0].argv[pods[0].argv.index("--run-dir") + 1])
        _check([str(BIN / "profy"), "collect", str(run_dir)])
        emulation_s = time.perf_counter() - t0

        ours, theirs = (json.loads((d / "complete_results.json").read_text())
                        for d in (run_dir, single_run))
        same_metrics = metrics_view(ours) == metrics_view(theirs)
        same_predictions = (run_dir / "predictions.parquet").read_bytes() == \
            (single_run / "predictions.parquet").read_bytes()
        n_folds = ours["n_folds"]
    write_result("k8s_emulation", {
        "command": "python benchmarks/bench_k8s.py --size " + args.size,
        "corpus": {"size": args.size, "seed": args.seed},
        "train_job": {"indexes": len(pods), "parallel_processes": len(pods),
                      "args": pods[0].argv[1:]},
        "single_train_s": round(single_s, 2),
        "fold_jobs_s": round(folds_s, 2),
        "fold_jobs_plus_collect_s": round(emulation_s, 2),
        "speedup": round(single_s / emulation_s, 3),
        "complete_results_equal": same_metrics,
        "predictions_byte_equal": same_predictions,
        "n_folds": n_folds,
        "note": "cache warm on both sides; the fold processes share the machine's cores",
    })
    if not (same_metrics and same_predictions):
        raise SystemExit("the emulated Job's results differ from one profy train")


if __name__ == "__main__":
    main()
