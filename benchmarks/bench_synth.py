"""Synthetic corpus generation and reading: how long `small` and `full` take to write,
and how fast the sensor reader (pyarrow.csv) is against pandas.read_csv on the same files.

    .venv/bin/python benchmarks/bench_synth.py [--keep DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import spread, timed, write_result  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="repeats for `small`")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the full corpus here (bench_features.py can reuse it)")
    args = parser.parse_args()

    import pandas as pd

    from profy.data import build_manifest, read_sensor, synthesize_corpus

    work = Path(tempfile.mkdtemp(prefix="bench_synth_"))
    try:
        small_s, small = timed(lambda: synthesize_corpus(work / "small", size="small", seed=0),
                               repeats=args.repeats)
        full_dir = args.keep or work / "full"
        full_s, full = timed(lambda: synthesize_corpus(full_dir, size="full", seed=0))
        manifest_s, manifest = timed(lambda: build_manifest(full_dir, workers=2))

        sensors = [full_dir / p for p in manifest.table["sensor_path"].to_pylist()[:100]]
        arrow_s, _ = timed(lambda: [read_sensor(p) for p in sensors], repeats=3)
        pandas_s, _ = timed(lambda: [pd.read_csv(p, header=None).to_numpy() for p in sensors],
                            repeats=3)
        payload = {
            "small": {"takes": small.n_takes, "bytes": small.bytes_written, **spread(small_s)},
            "full": {"takes": full.n_takes, "players": full.n_players, "bytes": full.bytes_written,
                     **spread(full_s)},
            "manifest_full": {"workers": 2, **spread(manifest_s)},
            "sensor_reader": {
                "files": len(sensors),
                "pyarrow_csv": spread(arrow_s),
                "pandas_read_csv": spread(pandas_s),
                "speedup_vs_pandas": min(pandas_s) / min(arrow_s),
            },
        }
        write_result("synth", payload)
        print(f"small: {min(small_s):.1f} s ({small.n_takes} takes), full: {full_s[0]:.1f} s "
              f"({full.n_takes} takes, {full.bytes_written / 1e9:.2f} GB), "
              f"manifest of full: {manifest_s[0]:.1f} s, sensor reader "
              f"{payload['sensor_reader']['speedup_vs_pandas']:.1f}x pandas")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
