"""``profy features ROOT``: check, hash and featurize a corpus in one pass over its files.

``build_manifest`` followed by :func:`~profy.features.compute_features` reads every file
three times and parses every ``hackkey.csv`` twice on a cold corpus: the manifest's checks,
the parent's hashing for the cache keys, then the feature workers. Here a take nobody has
checked yet goes straight to a worker process, which reads and checks both files under
the input policy (:func:`profy.data._manifest.read_take`, the manifest's own check), hashes
them, looks the cache up and computes the features from the arrays it already parsed.
A take the :class:`~profy.data._take_memo.TakeMemo` holds unchanged is not read at all
(its manifest fields and file hashes come from the memos, its features from the cache).

The trade-off: a bad take is reported once every take has been read (not before any
feature is computed), with the same error ``build_manifest`` raises; the good takes'
features are cached by then, so the rerun after the fix computes only what changed.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from profy.config import FeatureConfig, config_hash, to_dict
from profy.data._manifest import Manifest, assemble_manifest, open_corpus, read_take, remembered
from profy.data._paths import audio_path, sensor_path
from profy.data._policy import InputPolicy
from profy.data._take_memo import TAKE_MEMO_FILE, TakeMemo
from profy.errors import MalformedFileError, UnsafePathError
from profy.features._cache import HASH_MEMO_FILE, CacheStats, HashMemo, cache_key, file_sha256
from profy.features._pipeline import (
    FeatureRun,
    _compute,
    _Job,
    _lookup,
    _plan_job,
    _progress,
    compute_take,
    run_jobs,
    worker_policy,
    write_tables,
)
from profy.features._shard import Shard, shard_rows

__all__ = ["featurize_corpus"]


@dataclass(frozen=True)
class _Unchecked:
    """A take no memo vouches for: read, checked, hashed and featurized in a worker."""

    sample_id: str
    root: Path
    cfg_dict: dict[str, Any]
    cfg_hash: str
    cache_dir: str
    known_hashes: tuple | None = None  # ((digest, stamp), (digest, stamp)) from the memo

    @property
    def take_dir(self) -> Path:
        return self.root / "playdata" / self.sample_id


@dataclass(frozen=True)
class _Outcome:
    """What a worker found: the take's check result and, when it passed, its features."""

    checked: tuple  # (row, problem, kind) as build_manifest keeps it
    job: _Job | None = None
    stats_row: dict[str, Any] | None = None
    cache: CacheStats | None = None
    stamps: tuple | None = None  # both files' (size, mtime_ns, inode) before the read


def _stamps(job: _Unchecked) -> tuple | None:
    try:
        return TakeMemo.stamps(audio_path(job.root, job.sample_id),
                               sensor_path(job.root, job.sample_id))
    except UnsafePathError:
        return None  # read_take reports it


def _featurize(job: _Job | _Unchecked) -> _Outcome:
    """One take in a worker: a planned cache miss, or a take read and checked here."""
    if isinstance(job, _Job):  # checked before, hashed by the parent: features only
        return _Outcome(checked=(None, None, None), job=job, stats_row=_compute(job))
    stamps = _stamps(job)
    read = read_take(job.root, job.sample_id, worker_policy(job.cfg_dict))
    if read.row is None:
        return _Outcome(checked=read.checked)
    audio_file = job.root / read.row["audio_path"]
    sensor_file = job.root / read.row["sensor_path"]
    known = job.known_hashes
    if known is not None and stamps is not None and (known[0][1], known[1][1]) == stamps:
        hashes = known[0][0], known[1][0]  # hashed by an earlier run, unchanged since
    else:
        hashes = file_sha256(audio_file), file_sha256(sensor_file)  # from the page cache
    if stamps is None or TakeMemo.stamps(audio_file, sensor_file) != stamps:
        raise MalformedFileError(job.take_dir, "a file of this take changed while it was "
                                               "read; rerun `profy features`")
    meta = {"audio_sha256": hashes[0], "sensor_sha256": hashes[1],
            "feature_config_hash": job.cfg_hash, "sample_id": job.sample_id}
    plan = _Job(job.sample_id, audio_file, sensor_file, cache_key(*hashes, job.cfg_hash),
                meta, job.cfg_dict, job.cache_dir)
    row, stats = _lookup(plan)  # e.g. the memo was lost but the cache was kept
    if row is None:
        row = compute_take(plan, read.audio, read.sensor)
    return _Outcome(checked=read.checked, job=plan, stats_row=row, cache=stats, stamps=stamps)


def featurize_corpus(root: str | Path, out_dir: str | Path, *,
                     labels_path: str | Path | None = None, cfg: FeatureConfig | None = None,
                     cache_dir: str | Path | None = None, workers: int = 2,
                     progress: bool = False, shard: Shard | None = None,
                     skip_bad: bool = False) -> tuple[Manifest, FeatureRun]:
    """Check every labelled take of a corpus and compute (or reuse) its features.

    The same manifest as :func:`~profy.data.build_manifest` (same rows, same errors) and
    the same tables and cache entries as :func:`~profy.features.compute_features`, with
    each file read and parsed once.

    Args:
        root: corpus root holding ``playdata/`` (and ``labels.csv`` by default).
        out_dir: where ``audio_stats.parquet`` and ``feature_index.parquet`` go.
        labels_path: the labels file. (Default: ``<root>/labels.csv``)
        cfg: feature config. (Default: ``FeatureConfig()``)
        cache_dir: feature cache folder, which also holds the take and hash memos.
            (Default: ``out_dir/cache``)
        workers: processes; 1 runs in this process. (Default: ``2``)
        shard: only this shard's takes, into the cache only (no tables).
        skip_bad: leave bad takes out (``Manifest.quarantined``) instead of raising.

    Returns:
        ``(manifest, run)``; ``run``'s paths are ``None`` for a shard.

    Raises:
        DataError: as ``build_manifest`` (without ``skip_bad``, once every take was read);
            FeatureError: a take's features cannot be computed.
    """
    cfg = cfg or FeatureConfig()
    out_dir = Path(out_dir)
    cache_dir = (Path(cache_dir) if cache_dir is not None else out_dir / "cache").resolve()
    cfg_dict, cfg_hash = to_dict(cfg), config_hash(cfg)
    root, labels = open_corpus(root, labels_path)
    ids = list(labels.takes["sample_id"])
    if shard is not None:  # one pod of an Indexed Job: its takes only
        mine = {r["sample_id"] for r in shard_rows([{"sample_id": i} for i in ids], shard)}
        ids = [i for i in ids if i in mine]
    policy = InputPolicy.from_features(cfg)
    memo = TakeMemo(cache_dir / TAKE_MEMO_FILE, policy)
    hash_memo = HashMemo(cache_dir / HASH_MEMO_FILE)
    workers = max(1, min(workers, len(ids) or 1))
    start = time.perf_counter()
    known = {sid: hit[0] for sid in ids if (hit := remembered(root, sid, memo)[0]) is not None}
    jobs: dict[str, _Job] = {}
    stats_rows: dict[str, dict[str, Any]] = {}
    checked: dict[str, tuple] = {sid: (row, None, None) for sid, row in known.items()}
    cache_stats = CacheStats()
    todo: list[_Job | _Unchecked] = []
    with _progress(progress) as bar, ThreadPoolExecutor(max_workers=workers) as threads:
        task = bar.add_task("features", total=len(ids))
        # Known takes: keys from the hash memo, cache hits here (threads; no torch).
        planned = list(threads.map(lambda sid: _plan_job(
            root, {"sample_id": sid, **known[sid]}, cfg_dict, cfg_hash, str(cache_dir),
            hash_memo), list(known)))
        for job, (row, stats) in zip(planned, threads.map(_lookup, planned), strict=True):
            jobs[job.sample_id] = job
            cache_stats.merge(stats)
            if row is None:
                todo.append(job)
            else:
                stats_rows[job.sample_id] = row
                bar.advance(task)
        todo += [_Unchecked(sid, root, cfg_dict, cfg_hash, str(cache_dir),
                            _known_hashes(root, sid, hash_memo))
                 for sid in ids if sid not in known]
        for job, out in run_jobs(todo, workers, lambda: bar.advance(task), fn=_featurize):
            if isinstance(job, _Unchecked):
                checked[job.sample_id] = out.checked
                if out.cache is not None:
                    cache_stats.merge(out.cache)
            if out.job is not None and out.stats_row is not None:
                jobs[job.sample_id], stats_rows[job.sample_id] = out.job, out.stats_row
                if out.stamps is not None:  # a take that passed: remembered for next time
                    _remember(memo, hash_memo, out)
    memo.save()
    hash_memo.save()
    manifest = assemble_manifest(root, labels, [checked[sid] for sid in ids],
                                 skip_bad=skip_bad, ids=ids if shard is not None else None)
    good = manifest.table.column("sample_id").to_pylist()
    seconds = time.perf_counter() - start
    audio_seconds = float(sum(manifest.table.column("duration_s").to_pylist()))
    if shard is not None:  # the final run without --shard writes the tables
        return manifest, FeatureRun(
            out_dir=out_dir.resolve(), audio_stats_path=None, index_path=None,
            cache_dir=cache_dir, n_takes=len(good), seconds=seconds,
            audio_seconds=audio_seconds, cache=cache_stats, feature_config_hash=cfg_hash)
    return manifest, write_tables(out_dir, cache_dir, cfg_hash,
                                  [stats_rows[sid] for sid in good],
                                  [jobs[sid].index_row for sid in good], seconds=seconds,
                                  audio_seconds=audio_seconds, cache=cache_stats)


def _known_hashes(root: Path, sample_id: str, hash_memo: HashMemo) -> tuple | None:
    """Both files' memoised digests and stamps, when the hash memo holds both unchanged."""
    try:
        both = (hash_memo.known(audio_path(root, sample_id)),
                hash_memo.known(sensor_path(root, sample_id)))
    except UnsafePathError:
        return None
    return None if None in both else both


def _remember(memo: TakeMemo, hash_memo: HashMemo, out: _Outcome) -> None:
    """Record a worker-checked take in both memos (each verifies the files are unchanged)."""
    row, _, _ = out.checked
    job = out.job
    memo.put(job.audio_file, job.sensor_file, row, stamps=out.stamps)
    for file, stamp, key in ((job.audio_file, out.stamps[0], "audio_sha256"),
                             (job.sensor_file, out.stamps[1], "sensor_sha256")):
        hash_memo.record(file, job.meta[key], stamp)
