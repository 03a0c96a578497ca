"""``guardrails ci`` on a demo run folder: the whole release gate, timed in-process.

Interpreter start is excluded (the timing is around ``guardrails.cli.main``); the first
call also pays the imports (Great Expectations, onnxruntime, scipy), so it is reported
apart from the warm repeats. The run and its ``tags.json`` are copied to a temporary
folder first, so replays append to a throw-away history, not the run's own. Per-check
seconds come from the verdict (``duration_s``), to show where the time goes. Target:
<= 10 s on the 2-core machine (issue 8).

    .venv/bin/python benchmarks/bench_ci.py [RUN] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import spread, write_result  # noqa: E402

TARGET_S = 10.0


def _newest_demo_run() -> Path:
    runs = sorted(Path("demo/runs").glob("experiment_*"))
    if not runs:
        sys.exit("no run given and none under demo/runs: run `make demo` first")
    return runs[-1]


def _copy_run(run: Path, dest: Path) -> Path:
    """The run and its tag registry under ``dest``, tags pointing at the copy."""
    copy = dest / run.name
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("guardrails"))
    tags = run.parent / "tags.json"
    if tags.exists():
        text = tags.read_text().replace(json.dumps(str(run.resolve()))[1:-1], str(copy))
        (dest / "tags.json").write_text(text)
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    run = (args.run or _newest_demo_run()).resolve()

    from guardrails.cli import main as guardrails_main

    seconds, codes = [], []
    with tempfile.TemporaryDirectory(prefix="bench-ci-") as tmp:
        copy = _copy_run(run, Path(tmp))
        for i in range(1 + args.repeats):
            report = Path(tmp) / f"report{i}"
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # the table is not the result
                codes.append(guardrails_main(["ci", str(copy), "--report-dir", str(report)]))
            seconds.append(time.perf_counter() - start)
            print(f"guardrails ci #{i}: {seconds[-1]:.2f} s (exit {codes[-1]})")
        verdict = json.loads((report / "verdict.json").read_text())
    per_check = {c["name"]: round(c.get("duration_s") or 0.0, 3) for c in verdict["checks"]}
    slowest = dict(sorted(per_check.items(), key=lambda kv: -kv[1])[:8])
    write_result("ci", {
        "command": f"bench_ci.py {run} --repeats {args.repeats}",
        "run": str(run),
        "first_call_with_imports": {"median_s": seconds[0], "min_s": seconds[0],
                                    "max_s": seconds[0], "repeats": 1},
        "warm": spread(seconds[1:]),
        "exit_codes": codes,
        "checks": len(per_check),
        "slowest_checks_s": slowest,
        "target_s": TARGET_S,
        "within_target": min(seconds[1:]) <= TARGET_S,
    })


if __name__ == "__main__":
    main()
