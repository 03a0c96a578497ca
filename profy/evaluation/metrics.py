"""Classification and calibration metrics, on numpy, with scikit-learn's signatures.

Profy cannot depend on scikit-learn at run time (the torch-free ``guardrails`` image
recomputes these numbers and stays slim), so the metrics are implemented here and
tested against scikit-learn, which is a test-only reference.

Naming contract (scikit-learn): ``*_score`` means higher is better, ``*_error`` lower
is better. Data arguments are positional, options keyword-only. Every label metric
goes through one validator, :func:`_check_targets`.

Differences from scikit-learn, all deliberate:

- a value in ``y_true``/``y_pred`` that is not in ``labels`` raises ``ConfigError``
  (scikit-learn silently drops those samples; here a class id 2 is a bug);
- empty inputs raise (a fold without samples is a broken run, not a score);
- ``f1_score`` defaults to ``average="macro"`` (there is no ``"binary"``: Profy
  reports macro F1, and the pro-class F1 is ``f1_score(..., average=None)[1]``);
- ``zero_division`` takes ``0.0``, ``1.0`` or ``nan`` (no ``"warn"``); degenerate
  folds are reported as warnings in ``complete_results.json`` instead.

Registered metrics (see :data:`METRICS`) carry their direction, whether they read
probabilities, and a version, so gates never hard-code ``>`` or ``<``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from profy.errors import ConfigError
from profy.evaluation._validation import _check_targets, _check_zero_division

__all__ = [
    "METRICS",
    "MetricSpec",
    "accuracy_score",
    "confusion_matrix",
    "expected_calibration_error",
    "f1_score",
    "get_metric",
    "macro_f1_score",
    "precision_recall_f1_support",
    "register_metric",
    "reliability_table",
    "weighted_f1_score",
]

_AVERAGES = ("macro", "weighted", None)


# --- label metrics ----------------------------------------------------------------------


def confusion_matrix(y_true: Any, y_pred: Any, *, labels: Any = None) -> np.ndarray:
    """Counts of (true, predicted) class pairs.

    Args:
        y_true: true labels, shape ``(n,)``.
        y_pred: predicted labels, shape ``(n,)``.
        labels: class order of rows and columns. (Default: sorted union of labels)

    Returns:
        np.ndarray: int64 of shape ``(n_classes, n_classes)``; rows are true classes,
        columns predicted classes (scikit-learn's layout).

    Raises:
        ConfigError: see :func:`_check_targets`.

    Example:
        >>> confusion_matrix([0, 1, 1], [0, 0, 1], labels=[0, 1]).tolist()
        [[1, 0], [1, 1]]
    """
    t, p, lab = _check_targets(y_true, y_pred, labels)
    n = len(lab)
    return np.bincount(t * n + p, minlength=n * n).reshape(n, n).astype(np.int64)


def accuracy_score(y_true: Any, y_pred: Any, *, labels: Any = None,
                   normalize: bool = True) -> float:
    """Fraction (or count) of samples whose prediction equals the truth.

    Args:
        y_true: true labels, shape ``(n,)``.
        y_pred: predicted labels, shape ``(n,)``.
        labels: allowed classes; only used to validate (a Profy extension so every
            label metric takes the same keywords). (Default: ``None``, anything goes)
        normalize: return a fraction; ``False`` returns the count. (Default: ``True``)

    Returns:
        float: accuracy in ``[0, 1]`` (or the number of correct samples).
    """
    t, p, _ = _check_targets(y_true, y_pred, labels)
    correct = int(np.count_nonzero(t == p))
    return float(correct / len(t)) if normalize else float(correct)


def _prf_from_confusion(cm: np.ndarray, zero_division: float
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 and support from a confusion matrix.

    Shared with the results validator, which recomputes every stored score from the
    stored matrix. F1 is ``2 tp / (n_true + n_pred)`` (scikit-learn's form): it only
    falls back to ``zero_division`` when a class has neither support nor predictions.
    """
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diag(cm).astype(np.float64)
    true_sum = cm.sum(axis=1)
    pred_sum = cm.sum(axis=0)

    def divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        out = np.full(len(num), zero_division, dtype=np.float64)
        ok = den != 0
        out[ok] = num[ok] / den[ok]
        return out

    precision = divide(tp, pred_sum.astype(np.float64))
    recall = divide(tp, true_sum.astype(np.float64))
    f1 = divide(2.0 * tp, true_sum.astype(np.float64) + pred_sum.astype(np.float64))
    return precision, recall, f1, true_sum.astype(np.int64)


def _nanaverage(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Average ignoring NaN (what ``zero_division=nan`` asks for); all-NaN gives NaN."""
    keep = ~np.isnan(values)
    if not keep.any():
        return float("nan")
    w = None if weights is None else weights[keep].astype(np.float64)
    if w is not None and w.sum() == 0:
        w = None  # no support anywhere that counts: fall back to an unweighted mean
    return float(np.average(values[keep], weights=w))


def precision_recall_f1_support(y_true: Any, y_pred: Any, *, labels: Any = None,
                                zero_division: float = 0.0
                                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 and support (scikit-learn's ``average=None``).

    Args:
        y_true: true labels, shape ``(n,)``.
        y_pred: predicted labels, shape ``(n,)``.
        labels: classes to report, in order. Pass ``[0, 1]`` for Profy folds so a
            class missing from a fold still gets a row. (Default: sorted union)
        zero_division: value for a 0/0 ratio: precision of a never-predicted class,
            recall of a class without support, F1 of a class with neither. (Default: ``0.0``)

    Returns:
        tuple: ``(precision, recall, f1, support)``, each of shape ``(n_classes,)``;
        the first three float64, support int64.
    """
    zd = _check_zero_division(zero_division)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    return _prf_from_confusion(cm, zd)


def f1_score(y_true: Any, y_pred: Any, *, labels: Any = None, average: str | None = "macro",
             zero_division: float = 0.0) -> float | np.ndarray:
    """F1 score, per class or averaged over ``labels``.

    Args:
        y_true: true labels, shape ``(n,)``.
        y_pred: predicted labels, shape ``(n,)``.
        labels: classes to average over. (Default: sorted union of both vectors)
        average: ``"macro"`` (unweighted mean over classes), ``"weighted"`` (mean
            weighted by support) or ``None`` (per-class array). (Default: ``"macro"``)
        zero_division: see :func:`precision_recall_f1_support`. (Default: ``0.0``)

    Returns:
        float | np.ndarray: the average, or F1 of shape ``(n_classes,)`` for ``None``.

    Raises:
        ConfigError: unknown ``average``, or bad inputs (see :func:`_check_targets`).
    """
    if average not in _AVERAGES:
        raise ConfigError(f"average must be one of {list(_AVERAGES)}, got {average!r}")
    _, _, f1, support = precision_recall_f1_support(y_true, y_pred, labels=labels,
                                                    zero_division=zero_division)
    if average is None:
        return f1
    return _nanaverage(f1, support if average == "weighted" else None)


def macro_f1_score(y_true: Any, y_pred: Any, *, labels: Any = None,
                   zero_division: float = 0.0) -> float:
    """Unweighted mean of per-class F1 (``f1_score(..., average="macro")``).

    Every class counts equally, so a model that always says "pro" scores about 0.4 on
    a balanced fold; this is Profy's headline metric.
    """
    return float(f1_score(y_true, y_pred, labels=labels, average="macro",
                          zero_division=zero_division))


def weighted_f1_score(y_true: Any, y_pred: Any, *, labels: Any = None,
                      zero_division: float = 0.0) -> float:
    """Support-weighted mean of per-class F1 (``f1_score(..., average="weighted")``).

    Never report this as macro F1: on imbalanced folds it rewards the majority class
    (an earlier Profy model did exactly that).
    """
    return float(f1_score(y_true, y_pred, labels=labels, average="weighted",
                          zero_division=zero_division))


# --- calibration ------------------------------------------------------------------------


def _check_proba(y_true: Any, prob_pos: Any, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ConfigError(f"n_bins must be an integer >= 1, got {n_bins!r}")
    t, _, _ = _check_targets(y_true, y_true, [0, 1])
    try:
        p = np.asarray(prob_pos, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"prob_pos is not an array of probabilities: {exc}") from None
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim != 1 or len(p) != len(t):
        raise ConfigError(f"prob_pos must have shape ({len(t)},) like y_true, got {p.shape}")
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"prob_pos holds {p[i]} at index {i}; probabilities lie in [0, 1]")
    return t.astype(np.float64), p


def reliability_table(y_true: Any, prob_pos: Any, *, n_bins: int = 10) -> pd.DataFrame:
    """Reliability diagram data: equal-width bins of P(pro) on ``[0, 1]``.

    Binning matches ``sklearn.calibration.calibration_curve(strategy="uniform")``:
    bin ``b`` holds ``edges[b] < p <= edges[b + 1]``, the first bin includes 0.

    Args:
        y_true: true labels in ``{0, 1}``, shape ``(n,)``.
        prob_pos: predicted probability of class 1, shape ``(n,)``, in ``[0, 1]``.
        n_bins: number of bins. (Default: ``10``)

    Returns:
        pd.DataFrame: one row per bin (empty bins included) with columns ``bin``,
        ``lower``, ``upper``, ``count``, ``mean_predicted``, ``fraction_positive``
        and ``gap`` (``|fraction_positive - mean_predicted|``); the last three are
        NaN for empty bins.
    """
    t, p = _check_proba(y_true, prob_pos, n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], p)  # same edges and side as scikit-learn
    count = np.bincount(ids, minlength=n_bins)
    sum_p = np.bincount(ids, weights=p, minlength=n_bins)
    sum_t = np.bincount(ids, weights=t, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(count > 0, sum_p / np.maximum(count, 1), np.nan)
        frac = np.where(count > 0, sum_t / np.maximum(count, 1), np.nan)
    return pd.DataFrame({"bin": np.arange(n_bins), "lower": edges[:-1], "upper": edges[1:],
                         "count": count.astype(np.int64), "mean_predicted": mean_p,
                         "fraction_positive": frac, "gap": np.abs(frac - mean_p)})


def expected_calibration_error(y_true: Any, prob_pos: Any, *, n_bins: int = 10) -> float:
    """Expected calibration error: ``sum_b (n_b / n) |fraction_positive_b - mean_p_b|``.

    Args:
        y_true: true labels in ``{0, 1}``, shape ``(n,)``.
        prob_pos: predicted P(class 1), shape ``(n,)``.
        n_bins: equal-width bins, as in :func:`reliability_table`. (Default: ``10``)

    Returns:
        float: ECE in ``[0, 1]``; 0 is perfectly calibrated (lower is better).

    Example:
        >>> expected_calibration_error([0, 1], [0.0, 1.0])
        0.0
    """
    table = reliability_table(y_true, prob_pos, n_bins=n_bins)
    full = table[table["count"] > 0]
    return float((full["count"] * full["gap"]).sum() / table["count"].sum())


# --- registry ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """A scalar metric and what a gate needs to know about it.

    Attributes:
        name: registry key, also the key in ``complete_results.json`` (``"macro_f1"``).
        fn: ``fn(y_true, y, **options) -> float`` where ``y`` is predicted labels, or
            P(pro) when ``needs_proba``.
        higher_is_better: direction gates compare in.
        needs_proba: whether ``fn`` reads probabilities instead of labels.
        version: bumped whenever the definition changes (lm-eval's ``metadata.version``),
            so a baseline computed with another definition is not compared blindly.
    """

    name: str
    fn: Callable[..., float]
    higher_is_better: bool
    needs_proba: bool
    version: str


METRICS: dict[str, MetricSpec] = {}


def register_metric(name: str, *, higher_is_better: bool, needs_proba: bool = False,
                    version: str = "1") -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Decorator that adds a scalar metric to :data:`METRICS` and returns it unchanged.

    Raises:
        ConfigError: ``name`` is already registered.
    """
    def decorate(fn: Callable[..., float]) -> Callable[..., float]:
        if name in METRICS:
            raise ConfigError(f"metric {name!r} is already registered "
                              f"(by {METRICS[name].fn.__qualname__})")
        METRICS[name] = MetricSpec(name, fn, bool(higher_is_better), bool(needs_proba),
                                   str(version))
        return fn
    return decorate


def get_metric(name: str) -> MetricSpec:
    """The registered metric called ``name``.

    Raises:
        ConfigError: unknown name; the message suggests close matches and lists all.
    """
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(METRICS), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ConfigError(f"Unknown metric {name!r}.{hint} "
                          f"Available: {', '.join(sorted(METRICS))}") from None


def _register_builtins(specs: Sequence[tuple[str, Callable[..., float], bool, bool]]) -> None:
    for name, fn, higher, proba in specs:
        register_metric(name, higher_is_better=higher, needs_proba=proba)(fn)


_register_builtins([
    ("accuracy", accuracy_score, True, False),
    ("macro_f1", macro_f1_score, True, False),
    ("weighted_f1", weighted_f1_score, True, False),
    ("ece", expected_calibration_error, False, True),
])
