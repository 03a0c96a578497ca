"""`profy features` end to end as a user types it: cold, fully cached, and cached without
the checked-takes memo (what every cached run did before it: re-read every WAV and CSV).

Each figure is a fresh `profy features ROOT --out OUT --cache CACHE --workers 2` process,
wall clock from launch to exit, on the same corpus in one run. The memo-less alternative
deletes ``CACHE/checked_takes.json`` before each repeat, so the manifest re-reads every
take (the feature cache itself stays warm). The tables each run writes must be equal.

    .venv/bin/python benchmarks/bench_features_cli.py [--corpus DIR] [--size full] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import spread, timed, write_result  # noqa: E402

PROFY = Path(sys.executable).with_name("profy")


def _features(root: Path, out: Path, cache: Path) -> None:
    cmd = [str(PROFY), "features", str(root), "--out", str(out), "--cache", str(cache),
           "--workers", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-2000:]}")


def _tables(out: Path) -> tuple:
    import pyarrow.parquet as pq

    return tuple(pq.read_table(out / name)
                 for name in ("audio_stats.parquet", "feature_index.parquet"))


def _same(a: tuple, b: tuple) -> bool:
    return all(x.equals(y, check_metadata=True) for x, y in zip(a, b, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None,
                        help="an existing corpus (default: synthesize --size)")
    parser.add_argument("--size", default="full")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_features_cli_"))
    try:
        root = args.corpus
        if root is None:
            from profy.data import synthesize_corpus

            root = work / "corpus"
            synthesize_corpus(root, size=args.size, seed=0, progress=True)
        cache = work / "cache"
        cold_s, _ = timed(lambda: _features(root, work / "cold", cache))
        print(f"cold: {cold_s[0]:.1f} s", flush=True)
        memo = cache / "checked_takes.json"
        assert memo.is_file(), "the cold run wrote no checked-takes memo"

        def no_memo() -> None:
            memo.unlink(missing_ok=True)
            _features(root, work / "no_memo", cache)

        no_memo_s, _ = timed(no_memo, repeats=args.repeats)
        print(f"cached without the take memo: {min(no_memo_s):.1f} s", flush=True)
        cached_s, _ = timed(lambda: _features(root, work / "cached", cache),
                            repeats=args.repeats)
        cold = _tables(work / "cold")
        same = _same(cold, _tables(work / "cached")) and _same(cold, _tables(work / "no_memo"))
        interp_s, _ = timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True),
                            repeats=args.repeats)
        import pyarrow.parquet as pq

        n = pq.read_metadata(work / "cold" / "audio_stats.parquet").num_rows
        payload = {
            "command": "profy features ROOT --out OUT --cache CACHE --workers 2",
            "corpus": str(root), "size": args.size if args.corpus is None else "given",
            "takes": n,
            "cold": spread(cold_s),
            "cached": spread(cached_s),
            "cached_without_take_memo": spread(no_memo_s),
            "cached_speedup_vs_without_memo": min(no_memo_s) / min(cached_s),
            "interpreter_start": spread(interp_s),
            "tables_equal": same,
            "targets": {"cold_max_s": 45, "cached_max_s": 3},
        }
        write_result("features_cli", payload)
        print(f"{n} takes: cold {min(cold_s):.1f} s; cached {min(cached_s):.2f} s, without the "
              f"memo {min(no_memo_s):.1f} s ({payload['cached_speedup_vs_without_memo']:.1f}x); "
              f"tables equal: {same}")
        if not same:
            raise SystemExit("the runs wrote different tables")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
