"""The one input validator every Profy label metric goes through (scikit-learn's
``_check_targets``), plus option checks shared by the metrics.

Errors are :class:`profy.errors.ConfigError` (a ``ValueError``) naming the bad value.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from profy.errors import ConfigError


def _as_1d(y: Any, name: str) -> np.ndarray:
    """``y`` as a 1-D array of numbers or strings; a ``(n, 1)`` column is flattened."""
    try:
        arr = np.asarray(y)
    except ValueError as exc:  # ragged nested lists
        raise ConfigError(f"{name} is not an array of labels: {exc}") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]  # a column vector, as scikit-learn's column_or_1d accepts
    if arr.ndim != 1:
        raise ConfigError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind == "O":
        # Lists holding None or mixing numbers and strings land here.
        odd = [v for v in arr if not isinstance(v, str | int | float | np.number)]
        if odd or not all(isinstance(v, str) for v in arr):
            bad = odd[0] if odd else next(v for v in arr if not isinstance(v, str))
            raise ConfigError(f"{name} holds {bad!r} ({type(bad).__name__}); "
                              "labels must be all numbers or all strings")
        arr = arr.astype(str)
    if arr.dtype.kind not in "biufUS":
        raise ConfigError(f"{name} has dtype {arr.dtype}; labels must be numbers or strings")
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            i = int(np.flatnonzero(~finite)[0])
            raise ConfigError(f"{name} holds {arr[i]} at index {i}; labels must be finite")
        frac = arr != np.round(arr)
        if frac.any():
            i = int(np.flatnonzero(frac)[0])
            raise ConfigError(f"{name} holds {arr[i]} at index {i}: continuous values are "
                              "not class labels (threshold probabilities first)")
    return arr


def _kind(arr: np.ndarray) -> str:
    return "string" if arr.dtype.kind in "US" else "number"


def _check_targets(y_true: Any, y_pred: Any, labels: Any = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a pair of label vectors and encode them as indices into ``labels``.

    Args:
        y_true: true class labels, 1-D (or a ``(n, 1)`` column), numbers or strings.
        y_pred: predicted class labels, same length and kind as ``y_true``.
        labels: the classes to report, in order. (Default: sorted union of both vectors)

    Returns:
        tuple: ``(true_idx, pred_idx, labels)``: int64 indices of shape ``(n,)`` into
        ``labels``, and ``labels`` as an array of shape ``(n_classes,)``.

    Raises:
        ConfigError: lengths differ, input is empty, not 1-D, NaN/inf, continuous,
            mixes numbers and strings, ``labels`` is empty or repeats a value, or a
            value is not in ``labels``.
    """
    t = _as_1d(y_true, "y_true")
    p = _as_1d(y_pred, "y_pred")
    if len(t) != len(p):
        raise ConfigError(f"y_true and y_pred differ in length: {len(t)} != {len(p)}")
    if len(t) == 0:
        raise ConfigError("y_true and y_pred are empty; metrics need at least one sample")
    if _kind(t) != _kind(p):
        raise ConfigError(f"y_true holds {_kind(t)}s but y_pred holds {_kind(p)}s "
                          f"(e.g. {t[0]!r} vs {p[0]!r})")
    if labels is None:
        lab = np.unique(np.concatenate([t, p]))
    else:
        lab = _as_1d(labels, "labels")
        if len(lab) == 0:
            raise ConfigError("labels is empty; pass None to infer them or list the classes")
        if _kind(lab) != _kind(t):
            raise ConfigError(f"labels hold {_kind(lab)}s but y_true holds {_kind(t)}s "
                              f"(labels={lab.tolist()})")
        if len(np.unique(lab)) != len(lab):
            raise ConfigError(f"labels repeat a class: {lab.tolist()}")
    return _encode(t, lab, "y_true"), _encode(p, lab, "y_pred"), lab


def _encode(y: np.ndarray, labels: np.ndarray, name: str) -> np.ndarray:
    """Indices of ``y``'s values in ``labels`` (which keeps the caller's order)."""
    sorter = np.argsort(labels, kind="stable")
    pos = np.searchsorted(labels, y, sorter=sorter).clip(0, len(labels) - 1)
    idx = sorter[pos]
    missing = labels[idx] != y
    if missing.any():
        bad = y[np.flatnonzero(missing)[0]].item()  # a plain value reads better
        raise ConfigError(f"{name} holds {bad!r}, which is not in labels {labels.tolist()}")
    return idx.astype(np.int64)


def _check_zero_division(zero_division: Any) -> float:
    if isinstance(zero_division, bool | str) or not isinstance(zero_division, int | float) \
            or not (zero_division in (0, 1) or math.isnan(zero_division)):
        raise ConfigError(f"zero_division must be 0.0, 1.0 or nan, got {zero_division!r}")
    return float(zero_division)
