"""Metrics the gates recompute, in numpy, vectorised over bootstrap resamples.

The gates recompute every score from ``predictions.parquet`` with this independent
implementation (not ``profy.evaluation``), so a bug in the code that wrote
``complete_results.json`` cannot also hide in the code that checks it. The tests hold
it against scikit-learn (``f1_score(..., labels=[0, 1], average="macro",
zero_division=0)``).

Binary confusion counts are kept as a trailing axis of four, ``(n00, n01, n10, n11)``
with ``nTP`` = number of takes with true class ``T`` and predicted class ``P``
(0 = amateur, 1 = pro), so a whole bootstrap (``(B, 4)`` counts) scores in one call.

Player bootstrap (used for verdict stability and the baseline comparison): takes of
one player are not independent, so a resample draws *players* with replacement,
separately inside each fold (a fold's held-out players stay in that fold), and
every take of a drawn player enters with the player's multiplicity. The folds are
stratified by label, so the resample is too (:func:`stratified_player_weights`): inside
each (fold, label) stratum its own players are drawn, and every resample keeps the
fold's count of pro and amateur players.

Count metrics (:func:`count_metric`): every figure a count-based gate decides on is a
function of the counts ``(..., 4) -> (...)``, named by its path in
``complete_results.json``'s per-fold block (``macro_f1``, ``accuracy``,
``per_class.pro.recall``, ...), so a gate on any of them resamples and recomputes
through the same code as the F1 gates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from profy.contract.schemas import LABELS

__all__ = ["CLASS_STATS", "FLAT_METRICS", "CountMetric", "accuracy_from_counts",
           "bootstrap_player_weights", "calibration_bins", "class_stat_from_counts",
           "count_metric", "counts", "counts_by_group", "ece_table", "macro_f1",
           "macro_f1_from_counts", "percentile_interval", "stratified_player_weights",
           "weighted_f1", "weighted_f1_from_counts"]

CLASS_STATS = ("precision", "recall", "f1")


def _as_labels(y, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        bad = arr[~np.isin(arr, (0, 1))][0]
        raise ValueError(f"{name} holds {bad!r}; classes are 0 (amateur) and 1 (pro)")
    return arr.astype(np.int64)


def counts(y_true, y_pred) -> np.ndarray:
    """Binary confusion counts ``(n00, n01, n10, n11)``, shape ``(4,)`` int64."""
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in length")
    return np.bincount(2 * t + p, minlength=4).astype(np.int64)


def _per_class_f1(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F1 of class 0 and class 1 and their supports, each of shape ``c.shape[:-1]``."""
    c = np.asarray(c, dtype=np.float64)
    n00, n01, n10, n11 = c[..., 0], c[..., 1], c[..., 2], c[..., 3]
    # F1 = 2 tp / (n_true + n_pred); 0/0 (class absent and never predicted) -> 0
    den0 = 2 * n00 + n01 + n10
    den1 = 2 * n11 + n01 + n10
    with np.errstate(invalid="ignore", divide="ignore"):
        f0 = np.where(den0 > 0, 2 * n00 / np.where(den0 > 0, den0, 1), 0.0)
        f1 = np.where(den1 > 0, 2 * n11 / np.where(den1 > 0, den1, 1), 0.0)
    return np.stack([f0, f1], axis=-1), np.stack([n00 + n01, n10 + n11], axis=-1)


def macro_f1_from_counts(c: np.ndarray) -> np.ndarray:
    """Macro F1 (unweighted mean of both classes' F1) of counts ``(..., 4)`` -> ``(...)``.

    An empty count vector (no takes) scores NaN: it is missing evidence, not a zero.
    """
    f1, support = _per_class_f1(c)
    out = f1.mean(axis=-1)
    return np.where(support.sum(axis=-1) > 0, out, np.nan)


def weighted_f1_from_counts(c: np.ndarray) -> np.ndarray:
    """Support-weighted F1 of counts ``(..., 4)`` -> ``(...)``; NaN without takes."""
    f1, support = _per_class_f1(c)
    total = support.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (f1 * support).sum(axis=-1) / np.where(total > 0, total, 1),
                        np.nan)


def accuracy_from_counts(c: np.ndarray) -> np.ndarray:
    """Share of takes predicted right, counts ``(..., 4)`` -> ``(...)``; NaN without takes."""
    c = np.asarray(c, dtype=np.float64)
    total = c.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (c[..., 0] + c[..., 3]) / np.where(total > 0, total, 1),
                        np.nan)


def class_stat_from_counts(c: np.ndarray, cls: int, stat: str) -> np.ndarray:
    """Precision, recall or F1 of class ``cls`` (0 amateur, 1 pro): ``(..., 4)`` -> ``(...)``.

    scikit-learn's ``zero_division=0`` (what profy's results writer uses): a ratio whose
    denominator is 0 (no take of the class, or none predicted as it) is 0; with no takes
    at all the figure is NaN (missing evidence, as :func:`macro_f1_from_counts`).
    """
    if cls not in (0, 1) or stat not in CLASS_STATS:
        raise ValueError(f"class {cls!r} / statistic {stat!r}: classes are 0 and 1, "
                         f"statistics {CLASS_STATS}")
    c = np.asarray(c, dtype=np.float64)
    tp = c[..., 3] if cls == 1 else c[..., 0]
    fn = c[..., 2] if cls == 1 else c[..., 1]   # true cls, predicted the other
    fp = c[..., 1] if cls == 1 else c[..., 2]   # true other, predicted cls
    num, den = {"precision": (tp, tp + fp), "recall": (tp, tp + fn),
                "f1": (2 * tp, 2 * tp + fp + fn)}[stat]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
    return np.where(c.sum(axis=-1) > 0, out, np.nan)


@dataclass(frozen=True)
class CountMetric:
    """A metric of confusion counts, named by its path in a results fold block.

    Attributes:
        path: e.g. ``"macro_f1"`` or ``"per_class.pro.recall"``.
        func: counts ``(..., 4)`` -> values ``(...)`` (NaN where there are no takes).
        label: how messages name it ("F1", "pro recall").
        key: a short identifier for result details ("f1", "pro_recall").
    """

    path: str
    func: Callable[[np.ndarray], np.ndarray]
    label: str
    key: str

    @property
    def aggregated(self) -> bool:
        """Whether the results file publishes its mean and std over folds (flat metrics)."""
        return "." not in self.path

    def __call__(self, c: np.ndarray) -> np.ndarray:
        return self.func(c)


FLAT_METRICS: dict[str, CountMetric] = {
    "macro_f1": CountMetric("macro_f1", macro_f1_from_counts, "F1", "f1"),
    "weighted_f1": CountMetric("weighted_f1", weighted_f1_from_counts, "weighted F1",
                               "weighted_f1"),
    "accuracy": CountMetric("accuracy", accuracy_from_counts, "accuracy", "accuracy"),
}


def count_metric(path: str) -> CountMetric:
    """The count metric at ``path``: one of :data:`FLAT_METRICS` or
    ``per_class.<label>.<precision|recall|f1>`` (labels: ``profy.contract.schemas.LABELS``).

    Raises:
        ValueError: an unknown path (the message lists the known ones).
    """
    if path in FLAT_METRICS:
        return FLAT_METRICS[path]
    parts = path.split(".")
    if len(parts) == 3 and parts[0] == "per_class" and parts[1] in LABELS \
            and parts[2] in CLASS_STATS:
        cls, stat = LABELS.index(parts[1]), parts[2]
        return CountMetric(path, lambda c: class_stat_from_counts(c, cls, stat),
                           f"{parts[1]} {stat}", f"{parts[1]}_{stat}")
    raise ValueError(f"unknown count metric {path!r}: one of {sorted(FLAT_METRICS)} or "
                     f"per_class.<{'|'.join(LABELS)}>.<{'|'.join(CLASS_STATS)}>")


def macro_f1(y_true, y_pred) -> float:
    """Macro F1 over classes ``[0, 1]`` with ``zero_division=0`` (scikit-learn's).

    Args:
        y_true: true classes, shape ``(n,)``, values in {0, 1}.
        y_pred: predicted classes, shape ``(n,)``.

    Returns:
        float: in [0, 1]; NaN for ``n == 0``.
    """
    return float(macro_f1_from_counts(counts(y_true, y_pred)))


def weighted_f1(y_true, y_pred) -> float:
    """Support-weighted F1 (what an old results file reported as "macro")."""
    f1, support = _per_class_f1(counts(y_true, y_pred))
    total = support.sum()
    return float((f1 * support).sum() / total) if total else float("nan")


def counts_by_group(groups: np.ndarray, y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Confusion counts per group (e.g. per player).

    Returns:
        ``(names, counts)``: the sorted unique groups ``(G,)`` and counts ``(G, 4)``.
    """
    names, inverse = np.unique(np.asarray(groups), return_inverse=True)
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    out = np.zeros((len(names), 4), dtype=np.int64)
    np.add.at(out, (inverse, 2 * t + p), 1)
    return names, out


def bootstrap_player_weights(n_players: int, n_boot: int, rng: np.random.Generator
                             ) -> np.ndarray:
    """Multiplicities of ``n_players`` players in ``n_boot`` resamples with replacement.

    Returns:
        int64 ``(n_boot, n_players)``; each row sums to ``n_players``.
    """
    if n_players < 1:
        raise ValueError("a fold without players cannot be resampled")
    return rng.multinomial(n_players, np.full(n_players, 1.0 / n_players), size=n_boot)


def stratified_player_weights(strata, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Player multiplicities of ``n_boot`` resamples drawn within strata.

    Args:
        strata: the stratum of each player, shape ``(G,)`` (e.g. the player's label);
            players of one stratum are drawn with replacement among themselves only.
        n_boot: resamples.
        rng: the generator; strata are drawn in sorted order, so a seed repeats.

    Returns:
        int64 ``(n_boot, G)``; in every row each stratum's multiplicities sum to its size.
    """
    keys = np.asarray(strata)
    if keys.ndim != 1 or keys.size < 1:
        raise ValueError("a fold without players cannot be resampled")
    out = np.zeros((n_boot, keys.size), dtype=np.int64)
    for key in np.unique(keys):
        members = np.flatnonzero(keys == key)
        out[:, members] = bootstrap_player_weights(members.size, n_boot, rng)
    return out


def percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """Two-sided percentile interval holding ``confidence`` of ``samples`` (NaNs dropped)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    s = np.asarray(samples, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(s, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def calibration_bins(prob_pos: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index of each probability: ``edges[b] < p <= edges[b+1]``, the first bin with 0."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], np.asarray(prob_pos, dtype=np.float64))


def ece_table(y_true, prob_pos, n_bins: int = 10) -> tuple[float, list[dict]]:
    """Expected calibration error of P(pro) and its reliability table.

    Equal-width bins on [0, 1]; bin ``b`` holds ``edges[b] < p <= edges[b+1]`` (the
    first includes 0), as ``sklearn.calibration.calibration_curve(strategy="uniform")``.
    ECE = sum over bins of ``count_b / n * |fraction_pro_b - mean_p_b|``.

    Returns:
        ``(ece, rows)``; rows (one per non-empty bin) hold ``lower``, ``upper``,
        ``count``, ``mean_predicted``, ``fraction_pro``, ``gap``. ECE is NaN for n == 0.
    """
    t = _as_labels(y_true, "y_true").astype(np.float64)
    p = np.asarray(prob_pos, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"prob_pos {p.shape} and y_true {t.shape} differ in shape")
    if p.size and (~np.isfinite(p) | (p < 0) | (p > 1)).any():
        raise ValueError("probabilities must be finite and lie in [0, 1]")
    if p.size == 0:
        return float("nan"), []
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = calibration_bins(p, n_bins)
    n = np.bincount(ids, minlength=n_bins)
    sum_p = np.bincount(ids, weights=p, minlength=n_bins)
    sum_t = np.bincount(ids, weights=t, minlength=n_bins)
    rows, ece = [], 0.0
    for b in np.flatnonzero(n):
        mean_p, frac = sum_p[b] / n[b], sum_t[b] / n[b]
        gap = abs(frac - mean_p)
        ece += n[b] / p.size * gap
        rows.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": int(n[b]),
                     "mean_predicted": float(mean_p), "fraction_pro": float(frac),
                     "gap": float(gap)})
    return float(ece), rows
