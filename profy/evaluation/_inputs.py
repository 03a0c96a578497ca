"""Input checks for :func:`profy.evaluation.results.build_complete_results`.

Everything is checked before anything is computed, so a bad predictions table fails
with a ``ConfigError`` naming the column, row or value, never with a half-built file.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from profy.contract.schemas import piece_kind
from profy.errors import ConfigError
from profy.evaluation._schema import COMPLETE_RESULTS_SCHEMA, schema_problem

PREDICTION_COLUMNS = ("mode", "fold", "sample_id", "label", "probability", "prediction")
REQUIRED_RUN_KEYS = tuple(COMPLETE_RESULTS_SCHEMA["properties"]["run"]["required"])


def _plain(values: pd.Series) -> Any:
    """The first value as a plain Python object, so messages read ``2``, not ``np.int64(2)``."""
    first = values.iloc[0]
    return first.item() if isinstance(first, np.generic) else first


def _check_predictions(predictions: pd.DataFrame, modes: list[str], n_folds: int
                       ) -> pd.DataFrame:
    if not isinstance(predictions, pd.DataFrame):
        raise ConfigError(f"predictions must be a pandas DataFrame, got "
                          f"{type(predictions).__name__}")
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ConfigError(f"predictions lack columns {missing} (have "
                          f"{list(predictions.columns)})")
    df = predictions.loc[:, list(PREDICTION_COLUMNS)].reset_index(drop=True)
    for col in PREDICTION_COLUMNS:
        null = df[col].isna()
        if null.any():
            raise ConfigError(f"predictions column {col!r} holds NaN/None at row "
                              f"{int(np.flatnonzero(null)[0])}")
    for col, allowed in (("label", {0, 1}), ("prediction", {0, 1})):
        bad = ~df[col].isin(allowed)
        if bad.any():
            raise ConfigError(f"predictions column {col!r} holds {_plain(df[col][bad])!r}; "
                              f"expected 0 (amateur) or 1 (pro)")
        df[col] = df[col].astype(np.int64)
    prob = pd.to_numeric(df["probability"], errors="coerce").astype(np.float64)
    bad = ~np.isfinite(prob) | (prob < 0) | (prob > 1)
    if bad.any():
        raise ConfigError(f"predictions column 'probability' holds "
                          f"{_plain(df['probability'][bad])!r}; expected P(pro) in [0, 1]")
    df["probability"] = prob
    bad = ~df["fold"].isin(range(n_folds))
    if bad.any():
        raise ConfigError(f"predictions hold fold {_plain(df['fold'][bad])!r}; expected "
                          f"0..{n_folds - 1} for n_folds={n_folds}")
    df["fold"] = df["fold"].astype(np.int64)
    extra = sorted(set(df["mode"]) - set(modes))
    if extra:
        raise ConfigError(f"predictions hold modes {extra} not in modes={modes}")
    dup = df.duplicated(["mode", "sample_id"])
    if dup.any():
        row = df[dup].iloc[0]
        raise ConfigError(f"take {row['sample_id']!r} is predicted twice in mode "
                          f"{row['mode']!r}; each take is held out in exactly one fold")
    return df


def _check_slices(slices: pd.DataFrame, sample_ids: pd.Series) -> pd.DataFrame:
    if not isinstance(slices, pd.DataFrame) or not {"sample_id", "piece"} <= set(slices):
        raise ConfigError("slices must be a DataFrame with columns sample_id, piece "
                          "(and optionally piece_kind)")
    out = slices.copy()
    if "piece_kind" not in out:
        try:
            out["piece_kind"] = out["piece"].map(piece_kind)
        except (ValueError, AttributeError) as exc:
            raise ConfigError(f"slices: {exc}") from None
    out = out[["sample_id", "piece", "piece_kind"]].drop_duplicates()
    if out.isna().any().any():
        raise ConfigError("slices hold NaN/None in sample_id, piece or piece_kind")
    dup = out["sample_id"].duplicated()
    if dup.any():
        raise ConfigError(f"slices give take {out['sample_id'][dup].iloc[0]!r} two pieces")
    uncovered = sorted(set(sample_ids) - set(out["sample_id"]))
    if uncovered:
        raise ConfigError(f"slices miss {len(uncovered)} predicted takes, e.g. "
                          f"{uncovered[0]!r}")
    return out.set_index("sample_id")


def _check_run_meta(run_meta: Any) -> None:
    if not isinstance(run_meta, dict):
        raise ConfigError(f"run_meta must be a dict, got {type(run_meta).__name__}")
    missing = [k for k in REQUIRED_RUN_KEYS if k not in run_meta]
    if missing:
        raise ConfigError(f"run_meta lacks {missing} (has {sorted(run_meta)})")
    try:
        json.dumps(run_meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"run_meta is not JSON-serializable: {exc}") from None
    if problem := schema_problem(run_meta, COMPLETE_RESULTS_SCHEMA["properties"]["run"],
                                 "run"):
        raise ConfigError(f"run_meta: {problem}")
