"""The replay history: one Parquet row per replay, appended safely, and its change points.

Append protocol (two replays at once never lose a row): take an exclusive
``fcntl.flock`` on ``FILE.lock`` (a separate file, so the lock survives the rename),
read the current table, add the row, write a temporary file in the same folder and
``os.replace`` it over ``FILE``; then release the lock. A reader without the lock sees
either the old or the new file, never half of one.

Change point (documented method, :func:`change_point`): for one series (a kind and a
model tag, in time order) and one metric, every split point ``i`` with at least
``window`` rows on each side is scored by ``|mean(after) - mean(before)| / sigma``
where ``sigma`` is the pooled standard deviation of the two sides, floored at
``min_sigma`` (replays are deterministic, so an unchanged model has zero spread and any
shift would otherwise be infinitely significant). The best-scoring split is flagged when
its score exceeds ``k``. This is a two-window mean-shift test with a known minimum
detectable shift of ``k * min_sigma`` (0.03 F1 by default).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from guardrails.errors import BadInputError

__all__ = ["HISTORY_METRICS", "HISTORY_SCHEMA", "ChangePoint", "append_history", "change_point",
           "history_row", "read_history", "series_change_points"]

HISTORY_METRICS = ("macro_f1", "latency_ms", "baseline_f1")  # the series a trend can follow

HISTORY_SCHEMA = pa.schema([
    pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("kind", pa.string(), nullable=False),        # smoke | benchmark | robustness
    pa.field("tag", pa.string(), nullable=False),         # the replayed model's tag
    pa.field("baseline_tag", pa.string()),
    pa.field("fold", pa.int64()),
    pa.field("model_sha256", pa.string(), nullable=False),
    pa.field("data_sha256", pa.string(), nullable=False),  # take ids + every input array
    pa.field("n_takes", pa.int64(), nullable=False),
    pa.field("macro_f1", pa.float64()),
    pa.field("baseline_f1", pa.float64()),
    pa.field("latency_ms", pa.float64()),
    pa.field("metrics_json", pa.string(), nullable=False),  # every number the replay measured
    pa.field("verdict", pa.string(), nullable=False),       # pass | fail
    pa.field("run_dir", pa.string()),
], metadata={"profy_artifact": "replay_history", "schema_version": "1"})


def history_row(*, kind: str, tag: str, model_sha256: str, data_sha256: str, n_takes: int,
                macro_f1: float | None, latency_ms: float | None, metrics: Mapping[str, Any],
                verdict: str, baseline_tag: str | None = None, fold: int | None = None,
                baseline_f1: float | None = None, run_dir: str | None = None) -> dict[str, Any]:
    """One history row (timestamp now, UTC); ``metrics`` is stored as JSON."""
    from guardrails._result import jsonable

    def num(x: float | None) -> float | None:
        return None if x is None or not math.isfinite(float(x)) else float(x)

    return {"timestamp": dt.datetime.now(dt.UTC), "kind": kind, "tag": tag,
            "baseline_tag": baseline_tag, "fold": fold, "model_sha256": model_sha256,
            "data_sha256": data_sha256, "n_takes": int(n_takes), "macro_f1": num(macro_f1),
            "baseline_f1": num(baseline_f1), "latency_ms": num(latency_ms),
            "metrics_json": json.dumps(jsonable(dict(metrics)), sort_keys=True),
            "verdict": verdict, "run_dir": run_dir}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    with open(lock, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # blocks until the other writer is done
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def read_history(path: str | Path) -> pa.Table:
    """The history table (schema-checked).

    Raises:
        BadInputError: missing, unreadable, or not a replay history.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "no such history file")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise BadInputError(path, f"not a readable Parquet file ({exc})") from None
    missing = [f.name for f in HISTORY_SCHEMA if f.name not in table.column_names]
    if missing:
        raise BadInputError(path, f"not a replay history (lacks {missing})")
    try:
        return table.select(HISTORY_SCHEMA.names).cast(HISTORY_SCHEMA)
    except (pa.ArrowException, ValueError) as exc:
        raise BadInputError(path, f"history columns have the wrong types ({exc})") from None


def append_history(path: str | Path, row: Mapping[str, Any]) -> int:
    """Append ``row`` under the lock, atomically; returns the new row count.

    Raises:
        BadInputError: the folder is not writable, or the existing file is not a history.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(path.parent, f"cannot create the history folder ({exc})") from None
    new = pa.Table.from_pylist([dict(row)], schema=HISTORY_SCHEMA)
    try:
        with _locked(path):
            table = pa.concat_tables([read_history(path), new]) if path.exists() else new
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                pq.write_table(table, tmp)
                with open(tmp, "rb") as handle:
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise BadInputError(path, f"cannot write the history ({exc})") from None
    return table.num_rows


@dataclass(frozen=True)
class ChangePoint:
    """The strongest mean shift of one series.

    Attributes:
        index: first row (position within the series) after the shift.
        before, after: the two windows' means.
        score: ``|after - before| / sigma``.
        flagged: ``score > k``.
    """

    index: int
    before: float
    after: float
    score: float
    flagged: bool


def change_point(values: list[float], *, window: int = 3, k: float = 3.0,
                 min_sigma: float = 0.01) -> ChangePoint | None:
    """Two-window mean-shift test over a time-ordered series (see the module docstring).

    Args:
        values: the metric, oldest first (non-finite values are dropped).
        window: minimum rows on each side of a split. (Default: 3)
        k: flag when the shift exceeds ``k`` sigmas. (Default: 3.0)
        min_sigma: floor of sigma, in the metric's units. (Default: 0.01)

    Returns:
        The best split, or ``None`` when the series is shorter than ``2 * window``.
    """
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if window < 1 or len(xs) < 2 * window:
        return None
    best: ChangePoint | None = None
    for i in range(window, len(xs) - window + 1):
        a, b = xs[:i], xs[i:]
        ma, mb = sum(a) / len(a), sum(b) / len(b)
        ss = sum((x - ma) ** 2 for x in a) + sum((x - mb) ** 2 for x in b)
        sigma = max(math.sqrt(ss / max(len(xs) - 2, 1)), min_sigma)
        score = abs(mb - ma) / sigma
        if best is None or score > best.score:
            best = ChangePoint(i, ma, mb, score, score > k)
    return best


def series_change_points(table: pa.Table, *, metric: str, window: int, k: float,
                         min_sigma: float) -> dict[tuple[str, str], ChangePoint | None]:
    """``(kind, tag) -> ChangePoint | None`` for every series in a history table.

    Rows are put in time order; each (kind, tag) series of ``metric`` (one of
    :data:`HISTORY_METRICS`) is tested by :func:`change_point`.
    """
    rows = sorted(table.to_pylist(), key=lambda r: r["timestamp"])
    series: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        series.setdefault((r["kind"], r["tag"]), []).append(r[metric])
    return {key: change_point(vals, window=window, k=k, min_sigma=min_sigma)
            for key, vals in series.items()}
