"""``complete_results.json``: build it from predictions, validate it, write and read it.

The file is the run's scoreboard and what release gates read, so it is checked on
every write and every read: the declared schema (:data:`COMPLETE_RESULTS_SCHEMA`),
then cross-field rules that catch tampering and old bugs:

- every mode has exactly ``n_folds`` folds, ``"0"`` .. ``str(n_folds - 1)``;
- each fold's accuracy, per-class scores, macro F1 and weighted F1 equal what its
  confusion matrix gives (so weighted F1 stored as macro F1 is caught);
- ``mean``/``std`` equal ``np.mean``/``np.std(ddof=0)`` of the folds within 1e-9;
- the std(macro F1) warning is present exactly when std exceeds ``std_warning``.

Std convention: population standard deviation over folds (``ddof=0``, numpy's
default, what ``scores.std()`` gives in scikit-learn's cross-validation examples and
what ``training.log`` prints); the file states it as ``"std_ddof": 0``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from profy.contract.atomic import atomic_write_json
from profy.contract.schemas import LABELS, MODES, STD_DDOF
from profy.errors import ConfigError, MalformedFileError, MissingInputError
from profy.evaluation._inputs import (
    PREDICTION_COLUMNS,
    REQUIRED_RUN_KEYS,
    _check_predictions,
    _check_run_meta,
    _check_slices,
)
from profy.evaluation._schema import (
    COMPLETE_RESULTS_SCHEMA,
    RESULTS_SCHEMA_VERSION,
    SUMMARY_METRICS,
    CompleteResults,
    schema_problem,
)
from profy.evaluation.metrics import (
    METRICS,
    _prf_from_confusion,
    confusion_matrix,
    expected_calibration_error,
)

__all__ = [
    "COMPLETE_RESULTS_SCHEMA",
    "ECE_BINS",
    "KNOWN_SCHEMA_VERSIONS",
    "PREDICTION_COLUMNS",
    "REQUIRED_RUN_KEYS",
    "STD_DDOF",
    "ZERO_DIVISION",
    "build_complete_results",
    "confusion_csv",
    "read_complete_results",
    "validate_complete_results",
    "write_complete_results",
]

KNOWN_SCHEMA_VERSIONS = (RESULTS_SCHEMA_VERSION,)
ZERO_DIVISION = 0.0  # a class with no takes/predictions in a fold scores 0, not 1
ECE_BINS = 10
_CLASSES = [0, 1]  # LABELS index; always both, so a one-class fold is still scored on two
_TOL = 1e-9
_STD_PREFIX = "std(macro F1)"


# --- build ------------------------------------------------------------------------------


def _fold_entry(part: pd.DataFrame) -> dict[str, Any]:
    y, pred = part["label"].to_numpy(), part["prediction"].to_numpy()
    cm = confusion_matrix(y, pred, labels=_CLASSES)
    return _scores_from_confusion(cm) | {
        "ece": expected_calibration_error(y, part["probability"].to_numpy(), n_bins=ECE_BINS)}


def _scores_from_confusion(cm: np.ndarray) -> dict[str, Any]:
    """Everything in a fold entry that follows from its 2x2 confusion matrix."""
    precision, recall, f1, support = _prf_from_confusion(cm, ZERO_DIVISION)
    n = int(cm.sum())
    return {
        "n_samples": n,
        "accuracy": float(np.trace(cm) / n),
        "macro_f1": float(np.mean(f1)),
        "weighted_f1": float(np.average(f1, weights=support)),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                             "f1": float(f1[i]), "support": int(support[i])}
                      for i, name in enumerate(LABELS)},
        "confusion_matrix": [[int(v) for v in row] for row in cm],
    }


def _fold_warnings(fold: int, entry: dict[str, Any]) -> list[str]:
    cm = np.asarray(entry["confusion_matrix"])
    out = []
    for i, name in enumerate(LABELS):
        if cm[i].sum() == 0:
            out.append(f"fold {fold}: no {name} takes; {name} recall and F1 are undefined "
                       f"and set to zero_division={ZERO_DIVISION}")
        if cm[:, i].sum() == 0:
            out.append(f"fold {fold}: no take predicted {name}; {name} precision is "
                       f"undefined and set to zero_division={ZERO_DIVISION}")
    return out


def _slice_scores(part: pd.DataFrame) -> dict[str, Any]:
    cm = confusion_matrix(part["label"].to_numpy(), part["prediction"].to_numpy(),
                          labels=_CLASSES)
    scores = _scores_from_confusion(cm)
    return {k: scores[k] for k in ("macro_f1", "accuracy", "n_samples")}


def _std_warning(std: float, threshold: float, n_folds: int) -> str:
    return (f"{_STD_PREFIX} = {std:.4f} > {threshold:g} over {n_folds} folds "
            f"(std_ddof={STD_DDOF})")


def build_complete_results(predictions: pd.DataFrame, *, modes: list[str], n_folds: int,
                           run_meta: dict[str, Any], slices: pd.DataFrame | None = None,
                           std_warning: float = 0.05) -> CompleteResults:
    """Score every (mode, fold) and assemble the ``complete_results.json`` object.

    Args:
        predictions: ``predictions.parquet`` rows: ``mode, fold, sample_id, label``
            (0 amateur / 1 pro), ``probability`` (P(pro)) and ``prediction`` (0/1).
        modes: modes to report, each in :data:`profy.contract.schemas.MODES`.
        n_folds: folds every mode must have, numbered ``0 .. n_folds - 1``.
        run_meta: run metadata, JSON-serializable, holding at least
            :data:`REQUIRED_RUN_KEYS` (``config_hash, git_hash, date, versions, seed``).
        slices: ``sample_id -> piece`` (and ``piece_kind``, else derived from the
            piece name) for per-piece scores pooled over folds. (Default: ``None``)
        std_warning: warn when std(macro F1) over folds exceeds it. (Default: ``0.05``)

    Returns:
        CompleteResults: the object :func:`write_complete_results` accepts.

    Raises:
        ConfigError: a bad argument, a missing column, NaN/None, a label, prediction
            or probability out of range, a mode missing a fold, a take scored twice,
            or slices that do not cover every take.
    """
    if not isinstance(modes, list | tuple) or not modes or len(set(modes)) != len(modes) \
            or any(m not in MODES for m in modes):
        raise ConfigError(f"modes must be distinct names from {list(MODES)}, got {modes!r}")
    if isinstance(n_folds, bool) or not isinstance(n_folds, int | np.integer) or n_folds < 1:
        raise ConfigError(f"n_folds must be an integer >= 1, got {n_folds!r}")
    if isinstance(std_warning, bool) or not isinstance(std_warning, int | float) \
            or not math.isfinite(std_warning) or std_warning < 0:
        raise ConfigError(f"std_warning must be a finite number >= 0, got {std_warning!r}")
    _check_run_meta(run_meta)
    modes, n_folds = list(modes), int(n_folds)
    df = _check_predictions(predictions, modes, n_folds)
    pieces = None if slices is None else _check_slices(slices, df["sample_id"])
    out_modes: dict[str, Any] = {}
    for mode in modes:
        mdf = df[df["mode"] == mode]
        folds, warnings = {}, []
        for k in range(n_folds):
            part = mdf[mdf["fold"] == k]
            if part.empty:
                raise ConfigError(f"mode {mode!r} has no predictions for fold {k} "
                                  f"(n_folds={n_folds}); refusing to write partial results")
            folds[str(k)] = _fold_entry(part)
            warnings += _fold_warnings(k, folds[str(k)])
        values = {m: np.array([folds[str(k)][m] for k in range(n_folds)])
                  for m in SUMMARY_METRICS}
        mean = {m: float(np.mean(v)) for m, v in values.items()}
        std = {m: float(np.std(v, ddof=STD_DDOF)) for m, v in values.items()}
        if std["macro_f1"] > std_warning:
            warnings.insert(0, _std_warning(std["macro_f1"], std_warning, n_folds))
        per_piece: dict[str, Any] = {}
        per_kind: dict[str, Any] = {}
        if pieces is not None:
            joined = mdf.join(pieces, on="sample_id")
            per_piece = {str(p): _slice_scores(g) for p, g in joined.groupby("piece")}
            per_kind = {str(p): _slice_scores(g) for p, g in joined.groupby("piece_kind")}
        out_modes[mode] = {"n_samples": len(mdf), "folds": folds, "mean": mean, "std": std,
                           "per_piece": per_piece, "per_piece_kind": per_kind,
                           "warnings": warnings}
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "run": dict(run_meta),
        "n_folds": n_folds,
        "class_names": list(LABELS),
        "zero_division": ZERO_DIVISION,
        "ece_n_bins": ECE_BINS,
        "std_ddof": STD_DDOF,
        "std_warning": float(std_warning),
        "higher_is_better": {m: METRICS[m].higher_is_better for m in SUMMARY_METRICS},
        "metric_versions": {m: METRICS[m].version for m in SUMMARY_METRICS},
        "modes": out_modes,
        "warnings": [f"{m}: {w}" for m in modes for w in out_modes[m]["warnings"]],
    }


# --- validate ---------------------------------------------------------------------------


def validate_complete_results(obj: Any, *, source: str | Path = "<results>") -> None:
    """Check ``obj`` against the schema and the cross-field rules; name the first problem.

    Args:
        obj: a parsed ``complete_results.json``.
        source: the file it came from, for the message. (Default: ``"<results>"``)

    Raises:
        MalformedFileError: ``source: <dotted.key>: <problem>``, e.g.
            ``"<results>: modes.audio.mean.macro_f1: 0.7 but the folds give 0.65"``.
    """
    if problem := _problem(obj):
        raise MalformedFileError(source, problem)


def _problem(obj: Any) -> str | None:
    if isinstance(obj, dict) and "schema_version" in obj \
            and obj["schema_version"] not in KNOWN_SCHEMA_VERSIONS:
        return (f"schema_version: unknown schema_version {obj['schema_version']!r} "
                f"(known: {list(KNOWN_SCHEMA_VERSIONS)})")
    if problem := schema_problem(obj, COMPLETE_RESULTS_SCHEMA):
        return problem
    for name, direction in obj["higher_is_better"].items():
        if direction != METRICS[name].higher_is_better:
            return f"higher_is_better.{name}: {direction} contradicts the metric registry"
    expected_warnings: list[str] = []
    for mode, block in obj["modes"].items():
        if problem := _mode_problem(f"modes.{mode}", block, obj):
            return problem
        expected_warnings += [f"{mode}: {w}" for w in block["warnings"]]
    if sorted(obj["warnings"]) != sorted(expected_warnings):
        return "warnings: do not match the modes' warnings (prefixed '<mode>: ')"
    return None


def _mode_problem(at: str, block: dict[str, Any], obj: dict[str, Any]) -> str | None:
    n_folds = obj["n_folds"]
    expected = [str(k) for k in range(n_folds)]
    if sorted(block["folds"], key=int) != expected:
        return (f"{at}.folds: has folds {sorted(block['folds'], key=int)}, expected "
                f"{expected} (n_folds={n_folds})")
    for k in expected:
        fold = block["folds"][k]
        if not any(any(row) for row in fold["confusion_matrix"]):
            return f"{at}.folds.{k}.confusion_matrix: all zeros, a fold needs samples"
        truth = _scores_from_confusion(np.asarray(fold["confusion_matrix"], dtype=np.int64))
        if problem := _mismatch(f"{at}.folds.{k}", fold, truth, "the confusion matrix"):
            return problem
    if block["n_samples"] != sum(block["folds"][k]["n_samples"] for k in expected):
        return f"{at}.n_samples: {block['n_samples']} is not the sum over folds"
    for name in SUMMARY_METRICS:
        values = np.array([block["folds"][k][name] for k in expected])
        for stat, ref in (("mean", np.mean(values)), ("std", np.std(values, ddof=STD_DDOF))):
            if abs(block[stat][name] - ref) > _TOL:
                return f"{at}.{stat}.{name}: {block[stat][name]!r} but the folds give {ref!r}"
    for key in ("per_piece", "per_piece_kind"):
        total = sum(s["n_samples"] for s in block[key].values())
        if block[key] and total != block["n_samples"]:
            return f"{at}.{key}: covers {total} takes, the mode has {block['n_samples']}"
    flagged = sum(w.startswith(_STD_PREFIX) for w in block["warnings"])
    if flagged != int(block["std"]["macro_f1"] > obj["std_warning"]):
        return (f"{at}.warnings: std(macro F1) = {block['std']['macro_f1']!r} vs threshold "
                f"{obj['std_warning']!r}, but {flagged} such warnings are present")
    return None


def _mismatch(at: str, stored: Any, truth: Any, what: str) -> str | None:
    """First key where ``stored`` differs from ``truth`` (floats within 1e-9)."""
    if isinstance(truth, dict):
        for key, ref in truth.items():
            if problem := _mismatch(f"{at}.{key}", stored[key], ref, what):
                return problem
        return None
    if isinstance(truth, float):
        ok = abs(stored - truth) <= _TOL
    else:
        ok = stored == truth
    return None if ok else f"{at}: {stored!r} but {what} gives {truth!r}"


# --- files ------------------------------------------------------------------------------


def write_complete_results(obj: CompleteResults, path: str | Path) -> Path:
    """Validate ``obj`` and write it to ``path`` atomically (temp file + rename).

    Raises:
        MalformedFileError: ``obj`` is invalid; nothing is written.
    """
    validate_complete_results(obj, source=path)
    return atomic_write_json(path, obj)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_complete_results(path: str | Path) -> CompleteResults:
    """Read and validate a ``complete_results.json``.

    Raises:
        MissingInputError: no file at ``path``.
        MalformedFileError: not JSON (``NaN``/``Infinity`` included), or invalid.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(path, "complete_results.json not found")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MalformedFileError(path, f"not readable JSON ({exc})") from None
    validate_complete_results(obj, source=path)
    return obj


def confusion_csv(cm: Any, *, labels: Any = LABELS) -> str:
    """A confusion matrix as CSV: header ``true/predicted,<labels>``, one row per true class.

    Args:
        cm: square matrix of non-negative integer counts, rows true, columns predicted.
        labels: class names in matrix order. (Default: ``("amateur", "pro")``)

    Raises:
        ConfigError: ``cm`` is not square, not integral, negative, or does not match labels.

    Example:
        >>> print(confusion_csv([[5, 1], [2, 7]]), end="")
        true/predicted,amateur,pro
        amateur,5,1
        pro,2,7
    """
    arr = np.asarray(cm)
    names = [str(x) for x in labels]
    if arr.shape != (len(names), len(names)) or arr.dtype.kind not in "iuf" \
            or not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr != np.round(arr)):
        raise ConfigError(f"confusion matrix must be {len(names)}x{len(names)} non-negative "
                          f"integer counts for labels {names}, got {arr.tolist()!r}")
    rows = ["true/predicted," + ",".join(names)]
    rows += [f"{name}," + ",".join(str(int(v)) for v in arr[i]) for i, name in enumerate(names)]
    return "\n".join(rows) + "\n"
