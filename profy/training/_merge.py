"""Merging a run folder's finished (mode, fold) shards into the run-level files.

Folds trained in one process, by separate ``--only-fold`` jobs or across a resume all
merge here, the same way: each shard's tables are concatenated, sorted by the mode order
of the config and then by fold (and epoch, batch, take), and written in their declared
schemas; ``complete_results.json`` is built from the merged predictions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from profy.contract.atomic import atomic_write_json, write_parquet_atomic
from profy.contract.layout import (
    COMPLETE_RESULTS_FILE,
    EPOCHS_FILE,
    GATE_LOG_FILE,
    MODALITY_WEIGHTS_FILE,
    MODEL_SUMMARY_FILE,
    PREDICTIONS_FILE,
    SHARD_RESULT_FILE,
    SPLITS_FILE,
    shard_dir,
)
from profy.contract.schemas import (
    EPOCHS_SCHEMA,
    GATE_LOG_SCHEMA,
    MODALITY_WEIGHTS_SCHEMA,
    PREDICTIONS_SCHEMA,
)
from profy.errors import MalformedFileError, MissingInputError

__all__ = ["MERGED_SCHEMAS", "merge_shards", "read_shard_result"]

# Each shard table's declared schema and the order the merged rows are sorted in.
MERGED_SCHEMAS = {PREDICTIONS_FILE: PREDICTIONS_SCHEMA, EPOCHS_FILE: EPOCHS_SCHEMA,
                  MODALITY_WEIGHTS_FILE: MODALITY_WEIGHTS_SCHEMA,
                  GATE_LOG_FILE: GATE_LOG_SCHEMA}
_SORT = {PREDICTIONS_FILE: ["mode", "fold", "sample_id"],
         EPOCHS_FILE: ["mode", "fold", "epoch"],
         MODALITY_WEIGHTS_FILE: ["fold", "sample_id"],
         GATE_LOG_FILE: ["fold", "epoch", "batch", "sample_id"]}


def read_shard_result(run_dir: str | Path, mode: str, fold: int) -> dict[str, Any]:
    """The ``result.json`` of a finished shard.

    Raises:
        MissingInputError: the shard never finished (no ``result.json``).
        MalformedFileError: it is not readable JSON.
    """
    path = shard_dir(run_dir, mode, fold) / SHARD_RESULT_FILE
    if not path.is_file():
        raise MissingInputError(path, f"shard {mode} fold {fold} has not finished")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedFileError(path, f"not readable JSON ({exc})") from None


def _merge_table(run_dir: Path, name: str, keys: Sequence[tuple[str, int]],
                 modes: Sequence[str]) -> None:
    """Concatenate one table of every shard in ``keys``, sort it, write it under ``name``."""
    schema = MERGED_SCHEMAS[name]
    parts = [pq.read_table(p) for (m, k) in keys
             if (p := shard_dir(run_dir, m, k) / name).is_file()]
    frame = (pa.concat_tables(parts) if parts else schema.empty_table()).to_pandas()
    if len(frame):
        if name in (PREDICTIONS_FILE, EPOCHS_FILE):  # modes in the config's order
            frame["_m"] = frame["mode"].map({m: i for i, m in enumerate(modes)})
            frame = frame.sort_values(["_m", *_SORT[name][1:]], kind="stable").drop(columns="_m")
        else:
            frame = frame.sort_values(_SORT[name], kind="stable")
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    write_parquet_atomic(table.replace_schema_metadata(schema.metadata), run_dir / name)


def merge_shards(run_dir: str | Path, *, modes: Sequence[str], n_folds: int,
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
    for name in MERGED_SCHEMAS:
        _merge_table(run_dir, name, list(results), modes)
    summaries = {m: results[(m, 0)].get("model_summary", {}) for m in modes}
    atomic_write_json(run_dir / MODEL_SUMMARY_FILE, summaries)
    predictions = pq.read_table(run_dir / PREDICTIONS_FILE).to_pandas()
    if slices is None and (run_dir / SPLITS_FILE).is_file():
        splits = pq.read_table(run_dir / SPLITS_FILE, columns=["sample_id", "piece"])
        slices = splits.to_pandas().drop_duplicates("sample_id").reset_index(drop=True)
    obj = build_complete_results(predictions, modes=list(modes), n_folds=n_folds,
                                 run_meta=run_meta, slices=slices, std_warning=0.05)
    write_complete_results(obj, run_dir / COMPLETE_RESULTS_FILE)
    return obj
