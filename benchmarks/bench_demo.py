"""The demo's time budget: ``profy demo`` end to end, stage by stage, cold and cached.

Two runs into one output folder in one process: the first computes every feature (cold
cache), the second finds all of them in the content-addressed cache. Each run's stage
breakdown is recorded; the ratio is the features stage cold vs cached. The demo budget is
3 minutes after install on the 2-core machine (issue 5).

    .venv/bin/python benchmarks/bench_demo.py [--size small] [--keep DIR]
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import write_result  # noqa: E402

BUDGET_S = 180.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small")
    parser.add_argument("--keep", type=Path, help="output folder to keep (default: a temp dir)")
    args = parser.parse_args()

    from rich.console import Console

    from profy._demo import run_demo

    out = args.keep or Path(tempfile.mkdtemp(prefix="bench-demo-"))
    quiet = Console(file=io.StringIO(), width=160)  # the stage tables are not the result
    try:
        cold = run_demo(out, size=args.size, console=quiet)
        cold["total"] = sum(cold.values())
        print(f"cold demo: {cold['total']:.1f} s")
        cached = run_demo(out, size=args.size, console=quiet)
        cached["total"] = sum(cached.values())
        print(f"cached demo: {cached['total']:.1f} s")
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)
    write_result("demo", {
        "command": f"bench_demo.py --size {args.size}",
        "cold": {f"{name.replace(' + ', '_').replace(' ', '_')}_s": s for name, s in cold.items()},
        "cached": {f"{name.replace(' + ', '_').replace(' ', '_')}_s": s
                   for name, s in cached.items()},
        "features_cache_speedup": cold["features"] / max(cached["features"], 1e-9),
        "target_total_s": BUDGET_S,
        "within_budget": cold["total"] <= BUDGET_S,
    })


if __name__ == "__main__":
    main()
