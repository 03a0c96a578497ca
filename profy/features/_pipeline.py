"""``profy features``: features for every take of a corpus, cached, with a stats table.

Per take: hash both input files, look the features up in the content-addressed cache
(:mod:`profy.features._cache`), compute and store them on a miss, and emit one row of
``audio_stats.parquet``. Takes run in worker processes (``spawn``: torch and ``fork``
do not mix) with one torch thread each, so ``--workers 2`` uses both cores.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from profy.config import FeatureConfig, config_hash, from_dict, to_dict
from profy.contract.atomic import write_parquet_atomic
from profy.contract.layout import AUDIO_STATS_FILE, FEATURE_INDEX_FILE
from profy.contract.schemas import AUDIO_STATS_SCHEMA, FEATURE_INDEX_SCHEMA, QUALITY_FIELDS
from profy.features._cache import (
    HASH_MEMO_FILE,
    CacheStats,
    FeatureCache,
    HashMemo,
    cache_key,
)
from profy.features._shard import Shard, shard_rows
from profy.quality.take import from_arrays, take_quality, to_arrays

__all__ = ["FeatureRun", "FeatureStore", "compute_features"]

# What an entry stores; scalars ride along as a small float64 vector.
_SCALARS = ("audio_frames", "sensor_frames", "nonzero_frames", "peak", "duration_s", "finite")

_WORKER_STATE: dict[str, Any] = {}  # per-process extractor, built once per worker


@dataclass(frozen=True)
class FeatureRun:
    """What ``compute_features`` did and where it wrote."""

    out_dir: Path
    audio_stats_path: Path | None  # None for a ``shard`` run: cache entries only
    index_path: Path | None
    cache_dir: Path
    n_takes: int
    seconds: float
    audio_seconds: float
    cache: CacheStats
    feature_config_hash: str

    @property
    def takes_per_s(self) -> float:
        """Throughput in takes per wall-clock second."""
        return self.n_takes / max(self.seconds, 1e-9)

    @property
    def audio_s_per_s(self) -> float:
        """Seconds of audio processed per wall-clock second."""
        return self.audio_seconds / max(self.seconds, 1e-9)


def _extractor(cfg_dict: dict[str, Any]) -> Any:
    from profy.features._extract import FeatureExtractor  # imports torch: first miss only

    key = config_hash(cfg_dict)
    if _WORKER_STATE.get("key") != key:
        if _WORKER_STATE.get("worker"):
            import torch

            torch.set_num_threads(1)  # one process per core beats two threads per take here
        _WORKER_STATE.update(key=key, extractor=FeatureExtractor(from_dict(FeatureConfig,
                                                                           cfg_dict)))
    return _WORKER_STATE["extractor"]


def worker_policy(cfg_dict: dict[str, Any]) -> Any:
    """The input policy of a feature config, built once per process (no torch)."""
    from profy.data._policy import InputPolicy

    key = ("policy", config_hash(cfg_dict))
    if key not in _WORKER_STATE:
        _WORKER_STATE[key] = InputPolicy.from_features(from_dict(FeatureConfig, cfg_dict))
    return _WORKER_STATE[key]


# One compute thread per worker process, for every library that starts its own pool:
# with N workers on N cores, each BLAS also starting N threads, the threads spin-wait on
# each other. On 2 cores numpy's OpenBLAS (the recording checks' matmuls) made each take
# 1.9x slower in the pool than alone (231 vs 123 ms); held to one thread: 115-120 ms.
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _init_worker() -> None:
    from threadpoolctl import threadpool_limits

    for name in _THREAD_ENV:  # libraries loaded later (scipy's own OpenBLAS) read these
        os.environ[name] = "1"
    threadpool_limits(limits=1)  # those loaded already (numpy's OpenBLAS)
    _WORKER_STATE["worker"] = True  # torch, imported by the first miss, gets one thread


def _stats_row(sample_id: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """One ``audio_stats.parquet`` row from a take's cached arrays."""
    scal = dict(zip(_SCALARS, arrays["scalars"].tolist(), strict=True))
    return {"sample_id": sample_id, "frames": int(arrays["audio_mask"].shape[0]),
            "audio_frames": int(scal["audio_frames"]),
            "nonzero_frames": int(scal["nonzero_frames"]),
            "valid_frames": int(arrays["audio_mask"].sum()),
            "sensor_frames": int(scal["sensor_frames"]),
            **{name: float(v) for name, v in zip(QUALITY_FIELDS, arrays["quality"].tolist(),
                                                 strict=True)},
            "peak": float(scal["peak"]), "duration_s": float(scal["duration_s"]),
            "finite": bool(scal["finite"]), **(from_arrays(arrays) or {})}


@dataclass(frozen=True)
class _Job:
    """One take to featurize: where its files are and what its entry must carry."""

    sample_id: str
    audio_file: Path
    sensor_file: Path
    key: str
    meta: dict[str, str]
    cfg_dict: dict[str, Any]
    cache_dir: str

    @property
    def take_dir(self) -> Path:
        """The take's folder (``playdata/<id>``), for messages."""
        return self.audio_file.parent.parent.parent

    @property
    def index_row(self) -> dict[str, str]:
        return {"sample_id": self.sample_id, "cache_key": self.key,
                "audio_sha256": self.meta["audio_sha256"],
                "sensor_sha256": self.meta["sensor_sha256"]}


def _plan_job(root: Path, row: dict[str, Any], cfg_dict: dict[str, Any], cfg_hash: str,
              cache_dir: str, memo: HashMemo) -> _Job:
    """Resolve a take's files (inside the root) and its content-addressed key."""
    from profy.data._paths import check_inside

    audio_file = check_inside(root, root / row["audio_path"])
    sensor_file = check_inside(root, root / row["sensor_path"])
    audio_sha, sensor_sha = memo.sha256(audio_file), memo.sha256(sensor_file)
    meta = {"audio_sha256": audio_sha, "sensor_sha256": sensor_sha,
            "feature_config_hash": cfg_hash, "sample_id": row["sample_id"]}
    return _Job(row["sample_id"], audio_file, sensor_file,
                cache_key(audio_sha, sensor_sha, cfg_hash), meta, cfg_dict, cache_dir)


def _lookup(job: _Job) -> tuple[dict[str, Any] | None, CacheStats]:
    """The stats row of a take whose verified entry is cached, or ``None``."""
    cache = FeatureCache(job.cache_dir)
    arrays = cache.get(job.key, meta=job.meta)
    if arrays is not None and from_arrays(arrays) is None:
        arrays = None  # an entry from before the recording checks: computed again
    return (None if arrays is None else _stats_row(job.sample_id, arrays)), cache.stats


def _compute(job: _Job) -> dict[str, Any]:
    """Compute one take's features and store them (runs in a worker process).

    The files pass the same input policy as in the manifest (:mod:`profy.data._policy`);
    an error the checks did not foresee still names the take's files in one line.
    """
    from profy.data._manifest import check_take_audio, check_take_sensor

    policy = worker_policy(job.cfg_dict)
    audio = check_take_audio(job.audio_file, policy)
    sensor = check_take_sensor(job.sensor_file, policy)
    return compute_take(job, audio, sensor)


def compute_take(job: _Job, audio: Any, sensor: Any) -> dict[str, Any]:
    """Features and recording checks of one take's arrays, stored under ``job.key``.

    Returns:
        The take's ``audio_stats.parquet`` row (small: the arrays stay in the worker).
    """
    from profy.errors import FeatureError, ProfyError

    take = job.take_dir
    try:
        feats = _extractor(job.cfg_dict)(audio.samples, audio.sample_rate, sensor.times,
                                         sensor.keys, source=str(take))
    except ProfyError:
        raise
    except Exception as exc:  # a library error on odd data: one line naming the take
        raise FeatureError(f"{take}: features failed ({type(exc).__name__}: {exc})") from None
    scalars = [feats.audio_frames_real, feats.sensor_frames_real, feats.nonzero_frames,
               feats.peak, audio.duration_s, float(feats.finite)]
    try:  # recording checks on the raw arrays (issue 20): numpy/scipy, ~tens of ms
        recording = to_arrays(take_quality(audio.samples, audio.sample_rate, sensor.times,
                                           sensor.keys))
    except Exception as exc:  # a library error on odd data: one line naming the take
        raise FeatureError(f"{take}: recording checks failed ({type(exc).__name__}: {exc})"
                           ) from None
    arrays = {"logmel": feats.logmel, "audio_mask": feats.audio_mask,
              "sensor": feats.sensor, "sensor_mask": feats.sensor_mask,
              "quality": feats.quality, "scalars": np.asarray(scalars, dtype=np.float64),
              **recording}
    FeatureCache(job.cache_dir).put(job.key, arrays, meta=job.meta)
    return _stats_row(job.sample_id, arrays)


def _progress(enabled: bool) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("features"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), disable=not enabled)


def run_jobs(jobs: list[Any], workers: int, advance: Any, fn: Any = _compute
             ) -> Iterable[tuple]:
    """``(job, fn(job))`` for each job, in order: in worker processes, or here for one
    worker. ``fn`` must be a module-level function (the workers import it)."""
    if not jobs:  # all cached: no torch, no workers
        return
    if workers <= 1 or len(jobs) <= 1:
        import torch
        from threadpoolctl import threadpool_limits

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in the workers: same numbers whatever --workers is
        try:
            with threadpool_limits(limits=1):
                for job in jobs:
                    yield job, fn(job)
                    advance()
        finally:
            torch.set_num_threads(threads)
        return
    import multiprocessing as mp
    from concurrent.futures.process import BrokenProcessPool

    from profy.errors import FeatureError

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_init_worker) as pool:
        chunk = max(1, len(jobs) // (workers * 8))
        done = 0
        try:
            # A worker's ProfyError arrives here as itself (the classes pickle), so the
            # CLI prints the same one line as with --workers 1.
            for job, row in zip(jobs, pool.map(fn, jobs, chunksize=chunk), strict=True):
                yield job, row
                done += 1
                advance()
        except BrokenProcessPool:
            pending = jobs[done:done + workers * chunk]
            raise FeatureError(
                "a feature worker process died (killed, or out of memory) while computing "
                "one of: " + ", ".join(str(j.take_dir) for j in pending)
                + "; rerun with --workers 1 to see which take") from None


def compute_features(root: str | Path, manifest: pa.Table, out_dir: str | Path, *,
                     cfg: FeatureConfig | None = None, cache_dir: str | Path | None = None,
                     workers: int = 1, progress: bool = False,
                     shard: Shard | None = None) -> FeatureRun:
    """Compute (or reuse) features for every take in ``manifest``.

    Args:
        root: corpus root the manifest's relative paths resolve against.
        manifest: the manifest table (``profy.contract.schemas.MANIFEST_SCHEMA``).
        out_dir: where ``audio_stats.parquet`` and ``feature_index.parquet`` go.
        cfg: feature config. (Default: ``FeatureConfig()``)
        cache_dir: feature cache folder. (Default: ``out_dir/cache``)
        workers: processes; 1 runs in this process. (Default: ``1``)
        shard: only this shard's takes (:mod:`profy.features._shard`), into the cache
            only: no tables are written and the run's paths are ``None``. (Default: all)

    Raises:
        DataError: an input file is unreadable; FeatureError: a take's features cannot be
            computed (e.g. a sensor rate out of tolerance). Nothing is written then.
    """
    cfg = cfg or FeatureConfig()
    out_dir = Path(out_dir)
    cache_dir = (Path(cache_dir) if cache_dir is not None else out_dir / "cache").resolve()
    cfg_dict, cfg_hash = to_dict(cfg), config_hash(cfg)
    rows = manifest.select(["sample_id", "audio_path", "sensor_path", "duration_s"]).to_pylist()
    if shard is not None:  # one pod of an Indexed Job: its takes, into the shared cache
        rows = shard_rows(rows, shard)
    root = Path(root).resolve()
    workers = max(1, min(workers, os.cpu_count() or 1, len(rows) or 1))
    memo = HashMemo(cache_dir / HASH_MEMO_FILE)
    start = time.perf_counter()
    # Phase 1, here on threads (hashing and reads release the GIL): keys and cache hits.
    # Phase 2, worker processes: only the misses, so a fully cached rerun starts none.
    from concurrent.futures import ThreadPoolExecutor

    rows_by_id: dict[str, dict[str, Any]] = {}
    cache_stats, misses = CacheStats(), []
    with _progress(progress) as bar, ThreadPoolExecutor(max_workers=workers) as threads:
        task = bar.add_task("features", total=len(rows))
        jobs = list(threads.map(lambda r: _plan_job(root, r, cfg_dict, cfg_hash,
                                                    str(cache_dir), memo), rows))
        memo.save()
        for job, (row, stats) in zip(jobs, threads.map(_lookup, jobs), strict=True):
            cache_stats.merge(stats)  # a miss or a rejected entry is computed below
            if row is None:
                misses.append(job)
            else:
                rows_by_id[job.sample_id] = row
                bar.advance(task)
        for job, row in run_jobs(misses, workers, lambda: bar.advance(task)):
            rows_by_id[job.sample_id] = row
    stats_rows = [rows_by_id[job.sample_id] for job in jobs]
    index_rows = [job.index_row for job in jobs]
    seconds = time.perf_counter() - start
    if shard is not None:  # the final run without --shard writes the tables
        return FeatureRun(out_dir=out_dir.resolve(), audio_stats_path=None, index_path=None,
                          cache_dir=cache_dir, n_takes=len(rows), seconds=seconds,
                          audio_seconds=float(sum(r["duration_s"] for r in rows)),
                          cache=cache_stats, feature_config_hash=cfg_hash)
    return write_tables(out_dir, cache_dir, cfg_hash, stats_rows, index_rows, seconds=seconds,
                        audio_seconds=float(sum(r["duration_s"] for r in rows)),
                        cache=cache_stats)


def write_tables(out_dir: Path, cache_dir: Path, cfg_hash: str, stats_rows: list[dict],
                 index_rows: list[dict], *, seconds: float, audio_seconds: float,
                 cache: CacheStats) -> FeatureRun:
    """Write ``audio_stats.parquet`` and ``feature_index.parquet`` (atomically)."""
    stats_table = pa.Table.from_pylist(stats_rows, schema=AUDIO_STATS_SCHEMA)
    index_table = pa.Table.from_pylist(index_rows, schema=FEATURE_INDEX_SCHEMA.with_metadata({
        **FEATURE_INDEX_SCHEMA.metadata, b"feature_config_hash": cfg_hash.encode(),
        b"cache_dir": str(cache_dir.resolve()).encode()}))
    stats_path = write_parquet_atomic(stats_table, out_dir / AUDIO_STATS_FILE)
    index_path = write_parquet_atomic(index_table, out_dir / FEATURE_INDEX_FILE)
    return FeatureRun(out_dir=out_dir.resolve(), audio_stats_path=stats_path.resolve(),
                      index_path=index_path.resolve(), cache_dir=cache_dir.resolve(),
                      n_takes=len(stats_rows), seconds=seconds, audio_seconds=audio_seconds,
                      cache=cache, feature_config_hash=cfg_hash)


class FeatureStore:
    """Read-only view of a corpus's cached features through its ``feature_index.parquet``.

    Entries are loaded one take at a time and verified on every read, so a fold's
    statistics can be fitted by streaming over its training takes.

    Args:
        index_path: a ``feature_index.parquet`` written by :func:`compute_features`.
        cache_dir: the cache folder. (Default: the one recorded in the index)
    """

    def __init__(self, index_path: str | Path, *, cache_dir: str | Path | None = None) -> None:
        from profy.errors import MalformedFileError

        self.index_path = Path(index_path)
        try:
            table = pq.read_table(self.index_path)
        except (OSError, pa.ArrowException) as exc:
            raise MalformedFileError(self.index_path, f"not a readable Parquet file ({exc})"
                                     ) from None
        meta = table.schema.metadata or {}
        if b"feature_config_hash" not in meta or b"cache_dir" not in meta:
            raise MalformedFileError(self.index_path, "not a feature index (metadata missing)")
        self.feature_config_hash = meta[b"feature_config_hash"].decode()
        self.cache = FeatureCache(cache_dir or meta[b"cache_dir"].decode())
        self._rows = {r["sample_id"]: r for r in table.to_pylist()}

    @property
    def sample_ids(self) -> list[str]:
        """Every take in the index, sorted."""
        return sorted(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, sample_id: str) -> dict[str, np.ndarray]:
        """The verified arrays of one take.

        Raises:
            FeatureError: the take is not in the index, or its entry is missing or corrupt.
        """
        from profy.errors import FeatureError

        row = self._rows.get(sample_id)
        if row is None:
            raise FeatureError(f"{self.index_path}: take {sample_id!r} is not in the index")
        arrays = self.cache.get(row["cache_key"], meta={
            "audio_sha256": row["audio_sha256"], "sensor_sha256": row["sensor_sha256"],
            "feature_config_hash": self.feature_config_hash})
        if arrays is None:
            raise FeatureError(f"{self.index_path}: cached features of take {sample_id} are "
                               f"missing or corrupt in {self.cache.root}; rerun `profy features`")
        return arrays
