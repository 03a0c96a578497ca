"""Cross-validation on the CPU as typed, where a training step's time goes, and what
running the folds as parallel processes buys on 2 cores (issue 23).

Three measurements in one run, the feature cache warm for both trainings (they only read it):

1. ``profy train --config mm-audiofix --data CORPUS --out OUT --cache CACHE``: 3 modes x 3
   player-wise folds, one process, ``train.num_threads`` = 2 (the profile's).
2. The named alternative: the three folds as three processes started at once
   (``--only-fold K --run-dir RUN``, what the Kubernetes train Job runs) with
   ``train.num_threads=1`` each, so the machine's 2 cores are not oversubscribed, then
   ``profy collect``. (At the profile's 2 threads, three fold processes on 2 cores spin
   OpenMP threads against each other; it is not measured here: a single fold took ~15x
   longer.) One thread changes the float sums, so the F1s differ within seed noise.
3. One training step (forward, backward, AdamW; batch 16, 560 frames) per mode at 1 and 2
   threads, and torch.profiler's heaviest operators of a multimodal step at 2 threads:
   where the time goes.

    .venv/bin/python benchmarks/bench_train.py [--corpus DIR --cache DIR] [--steps-only]
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "models"))

from _common import corpus_or_synth, spread, write_result  # noqa: E402

BIN = Path(sys.executable).parent
PROFILE = "mm-audiofix"


def _start(argv: list[str], log: Path) -> subprocess.Popen:
    """``argv`` in the background, stdout and stderr to ``log``, no TTY."""
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def _run(argv: list[str], log: Path) -> float:
    """Seconds ``argv`` took; a non-zero exit ends the benchmark naming its log."""
    start = time.perf_counter()
    code = _start(argv, log).wait()
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} exited {code}; log: {log}")
    return time.perf_counter() - start


def _results(run: Path) -> dict:
    return json.loads((run / "complete_results.json").read_text())


def _f1(results: dict) -> dict[str, float]:
    return {m: round(float(v["mean"]["macro_f1"]), 4) for m, v in results["modes"].items()}


def _trainings(corpus: Path, cache: Path, work: Path) -> dict:
    train = [str(BIN / "profy"), "train", "--config", PROFILE, "--data", str(corpus),
             "--cache", str(cache)]
    single_s = _run([*train, "--out", str(work / "single")], work / "single.log")
    (single,) = (work / "single").glob("experiment_*")
    single_results = _results(single)
    print(f"profy train: {single_s:.1f} s")
    shared = work / "folds" / "run"
    n_folds = int(single_results["n_folds"])
    start = time.perf_counter()
    procs = [_start([*train, "--run-dir", str(shared), "--only-fold", str(k),
                     "--set", "train.num_threads=1"], work / f"fold{k}.log")
             for k in range(n_folds)]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"fold processes exited {codes}; logs in {work}")
    _run([str(BIN / "profy"), "collect", str(shared)], work / "collect.log")
    parallel_s = time.perf_counter() - start
    print(f"{n_folds} fold processes at 1 thread + collect: {parallel_s:.1f} s")
    return {"single_train_s": round(single_s, 1),
            "single_train_macro_f1": _f1(single_results),
            "parallel_folds_1_thread_s": round(parallel_s, 1),
            "parallel_folds_1_thread_macro_f1": _f1(_results(shared)),
            "speedup_parallel_vs_single": round(single_s / parallel_s, 3)}


def _steps() -> dict:
    """Training-step milliseconds per mode and thread count, and a multimodal step's profile."""
    import torch
    import torch.nn.functional as F
    from test_model import make_inputs

    from profy.config import ModelConfig
    from profy.models import UnifiedAttentionModel

    torch.use_deterministic_algorithms(True, warn_only=True)  # as training runs

    def stepper(mode: str):
        torch.manual_seed(0)
        model = UnifiedAttentionModel(ModelConfig(), mode).train()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        kw, y = make_inputs(mode, 16, 560, seed=0), torch.tensor([0, 1] * 8)

        def step() -> None:
            loss = F.cross_entropy(model(**kw).logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        return step

    out: dict = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for mode in ("sensor", "audio", "multimodal"):
            step = stepper(mode)
            for _ in range(3):
                step()
            seconds = []
            for _ in range(15):
                t0 = time.perf_counter()
                step()
                seconds.append(time.perf_counter() - t0)
            out.setdefault(mode, {})[f"threads_{threads}_ms"] = round(
                spread(seconds)["median_s"] * 1e3, 1)
    for ms in out.values():
        ms["threads_2_vs_1"] = round(ms["threads_1_ms"] / ms["threads_2_ms"], 2)
    torch.set_num_threads(2)
    step = stepper("multimodal")
    step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                record_shapes=True) as prof:
        for _ in range(5):
            step()
    events = sorted(prof.key_averages(group_by_input_shape=True),
                    key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    top = [{"op": e.key, "input_shapes": str(e.input_shapes)[:120],
            "share": round(e.self_cpu_time_total / total, 3), "calls_per_step": e.count // 5}
           for e in events[:15]]
    print(json.dumps(out, indent=1))
    return {"step_ms": out, "multimodal_step_top_ops": top}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="corpus root (default: synthesize full)")
    parser.add_argument("--cache", type=Path, help="feature cache (default: filled here)")
    parser.add_argument("--steps-only", action="store_true", help="skip the two trainings")
    args = parser.parse_args()
    payload: dict = {"command": "python benchmarks/bench_train.py" + (
        f" --corpus {args.corpus}" if args.corpus else "") + (
        " --steps-only" if args.steps_only else ""), "profile": PROFILE}
    with tempfile.TemporaryDirectory(prefix="profy-bench-train-") as tmp:
        work = Path(tmp)
        if not args.steps_only:
            corpus = corpus_or_synth(args.corpus, work)
            cache = args.cache or work / "cache"
            if args.cache is None:  # warm: both trainings then only read features
                _run([str(BIN / "profy"), "features", str(corpus), "--out",
                      str(work / "features"), "--cache", str(cache)], work / "features.log")
            payload["corpus"] = str(corpus)
            payload.update(_trainings(corpus, cache, work))
        payload.update(_steps())
    payload["note"] = ("warm feature cache on both sides; the alternative runs at 1 thread "
                       "per process (other float sums: F1 within seed noise, not equal)")
    write_result("train" if not args.steps_only else "train_steps", payload)


if __name__ == "__main__":
    main()
