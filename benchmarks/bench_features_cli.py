"""`profy features` end to end as a user types it: cold, fully cached, and cached without
the checked-takes memo (what every cached run did before it: re-read every WAV and CSV);
cold against the two-step alternative (`profy data prepare`, then `profy features
--manifest`, which parses every file twice); and a per-stage profile of one take's work.

Each figure is a fresh `profy features ROOT --out OUT --cache CACHE --workers 2` process,
wall clock from launch to exit, on the same corpus in one run. The memo-less alternative
deletes ``CACHE/checked_takes.json`` before each repeat, so the manifest re-reads every
take (the feature cache itself stays warm). The tables each run writes must be equal.

The stage profile runs in this process, one thread (as in a feature worker), over
``--stage-takes`` takes: the seconds per take of each step a cold take goes through, and
the parse-once floor (decoding every WAV and parsing every CSV once, on 2 cores).

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

from _common import corpus_or_synth, spread, timed, write_result  # noqa: E402

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
    """Equal tables and metadata (but the feature index's ``cache_dir``, a run's choice)."""
    def meta(t):
        return {k: v for k, v in (t.schema.metadata or {}).items() if k != b"cache_dir"}

    return all(x.equals(y) and meta(x) == meta(y) for x, y in zip(a, b, strict=True))


def _two_step(root: Path, out: Path, cache: Path) -> None:
    prepare = [str(PROFY), "data", "prepare", str(root), "--out", str(out)]
    done = subprocess.run(prepare, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(prepare)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    cmd = [str(PROFY), "features", str(root), "--out", str(out), "--cache", str(cache),
           "--workers", "2", "--manifest", str(out / "manifest.parquet")]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-2000:]}")


def _stages(root: Path, cache: Path, n_takes: int) -> dict:
    """Seconds per take of each step of a cold take, one thread, on ``n_takes`` takes."""
    import time

    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from profy.config import FeatureConfig, config_hash, to_dict
    from profy.data import InputPolicy
    from profy.data._manifest import check_take_audio, check_take_sensor, open_corpus
    from profy.data._paths import audio_path, sensor_path
    from profy.features._cache import FeatureCache, file_sha256
    from profy.features._extract import FeatureExtractor
    from profy.quality.take import take_quality, to_arrays

    cfg = FeatureConfig()
    extractor, policy = FeatureExtractor(cfg), InputPolicy.from_features(cfg)
    _, labels = open_corpus(root)
    ids = list(labels.takes["sample_id"])[:n_takes + 1]
    steps = ("hash", "decode_audio", "parse_sensor", "resample", "mel_mask_quality",
             "sensor_frames", "recording_checks", "cache_write")
    spent = dict.fromkeys(steps, 0.0)
    torch.set_num_threads(1)
    with threadpool_limits(limits=1), torch.inference_mode():
        for i, sid in enumerate(ids):  # the first take warms up (kernels, imports)
            clock = time.perf_counter
            marks = [clock()]
            a_path, s_path = audio_path(root, sid), sensor_path(root, sid)
            hashes = file_sha256(a_path), file_sha256(s_path)
            marks.append(clock())
            audio = check_take_audio(a_path, policy)
            marks.append(clock())
            sensor = check_take_sensor(s_path, policy)
            marks.append(clock())
            x = torch.from_numpy(np.ascontiguousarray(audio.samples))
            mono = extractor._resample(x.mean(dim=1), audio.sample_rate)
            marks.append(clock())
            power = extractor.log_mel.power(mono)
            logmel, mask = extractor.log_mel.from_power(power), extractor.silence(power)
            marks.append(clock())
            feats = extractor._sensor(sensor.times, sensor.keys, sid, "")
            marks.append(clock())
            rec = to_arrays(take_quality(audio.samples, audio.sample_rate, sensor.times,
                                         sensor.keys))
            marks.append(clock())
            FeatureCache(cache).put(f"{i:064x}", {"logmel": logmel.numpy(),
                                                  "mask": mask.numpy(),
                                                  "sensor": feats["sensor"], **rec},
                                    meta={"audio_sha256": hashes[0],
                                          "sensor_sha256": hashes[1],
                                          "feature_config_hash": config_hash(to_dict(cfg))})
            marks.append(clock())
            if i:
                for step, t0, t1 in zip(steps, marks[:-1], marks[1:], strict=True):
                    spent[step] += t1 - t0
    per_take = {k: v / max(len(ids) - 1, 1) for k, v in spent.items()}
    return {"takes": len(ids) - 1, "threads": 1, "seconds_per_take": per_take,
            "total_per_take_s": sum(per_take.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None,
                        help="an existing corpus (default: synthesize --size)")
    parser.add_argument("--size", default="full")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stage-takes", type=int, default=40,
                        help="takes in the per-stage profile (default: 40)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_features_cli_"))
    try:
        root = corpus_or_synth(args.corpus, work, args.size)
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
        two_step_s, _ = timed(lambda: _two_step(root, work / "two_step", work / "cache2"))
        print(f"cold, two steps (data prepare + features --manifest): {two_step_s[0]:.1f} s",
              flush=True)
        cold = _tables(work / "cold")
        same = _same(cold, _tables(work / "cached")) and _same(cold, _tables(work / "no_memo"))
        same = same and _same(cold, _tables(work / "two_step"))
        stages = _stages(root, work / "stage_cache", args.stage_takes)
        interp_s, _ = timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True),
                            repeats=args.repeats)
        import pyarrow.parquet as pq

        n = pq.read_metadata(work / "cold" / "audio_stats.parquet").num_rows
        payload = {
            "command": "profy features ROOT --out OUT --cache CACHE --workers 2",
            "corpus": str(root), "size": args.size if args.corpus is None else "given",
            "takes": n,
            "cold": spread(cold_s),
            "cold_two_step": spread(two_step_s),
            "cold_speedup_vs_two_step": min(two_step_s) / min(cold_s),
            "stages": stages,
            # decoding every WAV and parsing every CSV once, on 2 cores: the cold run's floor
            "parse_once_floor_s": n * (stages["seconds_per_take"]["decode_audio"]
                                       + stages["seconds_per_take"]["parse_sensor"]) / 2,
            "one_pass_estimate_s": n * stages["total_per_take_s"] / 2,
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
