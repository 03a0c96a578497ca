"""Run-folder shards: each (mode, fold) writes its own files, then the run merges them.

A finished (mode, fold) lives in ``folds/<mode>_fold<K>/``: ``predictions.parquet``,
``epochs.parquet``, (multimodal) ``modality_weights.parquet`` and ``gate_log.parquet``,
and ``result.json``, written LAST: a shard without ``result.json`` is incomplete and is
never merged. Every file is written atomically, so a killed process leaves at most a
``.<name>.<random>.tmp`` leftover (:func:`clean_temp_files`). Its checkpoint and
confusion matrices go straight to their final places (``checkpoints/``, ``confusion/``),
one file per fold. :func:`collect_run` assembles the
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

from profy.config import RunConfig, config_hash, load_profile
from profy.contract.atomic import atomic_write_json, atomic_write_text, write_parquet_atomic
from profy.contract.schemas import (
    EPOCHS_SCHEMA,
    GATE_LOG_SCHEMA,
    LABELS,
    MODALITY_WEIGHTS_SCHEMA,
    PREDICTIONS_SCHEMA,
)
from profy.errors import ConfigError, MalformedFileError, MissingInputError

__all__ = ["SHARD_FILES", "claim_run_dir", "clean_temp_files", "collect_run", "read_shard_result",
           "saved_config", "select_folds", "shard_dir", "write_confusion", "write_shard"]

_SPLIT_COLUMNS = ["sample_id", "player_id", "piece", "label", "fold", "role"]

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


def clean_temp_files(run_dir: str | Path) -> list[Path]:
    """Remove ``.*.tmp`` leftovers of interrupted atomic writes; returns what was removed."""
    removed = []
    for path in sorted(Path(run_dir).rglob(".*.tmp")):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _canonical_splits(splits: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in _SPLIT_COLUMNS if c in splits.columns]
    frame = splits[cols].astype({"fold": "int64"}) if "fold" in cols else splits[cols]
    return frame.sort_values(["fold", "sample_id"], kind="stable").reset_index(drop=True)


def saved_config(run_dir: Path) -> RunConfig:
    """The run's ``config.yaml``, checked against its ``config_hash`` file."""
    yaml_path, hash_path = run_dir / "config.yaml", run_dir / "config_hash"
    for path in (yaml_path, hash_path):
        if not path.is_file():
            raise MissingInputError(path, f"{run_dir} is not a run folder (no {path.name})")
    cfg = load_profile(yaml_path)
    recorded = hash_path.read_text(encoding="utf-8").strip()
    if config_hash(cfg) != recorded:
        raise ConfigError(f"{run_dir}: config.yaml hashes to {config_hash(cfg)} but the run's "
                          f"config_hash is {recorded}; the folder was edited, refusing to "
                          "continue it")
    return cfg


def claim_run_dir(cfg: RunConfig, run_dir: str | Path, splits: pd.DataFrame) -> None:
    """Write ``config.yaml``, ``config_hash`` and ``splits.parquet`` into ``run_dir``, or
    check that the ones already there are the same.

    Raises:
        ConfigError: the folder holds another config (hash) or other splits.
    """
    from profy.data import write_splits

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if (run_dir / "config_hash").is_file() or (run_dir / "config.yaml").is_file():
        saved = saved_config(run_dir)
        if config_hash(saved) != config_hash(cfg):
            raise ConfigError(f"{run_dir} holds a run with config hash {config_hash(saved)}; "
                              f"this job's config hashes to {config_hash(cfg)}. Use another "
                              "--run-dir, or the same config")
    else:
        atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())
        atomic_write_text(run_dir / "config_hash", config_hash(cfg) + "\n")
    split_path = run_dir / "splits.parquet"
    if split_path.is_file():
        saved_splits = pq.read_table(split_path).to_pandas()
        if not _canonical_splits(saved_splits).equals(_canonical_splits(splits)):
            raise ConfigError(f"{split_path}: this job's splits differ from the run's "
                              "(another corpus, seed or fold count); refusing to mix them")
    else:
        write_splits(splits, split_path)


def select_folds(n_folds: int, folds: Sequence[int] | None) -> list[int]:
    """The folds to train: all, or the requested ones (each in ``0 .. n_folds - 1``)."""
    if folds is None:
        return list(range(n_folds))
    chosen = sorted({int(k) for k in folds})
    bad = [k for k in chosen if not 0 <= k < n_folds]
    if bad or not chosen:
        raise ConfigError(f"fold(s) {bad or '(none)'} out of range 0..{n_folds - 1}")
    return chosen
