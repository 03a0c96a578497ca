"""Parquet audit of a large predictions table: the GX suite on pandas, the same suite on
Spark (local mode), and the same rules written directly in pyarrow compute as a baseline.

One file per size (default 1M and 10M rows: 3 modes x 5 folds x N/15 takes) with three
planted faults (a probability of 1.5, a duplicated prediction, an unknown mode), so every
engine must report the same three failing rules; the figures are for that one run.

    .venv/bin/python benchmarks/bench_audit.py [--rows 1000000 10000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import timed, write_result  # noqa: E402

PLANTED = {"probability.range", "key.unique", "mode.in_set"}


def make_predictions(path: Path, rows: int, *, seed: int = 0) -> Path:
    """Write a predictions.parquet of ``rows`` rows (schema v1) with three planted faults."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from profy.contract.atomic import write_parquet_atomic
    from profy.contract.schemas import MODES, PREDICTIONS_SCHEMA

    rng = np.random.default_rng(seed)
    n_modes, n_folds = len(MODES), 5
    takes = -(-rows // (n_modes * n_folds))
    ids = pa.array([f"{i:024x}" for i in range(takes)], pa.string())
    i = np.arange(rows)
    take, rest = i // (n_modes * n_folds), i % (n_modes * n_folds)
    prob = rng.uniform(0.0, 1.0, rows)
    prob[np.abs(prob - 0.5) < 1e-6] = 0.25
    mode = pc.take(pa.array(MODES, pa.string()), pa.array(rest % n_modes))
    fold = (rest // n_modes).astype("int32")
    pred = (prob > 0.5).astype("int32")
    label = rng.integers(0, 2, rows).astype("int32")
    # planted faults: row 1 out of range, row 2 an unknown mode, last row duplicates row 0
    prob[1], pred[1] = 1.5, 1
    mode = pc.if_else(pa.array(i == 2), pa.scalar("fusion"), mode)
    take[-1], fold[-1] = take[0], fold[0]
    mode = pc.if_else(pa.array(i == rows - 1), pa.scalar(MODES[0]), mode)
    table = pa.Table.from_arrays(
        [mode, pa.array(fold), pc.take(ids, pa.array(take)), pa.array(label), pa.array(prob),
         pa.array(pred)], schema=PREDICTIONS_SCHEMA)
    return write_parquet_atomic(table, path)


def pyarrow_audit(path: Path) -> set[str]:
    """The audit's predictions rules in plain pyarrow compute; returns the failing rule ids."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from guardrails.checks.audit import schema_outcome
    from profy.contract.schemas import MODES

    table = pq.read_table(path)
    failed = set() if schema_outcome("predictions", table.schema).success else {"schema.columns"}
    if table.num_rows == 0:
        failed.add("rows.nonempty")
    for col in table.column_names:
        if table[col].null_count:
            failed.add(f"{col}.not_null")
    checks = {
        "mode.in_set": pc.all(pc.is_in(table["mode"], value_set=pc.cast(list(MODES), "string"))),
        "fold.range": pc.greater_equal(pc.min(table["fold"]), 0),
        "label.range": pc.and_(pc.greater_equal(pc.min(table["label"]), 0),
                               pc.less_equal(pc.max(table["label"]), 1)),
        "probability.range": pc.and_(pc.greater_equal(pc.min(table["probability"]), 0.0),
                                     pc.less_equal(pc.max(table["probability"]), 1.0)),
        "prediction.range": pc.and_(pc.greater_equal(pc.min(table["prediction"]), 0),
                                    pc.less_equal(pc.max(table["prediction"]), 1)),
    }
    p = table["probability"]
    agrees = pc.or_(pc.equal(pc.cast(pc.greater(p, 0.5), "int32"), table["prediction"]),
                    pc.less_equal(pc.abs(pc.subtract(p, 0.5)), 1e-6))
    checks["prediction.matches_probability"] = pc.all(agrees)
    keys = table.select(["mode", "fold", "sample_id"]).group_by(["mode", "fold", "sample_id"])
    checks["key.unique"] = pc.equal(keys.aggregate([]).num_rows, table.num_rows)
    failed |= {rule for rule, ok in checks.items() if not ok.as_py()}
    return failed


def pandas_peak_rss(path: Path) -> int:
    """Peak resident memory (bytes) of a fresh process running the pandas-engine audit."""
    import json
    import subprocess

    proc = subprocess.run([sys.executable, __file__, "--child-pandas-rss", str(path)],
                          capture_output=True, text=True, check=True)
    return int(json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss_bytes"])


def _child_pandas_rss(path: Path) -> None:
    import json
    import resource

    with tempfile.TemporaryDirectory() as tmp:
        gx_audit(path, "pandas", Path(tmp))
    print(json.dumps({"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                      * 1024}))


def _jvm_cpu_s() -> float:
    """CPU seconds (user + system) used so far by this process's Spark JVM, 0 if none."""
    from guardrails.checks import _gx

    session = _gx._STATE.get("spark")
    proc = getattr(getattr(session, "sparkContext", None), "_gateway", None)
    pid = getattr(getattr(proc, "proc", None), "pid", None)
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    """CPU time of this process (all threads) plus its Spark JVM: a figure that a busy,
    shared machine distorts far less than wall-clock time."""
    return time.process_time() + _jvm_cpu_s()


def gx_audit(path: Path, engine: str, report_dir: Path) -> set[str]:
    from guardrails.checks.audit import audit_path

    result = audit_path(path, engine=engine, report_dir=report_dir)
    return set(result.observed["failed_rules"])


def spark_crossover(sizes: dict[str, dict], key: str = "seconds") -> dict | None:
    """Where Spark would overtake the pandas engine, from t = a * rows^b through the two
    largest sizes of each (an extrapolation; ``None`` with fewer than two sizes)."""
    import math

    points = sorted((int(r), e["engines"]) for r, e in sizes.items()
                    if {"pandas", "spark"} <= set(e["engines"]))
    if len(points) < 2:
        return None
    (n1, e1), (n2, e2) = points[-2], points[-1]
    fit = {}
    for engine in ("pandas", "spark"):
        t1, t2 = e1[engine][key], e2[engine][key]
        b = math.log(t2 / t1) / math.log(n2 / n1)
        fit[engine] = {"exponent": b, "seconds_at_largest": t2}
    db = fit["pandas"]["exponent"] - fit["spark"]["exponent"]
    if db <= 0:
        return {"fit": fit, "rows": None}
    ratio = fit["spark"]["seconds_at_largest"] / fit["pandas"]["seconds_at_largest"]
    return {"fit": fit, "rows": int(n2 * ratio ** (1 / db))}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child-pandas-rss":
        _child_pandas_rss(Path(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--engines", nargs="+", default=["pyarrow", "pandas", "spark"])
    parser.add_argument("--keep", type=Path, default=None, help="keep the Parquet files here")
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    work = Path(tempfile.mkdtemp(prefix="bench_audit_"))
    out_dir = args.keep or work
    sizes: dict[str, dict] = {}
    spark_start_s = None
    warmup: dict[str, float] = {}
    load_start = os.getloadavg()[0]
    try:
        # one-off costs (GX import and context, Spark JVM) are measured apart from the audits
        tiny = make_predictions(work / "warmup.parquet", 1000)
        for engine in (e for e in args.engines if e != "pyarrow"):
            if engine == "spark":
                from guardrails.checks._gx import spark_session

                start = time.perf_counter()
                spark_session(work / "spark")
                spark_start_s = time.perf_counter() - start
            warmup[engine] = timed(lambda engine=engine: gx_audit(tiny, engine,
                                                                  work / "warm"))[0][0]
        base_rss = pandas_peak_rss(tiny) if "pandas" in args.engines else None
        for rows in args.rows:
            path = out_dir / f"predictions_{rows}.parquet"
            gen_s, _ = timed(lambda path=path, rows=rows: make_predictions(path, rows))
            entry: dict = {"rows": rows, "file_bytes": path.stat().st_size,
                           "generate_s": gen_s[0], "engines": {},
                           "pandas_peak_rss_bytes": pandas_peak_rss(path)
                           if "pandas" in args.engines else None}
            for engine in args.engines:
                fn = (lambda path=path: pyarrow_audit(path)) if engine == "pyarrow" else (
                    lambda path=path, engine=engine: gx_audit(path, engine, work / engine))
                cpu0 = cpu_seconds()
                seconds, failed = timed(fn)
                cpu_s = cpu_seconds() - cpu0
                entry["engines"][engine] = {"seconds": seconds[0], "cpu_seconds": cpu_s,
                                            "rows_per_s": rows / seconds[0],
                                            "failed_rules": sorted(failed),
                                            "found_planted_faults": failed == PLANTED}
                print(f"{rows:>11,} rows  {engine:<8} {seconds[0]:7.2f} s wall "
                      f"{cpu_s:7.2f} s cpu  failed: "
                      f"{sorted(failed)}", flush=True)
            path.unlink() if args.keep is None else None
            sizes[str(rows)] = entry
        fastest = {r: min(e["engines"].items(), key=lambda kv: kv[1]["seconds"])[0]
                   for r, e in sizes.items()}
        spark_vs_pandas = {r: e["engines"]["pandas"]["seconds"] / e["engines"]["spark"]["seconds"]
                           for r, e in sizes.items()
                           if {"pandas", "spark"} <= set(e["engines"])}
        crossover = {"wall": spark_crossover(sizes), "cpu": spark_crossover(sizes, "cpu_seconds")}
        largest = sizes[str(max(args.rows))]["engines"]
        top = sizes[str(max(args.rows))]
        # marginal memory per row: peak minus that of a 1k-row audit (interpreter, GX)
        per_row = ((top["pandas_peak_rss_bytes"] - base_rss) / top["rows"]
                   if base_rss is not None else 0)
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        payload = {
            "command": "python benchmarks/bench_audit.py " + " ".join(sys.argv[1:]),
            "planted_faults": sorted(PLANTED), "sizes": sizes,
            "spark_session_start_s": spark_start_s,
            "warmup_1k_rows_s": warmup,
            "fastest_engine": fastest,
            "pandas_over_spark_seconds": spark_vs_pandas,
            # power laws t = a * rows^b fitted through the two largest sizes per engine
            "spark_crossover_rows_estimate": crossover,
            "pandas_base_rss_bytes": base_rss,
            "pandas_peak_rss_bytes_per_row": per_row,
            "machine_ram_bytes": ram,
            # linear extrapolation of the measured peak: past this many rows the pandas
            # engine no longer fits this machine's memory and Spark is the way to go
            "pandas_rows_limit_estimate": int(ram / per_row) if per_row else None,
            "target_s": 30.0,
            "fastest_meets_target_at_largest": min(v["seconds"] for v in largest.values()) <= 30,
            "load_average_1m_at_start": load_start,
            "note": "one run per size on a shared 2-core machine (see load averages: wall "
                    "times stretch with other users' work; cpu_seconds = process + Spark JVM "
                    "CPU time is the steadier figure); GX engines timed after a "
                    "1k-row warm-up (GX import/context, Spark session start measured apart); "
                    "Spark runs local[*]; each engine reads the Parquet file itself",
        }
        write_result("audit", payload)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
