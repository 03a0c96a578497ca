"""The numbers behind every plot, computed from a run folder's artifacts (no drawing).

Compute first, then draw: each function here returns plain numbers (dataclasses,
numpy arrays, DataFrames) that tests check against hand-computed values; the drawing
functions in :mod:`profy.visualization.plots` only lay them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from profy.contract.layout import (
    AUDIO_STATS_FILE,
    COMPLETE_RESULTS_FILE,
    MODALITY_WEIGHTS_FILE,
    PREDICTIONS_FILE,
)
from profy.contract.schemas import LABELS, MODES
from profy.errors import MalformedFileError
from profy.visualization._artifacts import read_json, read_table

__all__ = [
    "GateQuality",
    "WeightStats",
    "confusion_by_mode",
    "fold_scores",
    "gate_vs_quality",
    "reliability_by_mode",
    "weight_distribution",
]

WEIGHT_BINS = np.linspace(0.0, 1.0, 41)  # 0.025-wide bins: the gate's floor 0.35 is an edge


@dataclass(frozen=True)
class WeightStats:
    """Sensor-weight distribution of one fold's held-out takes (or ``fold="all"``).

    Attributes:
        values: sensor weights, shape ``(n,)``.
        counts: histogram over :data:`WEIGHT_BINS`, shape ``(40,)``.
        frac_sensor_ge_half: share of takes whose sensor weight is >= 0.5 (the plan's
            "sensor weight >= 0.5 for >= 80% of validation samples").
    """

    fold: int | str
    n: int
    mean: float
    median: float
    std: float
    min: float
    max: float
    frac_sensor_ge_half: float
    values: np.ndarray
    counts: np.ndarray


def _weight_stats(fold: int | str, values: np.ndarray) -> WeightStats:
    counts, _ = np.histogram(values, bins=WEIGHT_BINS)
    return WeightStats(fold=fold, n=int(values.size), mean=float(values.mean()),
                       median=float(np.median(values)), std=float(values.std()),
                       min=float(values.min()), max=float(values.max()),
                       frac_sensor_ge_half=float((values >= 0.5).mean()), values=values,
                       counts=counts.astype(np.int64))


def weight_distribution(run: Path) -> list[WeightStats]:
    """Sensor-weight distribution per fold, then pooled (last entry, ``fold="all"``).

    Reads ``modality_weights.parquet`` (the multimodal held-out takes).

    Raises:
        MalformedFileError: the file has no rows or a weight outside ``[0, 1]``.
    """
    frame = read_table(run, MODALITY_WEIGHTS_FILE, ("fold", "sensor_weight"))
    path = Path(run) / MODALITY_WEIGHTS_FILE
    values = frame["sensor_weight"].to_numpy(dtype=np.float64)
    if values.size == 0:
        raise MalformedFileError(path, "no rows: the run has no multimodal held-out takes")
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MalformedFileError(path, f"sensor_weight {float(values[i])!r} outside [0, 1] "
                                       f"(take {frame['sample_id'].iloc[i]!r})"
                                 if "sample_id" in frame else
                                 f"sensor_weight {float(values[i])!r} outside [0, 1]")
    out = [_weight_stats(int(k), part["sensor_weight"].to_numpy(dtype=np.float64))
           for k, part in frame.groupby("fold", sort=True)]
    return [*out, _weight_stats("all", values)]


def _predictions(run: Path) -> pd.DataFrame:
    frame = read_table(run, PREDICTIONS_FILE,
                       ("mode", "fold", "label", "probability", "prediction"))
    bad = ~frame["label"].isin((0, 1)) | ~frame["prediction"].isin((0, 1))
    if bad.any():
        raise MalformedFileError(Path(run) / PREDICTIONS_FILE,
                                 f"label/prediction outside {{0, 1}} at row {int(bad.idxmax())}")
    return frame


def _modes(frame: pd.DataFrame) -> list[str]:
    present = set(frame["mode"].unique())
    return [m for m in MODES if m in present] + sorted(present - set(MODES))


def confusion_by_mode(run: Path) -> dict[str, np.ndarray]:
    """Confusion matrix per mode, pooled over folds, from ``predictions.parquet``.

    Returns:
        mode -> int64 array of shape ``(2, 2)``: rows true class, columns predicted
        class, in :data:`profy.contract.schemas.LABELS` order (amateur 0, pro 1).
    """
    frame = _predictions(run)
    out = {}
    for mode in _modes(frame):
        part = frame[frame["mode"] == mode]
        cm = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
        np.add.at(cm, (part["label"].to_numpy(int), part["prediction"].to_numpy(int)), 1)
        out[mode] = cm
    return out


def fold_scores(run: Path, metric: str = "macro_f1") -> pd.DataFrame:
    """Per-fold score of every mode as recorded in ``complete_results.json``.

    Returns:
        DataFrame with columns ``mode``, ``fold`` (int), ``score``, ``mean``, ``std``
        (the file's mean/std of that mode), one row per (mode, fold).

    Raises:
        MalformedFileError: the file lacks ``modes`` or a fold lacks ``metric``.
    """
    path = Path(run) / COMPLETE_RESULTS_FILE
    obj = read_json(path)
    modes = obj.get("modes") if isinstance(obj, dict) else None
    if not isinstance(modes, dict) or not modes:
        raise MalformedFileError(path, "no 'modes' in the results")
    rows: list[dict[str, Any]] = []
    for mode in [m for m in MODES if m in modes] + sorted(set(modes) - set(MODES)):
        block = modes[mode]
        try:
            mean, std = float(block["mean"][metric]), float(block["std"][metric])
            for fold, entry in sorted(block["folds"].items(), key=lambda kv: int(kv[0])):
                rows.append({"mode": mode, "fold": int(fold), "score": float(entry[metric]),
                             "mean": mean, "std": std})
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedFileError(path, f"mode {mode!r} has no usable {metric!r} "
                                           f"per fold ({exc!r})") from None
    return pd.DataFrame(rows, columns=["mode", "fold", "score", "mean", "std"])


@dataclass(frozen=True)
class GateQuality:
    """Sensor weight against the audio SNR proxy for each multimodal held-out take.

    Attributes:
        points: DataFrame ``sample_id``, ``fold``, ``sensor_weight``, ``snr_db``
            (from ``audio_stats.parquet``), ``correct``; one row per take.
        pearson_r: correlation of sensor weight with SNR (NaN when either is constant);
            a gate that lowers its audio trust as quality drops has ``r < 0``.
        slope: least-squares change in sensor weight per dB of SNR (NaN likewise).
    """

    points: pd.DataFrame
    pearson_r: float
    slope: float


def gate_vs_quality(run: Path) -> GateQuality:
    """Join ``modality_weights.parquet`` with ``audio_stats.parquet`` on ``sample_id``.

    Raises:
        MalformedFileError: a weighted take has no audio stats row.
    """
    weights = read_table(run, MODALITY_WEIGHTS_FILE,
                         ("fold", "sample_id", "sensor_weight", "correct"))
    stats = read_table(run, AUDIO_STATS_FILE, ("sample_id", "snr_db"))
    stats = stats.drop_duplicates("sample_id")
    merged = weights[["sample_id", "fold", "sensor_weight", "correct"]].merge(
        stats[["sample_id", "snr_db"]], on="sample_id", how="left")
    if merged["snr_db"].isna().any():
        missing = merged.loc[merged["snr_db"].isna(), "sample_id"].iloc[0]
        raise MalformedFileError(Path(run) / AUDIO_STATS_FILE,
                                 f"no SNR for take {missing!r} of modality_weights.parquet")
    x = merged["snr_db"].to_numpy(np.float64)
    y = merged["sensor_weight"].to_numpy(np.float64)
    r = slope = float("nan")
    if x.size >= 2 and np.ptp(x) > 0 and np.ptp(y) > 0:
        r = float(np.corrcoef(x, y)[0, 1])
        slope = float(np.polyfit(x, y, 1)[0])
    return GateQuality(points=merged, pearson_r=r, slope=slope)


def reliability_by_mode(run: Path, n_bins: int = 10) -> dict[str, tuple[pd.DataFrame, float]]:
    """Reliability table and ECE of P(pro) per mode, pooled over folds.

    Uses :func:`profy.evaluation.reliability_table` (equal-width bins, scikit-learn's
    edges), so the numbers match the run's recorded per-fold ECE definition.

    Returns:
        mode -> (table with ``bin, lower, upper, count, mean_predicted,
        fraction_positive, gap``; pooled ECE).
    """
    from profy.evaluation import expected_calibration_error, reliability_table

    frame = _predictions(run)
    out = {}
    for mode in _modes(frame):
        part = frame[frame["mode"] == mode]
        y, p = part["label"].to_numpy(int), part["probability"].to_numpy(np.float64)
        out[mode] = (reliability_table(y, p, n_bins=n_bins),
                     expected_calibration_error(y, p, n_bins=n_bins))
    return out
