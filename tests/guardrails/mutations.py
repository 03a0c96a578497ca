"""Small mutations of a real run folder, each breaking one thing a guardrail must catch.

Every function takes a *copy* of a run folder (the ``tiny_run`` fixture), rewrites one
artifact with its declared schema (atomically, as profy would), and returns what it
changed so a test can assert the failure names it.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa

from profy.contract import schemas as S
from profy.contract.atomic import write_parquet_atomic

SCHEMAS = {"predictions": S.PREDICTIONS_SCHEMA, "splits": S.SPLITS_SCHEMA,
           "modality_weights": S.MODALITY_WEIGHTS_SCHEMA, "audio_stats": S.AUDIO_STATS_SCHEMA}


def read(run: Path, artifact: str) -> pd.DataFrame:
    return pd.read_parquet(run / f"{artifact}.parquet")


def write(run: Path, artifact: str, frame: pd.DataFrame, schema: pa.Schema | None = None) -> None:
    schema = schema if schema is not None else SCHEMAS[artifact]
    # from_pandas=False keeps NaN a NaN (pandas conversion would turn it into a null)
    table = pa.Table.from_arrays(
        [pa.array(frame[f.name].to_numpy(), type=f.type, from_pandas=False) for f in schema],
        schema=schema)
    write_parquet_atomic(table, run / f"{artifact}.parquet")


# --- audio_stats ----------------------------------------------------------------------
def short_take(run: Path, frames: int = 100) -> str:
    """One take keeps only ``frames`` non-zero log-mel frames (< 120)."""
    df = read(run, "audio_stats")
    df.loc[0, ["nonzero_frames", "valid_frames"]] = frames
    write(run, "audio_stats", df)
    return str(df.loc[0, "sample_id"])


def nan_snr(run: Path) -> str:
    df = read(run, "audio_stats")
    df.loc[1, "snr_db"] = float("nan")
    write(run, "audio_stats", df)
    return str(df.loc[1, "sample_id"])


def noisy_takes(run: Path, fraction: float) -> int:
    """Give ``fraction`` of the takes a negative SNR proxy (below the 0 dB floor)."""
    df = read(run, "audio_stats")
    n = max(1, round(fraction * len(df)))
    df.loc[: n - 1, "snr_db"] = -5.0
    write(run, "audio_stats", df)
    return n


def duplicate_audio_row(run: Path) -> str:
    df = read(run, "audio_stats")
    write(run, "audio_stats", pd.concat([df, df.iloc[[0]]]))
    return str(df.loc[0, "sample_id"])


# --- norm_stats -----------------------------------------------------------------------
def _norm(run: Path, fold: int) -> tuple[Path, dict]:
    path = run / "norm_stats" / f"fold_{fold}.json"
    return path, json.loads(path.read_text())


def _save(run: Path, fold: int, stats: dict, *, update_log: bool = True) -> None:
    """Write fold stats; by default also re-point training.log's NORM_REF at the new bytes,
    as a run that produced them would (so only the intended rule breaks)."""
    path = run / "norm_stats" / f"fold_{fold}.json"
    path.write_text(json.dumps(stats))  # json writes NaN as NaN; a gate must see it
    if update_log:
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        log = run / "training.log"
        log.write_text(re.sub(rf"(NORM_REF fold={fold} .*?sha256=)[0-9a-f]{{64}}",
                              lambda m: m.group(1) + sha, log.read_text()))


def zero_std(run: Path, fold: int = 0) -> None:
    _, stats = _norm(run, fold)
    stats["sensor_std"][3] = 0.0
    _save(run, fold, stats)


def nan_mean(run: Path, fold: int = 0) -> None:
    _, stats = _norm(run, fold)
    stats["audio_mean"][5] = float("nan")
    _save(run, fold, stats)


def other_feature_hash(run: Path, fold: int = 0) -> None:
    _, stats = _norm(run, fold)
    stats["feature_config_hash"] = "0" * 64
    _save(run, fold, stats)


def edit_without_log(run: Path, fold: int = 0) -> None:
    """Change the stats file after the run (its NORM_REF hash no longer matches)."""
    _, stats = _norm(run, fold)
    stats["created_at"] = "edited later"
    _save(run, fold, stats, update_log=False)


def leak_heldout_take(run: Path, fold: int = 0) -> str:
    """Fit fold ``fold``'s statistics on one of its held-out (test) takes too."""
    splits = read(run, "splits")
    leaked = str(splits[(splits.fold == fold) & (splits.role == "test")].sample_id.iloc[0])
    _, stats = _norm(run, fold)
    stats["sample_ids"] = [*stats["sample_ids"], leaked]
    stats["n_samples"] = len(stats["sample_ids"])
    _save(run, fold, stats)
    return leaked


# --- splits ---------------------------------------------------------------------------
def player_on_both_sides(run: Path, fold: int = 0) -> str:
    """Give one test take of ``fold`` the player id of a training take."""
    df = read(run, "splits")
    mine = df[df.fold == fold]
    train_player = mine[mine.role == "train"].player_id.iloc[0]
    test_take = mine[mine.role == "test"].sample_id.iloc[0]
    df.loc[df.sample_id == test_take, "player_id"] = train_player
    write(run, "splits", df)
    return str(train_player)


def take_held_out_twice(run: Path) -> str:
    """A take that is ``test`` in one fold also becomes ``test`` in another."""
    df = read(run, "splits")
    row = df[(df.fold == 0) & (df.role == "test")].iloc[0]
    other = df.index[(df.fold == 1) & (df.sample_id == row.sample_id)][0]
    df.loc[other, "role"] = "test"
    write(run, "splits", df)
    return str(row.sample_id)


# --- predictions / modality weights -----------------------------------------------------
def probability_out_of_range(run: Path) -> None:
    df = read(run, "predictions")
    df.loc[0, ["probability", "prediction"]] = [1.25, 1]
    write(run, "predictions", df)


def duplicate_prediction(run: Path) -> None:
    df = read(run, "predictions")
    write(run, "predictions", pd.concat([df, df.iloc[[3]]]))


def drop_prediction(run: Path, mode: str = "multimodal") -> str:
    df = read(run, "predictions")
    idx = df.index[df["mode"] == mode][-1]  # the last: other mutations edit the first rows
    sample = str(df.loc[idx, "sample_id"])
    write(run, "predictions", df.drop(index=idx))
    return sample


def predict_training_take(run: Path) -> str:
    """A sensor prediction in fold 0 for a take that trained fold 0."""
    df, splits = read(run, "predictions"), read(run, "splits")
    train_take = splits[(splits.fold == 0) & (splits.role == "train")].sample_id.iloc[0]
    idx = df.index[(df["mode"] == "sensor") & (df.fold == 0)][0]
    df.loc[idx, "sample_id"] = train_take
    write(run, "predictions", df)
    return str(train_take)


def weights_not_summing(run: Path) -> None:
    df = read(run, "modality_weights")
    df.loc[2, "audio_weight"] = df.loc[2, "audio_weight"] - 0.1
    write(run, "modality_weights", df)


def fold_as_int64(run: Path) -> None:
    """Write predictions with ``fold`` as int64 instead of the declared int32."""
    df = read(run, "predictions")
    schema = S.PREDICTIONS_SCHEMA.set(1, pa.field("fold", pa.int64(), nullable=False))
    write(run, "predictions", df, schema)


def truncate(run: Path, rel: str, keep: float = 0.5) -> Path:
    path = run / rel
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def takes_as_players(run: Path) -> Path:
    """Give every take its own player id (``splits.parquet``): the tiny corpus holds one
    player per (fold, label), too few to resample; three takes per stratum are enough."""
    splits = read(run, "splits")
    splits["player_id"] = splits["sample_id"]
    write(run, "splits", splits)
    return run
