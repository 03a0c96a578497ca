"""Recording, sync and duplicate checks (issue 20): precision/recall against planted truth.

Writes a defect-planted synthetic corpus (``--size full-defects`` by default: the `full`
corpus plus planted defects, ground truth in ``planted_defects.csv``), runs ``profy
features`` on it (fresh process, ``--workers 2``, cold cache), then scores every per-take
rule of ``data.recording`` / ``data.sync`` (thresholds of the default criteria file) and
the near-duplicate pairs of ``data.duplicates`` against the truth. Also measured:

- seconds per take the recording checks add to ``profy features``: CPU time of
  :func:`profy.quality.take_quality` per take in one process (``process_time``, robust to
  other load), beside the wall-clock time per take of the whole ``profy features`` run;
- the sync estimate's error against the true sensor lead, on takes without a sync defect.

Ground truth where the plant alone does not decide it: a take's true peak over the
ceiling is judged by a reference meter (the whole take 16x oversampled with scipy's
``resample_poly``), since some clean synthetic takes are loud enough to read over -1
dBTP; the noise-floor rule is scored without the clipped takes (``clip_hard``,
``clip_normalised``), whose room noise the generator scaled by an unrecorded gain.

    .venv/bin/python benchmarks/bench_quality.py [--size full-defects] [--seed 0]
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import write_result  # noqa: E402

from profy.data._synth_config import FLAGGED_BY  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

TRUTH = FLAGGED_BY  # rule -> the planted defects that must break it


def _score(flagged: set[str], truth: set[str]) -> dict:
    tp = len(flagged & truth)
    return {"planted": len(truth), "flagged": len(flagged), "true_positives": tp,
            "precision": tp / len(flagged) if flagged else (1.0 if not truth else 0.0),
            "recall": tp / len(truth) if truth else 1.0,
            "false_positives": sorted(flagged - truth), "missed": sorted(truth - flagged)}


def _criteria() -> dict:
    import yaml

    with open(ROOT / "guardrails" / "criteria" / "default.yaml") as handle:
        return yaml.safe_load(handle)["checks"]


def _reference_true_peak(corpus: Path, sid: str, ceiling: float) -> float:
    """dBTP of the whole take, 16x oversampled: the reference the meter is scored on.

    Only takes whose sample peak is within 3 dB of the ceiling are oversampled (the
    inter-sample overshoot of real audio stays under 3 dB); others return their sample peak.
    """
    import numpy as np
    from scipy.signal import resample_poly

    from profy.data._readers import read_audio

    x = read_audio(corpus / "playdata" / sid / "files" / "sound" / "sound_raw.wav").samples
    peak = float(np.abs(x).max())
    if 20 * np.log10(max(peak, 1e-10)) > ceiling - 3.0:
        peak = max(float(np.abs(resample_poly(x[:, c].astype(np.float64), 16, 1)).max())
                   for c in range(x.shape[1]))
    return 20 * np.log10(max(peak, 1e-10))


def _quality_cpu(corpus: Path, stats) -> dict:
    """CPU seconds of take_quality per take, one process, every take of the stats table."""
    import numpy as np

    from profy.data._readers import read_audio, read_sensor
    from profy.quality import take_quality

    ids = stats.column("sample_id").to_pylist()
    per_take = []
    for sid in ids:
        take = corpus / "playdata" / sid / "files"
        audio = read_audio(take / "sound" / "sound_raw.wav")
        sensor = read_sensor(take / "hackkey" / "hackkey.csv")
        start = time.process_time()
        take_quality(audio.samples, audio.sample_rate, sensor.times, sensor.keys)
        per_take.append(time.process_time() - start)
    arr = np.asarray(per_take)
    return {"takes": len(arr), "mean_s": float(arr.mean()), "median_s": float(np.median(arr)),
            "p95_s": float(np.quantile(arr, 0.95))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="full-defects")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (kept)")
    args = parser.parse_args(argv)
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    from guardrails.checks.data_quality_recording import (
        RECORDING_RULES,
        SYNC_RULES,
        failing_takes,
    )
    from profy.data._synth import synthesize_corpus
    from profy.quality.fingerprint import from_bytes, near_duplicates

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-quality-"))
    corpus, feats = work / "corpus", work / "features"
    start = time.perf_counter()
    summary = synthesize_corpus(corpus, size=args.size, seed=args.seed)
    synth_s = time.perf_counter() - start
    cmd = [str(ROOT / ".venv" / "bin" / "profy"), "features", str(corpus), "--out", str(feats),
           "--cache", str(work / "cache"), "--workers", "2"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    features_s = time.perf_counter() - start
    stats = pq.read_table(feats / "audio_stats.parquet")
    truth = pd.read_csv(corpus / "planted_defects.csv", dtype=str, keep_default_na=False)
    truth = truth[truth.playdata_id.isin(set(stats.column("sample_id").to_pylist()))]
    kinds = {r.playdata_id: set(filter(None, r.defects.split(";"))) for r in truth.itertuples()}

    criteria = _criteria()
    rec_params, sync_params = criteria["data.recording"], criteria["data.sync"]
    failing = failing_takes(stats, RECORDING_RULES, rec_params)
    sync_failing = failing_takes(stats, SYNC_RULES, sync_params)
    failing["sync"] = sorted(set().union(*sync_failing.values()))
    checks = {}
    ceiling = float(rec_params["max_true_peak_dbtp"])
    over = {sid for sid in kinds if _reference_true_peak(corpus, sid, ceiling) > ceiling}
    clipped = {sid for sid, k in kinds.items() if k & {"clip_hard", "clip_normalised"}}
    for rule, planted in TRUTH.items():
        expected = {sid for sid, k in kinds.items() if k & planted}
        flagged = set(failing[rule])
        if rule == "true_peak.max":
            expected |= over
        if rule == "noise_floor.max":
            expected, flagged = expected - clipped, flagged - clipped
        checks[rule] = _score(flagged, expected)

    prints = {sid: from_bytes(fp) for sid, fp in zip(stats.column("sample_id").to_pylist(),
                                                      stats.column("fingerprint").to_pylist(),
                                                      strict=True)}
    start = time.perf_counter()
    pairs = near_duplicates(prints, max_ber=float(criteria["data.duplicates"]["max_ber"]))
    match_s = time.perf_counter() - start
    found = {(p.a, p.b) for p in pairs}
    planted_pairs = {tuple(sorted((r.playdata_id, r.dup_of))) for r in truth.itertuples()
                     if r.dup_of and r.dup_of in prints}
    checks["duplicates (pairs)"] = _score(found, planted_pairs)
    checks["duplicates (pairs)"]["ber_of_found"] = sorted(round(p.ber, 3) for p in pairs)

    lead = dict(zip(truth.playdata_id, truth.sensor_lead_s.astype(float), strict=True))
    offsets = dict(zip(stats.column("sample_id").to_pylist(),
                       stats.column("sync_offset_s").to_pylist(), strict=True))
    errors = np.asarray([offsets[s] - lead[s] for s in lead if offsets.get(s) is not None
                         and "sync_offset" not in kinds[s] and not kinds[s] & {"duplicate"}])
    n = stats.num_rows
    quality_cpu = _quality_cpu(corpus, stats)
    write_result("quality", {
        "command": "python benchmarks/bench_quality.py " + shlex.join(argv or sys.argv[1:]),
        "corpus": {"size": args.size, "seed": args.seed, "takes_on_disk": summary.n_takes,
                   "takes_checked": n, "synth_s": synth_s},
        "checks": checks,
        "targets": {"precision": 0.95, "recall": 0.95},
        "all_meet_target": all(c["precision"] >= 0.95 and c["recall"] >= 0.95
                               for c in checks.values()),
        "sync_error_s": {"takes": int(errors.size), "median": float(np.median(errors)),
                         "mean_abs": float(np.abs(errors).mean()),
                         "p95_abs": float(np.quantile(np.abs(errors), 0.95)),
                         "max_abs": float(np.abs(errors).max())},
        "features": {"command": shlex.join(cmd), "wall_s": features_s,
                     "wall_s_per_take": features_s / n,
                     "quality_cpu_s_per_take": quality_cpu,
                     "added_share_of_wall": quality_cpu["mean_s"] / 2 / (features_s / n)},
        "duplicate_matching_s": match_s,
    })
    for name, c in checks.items():
        print(f"{name:24s} precision {c['precision']:.3f} recall {c['recall']:.3f} "
              f"({c['true_positives']}/{c['planted']} planted, {c['flagged']} flagged)")
    print(f"take_quality: {quality_cpu['mean_s'] * 1000:.0f} ms CPU per take; profy features "
          f"{features_s / n * 1000:.0f} ms wall per take (2 workers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
