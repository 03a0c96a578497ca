"""Run-folder shards: each (mode, fold) writes its own files, then the run merges them.

A finished (mode, fold) lives in ``folds/<mode>_fold<K>/``: ``predictions.parquet``,
``epochs.parquet``, (multimodal) ``modality_weights.parquet`` and ``gate_log.parquet``,
and ``result.json``, written LAST: a shard without ``result.json`` is incomplete and is
never merged. Its checkpoint and confusion matrices go straight to their final places
(``checkpoints/``, ``confusion/``), one file per fold. :func:`collect_run` assembles the
run-level files from the shards, so folds trained by separate jobs (or a resumed run)
merge the same way as folds trained in one process.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from profy._io import atomic_write_json, atomic_write_text, write_parquet_atomic
from profy.errors import MalformedFileError, MissingInputError
from profy.schemas import (
    EPOCHS_SCHEMA,
    GATE_LOG_SCHEMA,
    LABELS,
    MODALITY_WEIGHTS_SCHEMA,
    PREDICTIONS_SCHEMA,
)

__all__ = ["SHARD_FILES", "collect_run", "read_shard_result", "shard_dir", "write_confusion",
           "write_shard"]

SHARD_FILES = ("predictions.parquet", "epochs.parquet", "modality_weights.parquet",
               "gate_log.parquet")
_MERGED = {"predictions.parquet": PREDICTIONS_SCHEMA, "epochs.parquet": EPOCHS_SCHEMA,
           "modality_weights.parquet": MODALITY_WEIGHTS_SCHEMA,
           "gate_log.parquet": GATE_LOG_SCHEMA}
_SORT = {"predictions.parquet": ["mode", "fold", "sample_id"],
         "epochs.parquet": ["mode", "fold", "epoch"],
         "modality_weights.parquet": ["fold", "sample_id"],
         "gate_log.parquet": ["fold", "epoch", "batch", "sample_id"]}


def shard_dir(run_dir: str | Path, mode: str, fold: int) -> Path:
    """``run_dir/folds/<mode>_fold<K>``."""
    return Path(run_dir) / "folds" / f"{mode}_fold{int(fold)}"


def write_shard(run_dir: str | Path, mode: str, fold: int, *, tables: dict[str, pa.Table],
                result: dict[str, Any]) -> Path:
    """Write one (mode, fold)'s tables, then its ``result.json`` (the completion marker).

    Args:
        tables: file name (one of :data:`SHARD_FILES`) -> table in its declared schema.
        result: JSON-ready summary (metrics, epochs, seconds, model summary, ...).
    """
    out = shard_dir(run_dir, mode, fold)
    for name, table in tables.items():
        if name not in _MERGED:
            raise ValueError(f"unknown shard file {name!r}; expected one of {SHARD_FILES}")
        if not table.schema.equals(_MERGED[name], check_metadata=True):
            raise ValueError(f"{name}: schema differs from the declared one")
        write_parquet_atomic(table, out / name)
    return atomic_write_json(out / "result.json", {"mode": mode, "fold": int(fold), **result})


def read_shard_result(run_dir: str | Path, mode: str, fold: int) -> dict[str, Any]:
    """The ``result.json`` of a finished shard.

    Raises:
        MissingInputError: the shard never finished (no ``result.json``).
        MalformedFileError: it is not readable JSON.
    """
    path = shard_dir(run_dir, mode, fold) / "result.json"
    if not path.is_file():
        raise MissingInputError(path, f"shard {mode} fold {fold} has not finished")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedFileError(path, f"not readable JSON ({exc})") from None


def write_confusion(run_dir: str | Path, mode: str, fold: int, cm: Any) -> tuple[Path, Path]:
    """``confusion/<mode>_fold<K>.json`` and ``.csv`` for a 2x2 matrix (rows = true label)."""
    from profy.evaluation.results import confusion_csv

    base = Path(run_dir) / "confusion" / f"{mode}_fold{int(fold)}"
    matrix = [[int(v) for v in row] for row in cm]
    json_path = atomic_write_json(base.with_suffix(".json"), {
        "mode": mode, "fold": int(fold), "labels": list(LABELS), "rows": "true label",
        "columns": "predicted label", "matrix": matrix})
    csv_path = atomic_write_text(base.with_suffix(".csv"), confusion_csv(cm))
    return json_path, csv_path


def collect_run(run_dir: str | Path, *, modes: Sequence[str], n_folds: int,
                run_meta: dict[str, Any], slices: pd.DataFrame | None = None
                ) -> dict[str, Any]:
    """Merge every finished shard into the run-level artifacts and ``complete_results.json``.

    Writes ``predictions.parquet``, ``epochs.parquet``, ``modality_weights.parquet``,
    ``gate_log.parquet`` (the last two empty, schema intact, without a multimodal mode),
    ``model_summary.json`` (mode -> ``model.summary()``) and ``complete_results.json``.
    Per-piece scores use ``slices`` (``sample_id, piece``), else the run's ``splits.parquet``.

    Raises:
        MissingInputError: a (mode, fold) shard has not finished.

    Returns:
        dict: the complete results object.
    """
    from profy.evaluation.results import build_complete_results, write_complete_results

    run_dir = Path(run_dir)
    results = {(m, k): read_shard_result(run_dir, m, k) for m in modes for k in range(n_folds)}
    for name, schema in _MERGED.items():
        parts = [pq.read_table(p) for (m, k) in results
                 if (p := shard_dir(run_dir, m, k) / name).is_file()]
        table = pa.concat_tables(parts) if parts else schema.empty_table()
        frame = table.to_pandas()
        if len(frame):
            if name in ("predictions.parquet", "epochs.parquet"):
                frame["_m"] = frame["mode"].map({m: i for i, m in enumerate(modes)})
                frame = frame.sort_values(["_m", *_SORT[name][1:]], kind="stable").drop(
                    columns="_m")
            else:
                frame = frame.sort_values(_SORT[name], kind="stable")
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        write_parquet_atomic(table.replace_schema_metadata(schema.metadata), run_dir / name)
    summaries = {m: results[(m, 0)].get("model_summary", {}) for m in modes}
    atomic_write_json(run_dir / "model_summary.json", summaries)
    predictions = pq.read_table(run_dir / "predictions.parquet").to_pandas()
    if slices is None and (run_dir / "splits.parquet").is_file():
        splits = pq.read_table(run_dir / "splits.parquet", columns=["sample_id", "piece"])
        slices = splits.to_pandas().drop_duplicates("sample_id").reset_index(drop=True)
    obj = build_complete_results(predictions, modes=list(modes), n_folds=n_folds,
                                 run_meta=run_meta, slices=slices, std_warning=0.05)
    write_complete_results(obj, run_dir / "complete_results.json")
    return obj
