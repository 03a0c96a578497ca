"""Per-slice metrics and calibration of the released probabilities.

``gate.slices``: held-out takes of every mode (pooled over folds) sliced by ``piece``,
``piece_kind`` (scale/arpeggio) and ``label``. A piece or piece-kind slice scores its
macro F1 over both classes; a label slice scores that class's F1 over the mode's
takes (macro F1 inside a one-class slice means nothing). The worst slice with at
least ``min_samples`` takes is shown; the gate (on ``mode``, the released model)
requires its F1 ``>= min_worst_f1`` (the default criteria list it as a warning).

``gate.calibration``: expected calibration error of P(pro) per mode, pooled over folds,
with ``n_bins`` equal-width bins and a reliability table (count, mean predicted,
fraction pro, gap per non-empty bin) in the details; the gate requires ``mode``'s
ECE ``<= max_ece``.

Verdict stability (both gates; defined in :mod:`guardrails.gates._stability`): the
probability that the gate passes on a fresh evaluation on new players from the same
population, estimated by the pooled statistics' pivot
(:func:`~guardrails.gates._stability.bounded_pivot_pass_rate`: fresh value = observed +
the difference of two player resamples). Players are resampled within (fold, label)
strata with Rao-Wu rescaled weights (``n_boot`` resamples seeded by ``--seed``; a
stratum of fewer than two players makes the stability unknown, ``None`` with the
reason, not a number). Slices: every slice's F1 and ``n`` recomputed from resampled
per-player confusion counts, the same ``min_samples`` rule, the worst slice.
Calibration: the ECE recomputed from resampled per-player per-bin sums (count, sum of
P(pro), sum of labels). ``tests/guardrails/test_calibration.py`` checks both against a
simulation with known truth (every reliability bin within 0.1; the share of resamples
that pass, the figure before, was off by up to 0.29 and 0.19).
``min_stability > 0`` also requires it for a pass. ``details["noise"]`` holds the
statistic's player-clustered sampling sd at this run's size; when the threshold lies
within it the message says so (the verdict stays the criteria's).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from guardrails._context import RunContext
from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.gates._evidence import (
    MIN_STRATUM_PLAYERS,
    MIXED,
    MODES,
    expected_modes,
    gate_rng,
    held_out,
)
from guardrails.gates._metrics import (
    _per_class_f1,
    calibration_bins,
    counts,
    ece_table,
    macro_f1,
    macro_f1_from_counts,
)
from guardrails.gates._stability import (
    bounded_pivot_pass_rate,
    decidability,
    rescaled_player_weights,
)
from guardrails.gates.acceptance import finish_with_stability

__all__ = ["bootstrap_ece", "bootstrap_worst_f1", "calibration", "ece_from_sums", "ece_sums",
           "slice_table", "slices", "thin_strata", "worst_f1_from_counts"]

DIMENSIONS = ("piece", "piece_kind", "label")
_CLASS = {0: "amateur", 1: "pro"}


def slice_table(rows) -> list[dict[str, Any]]:
    """One dict per slice: ``dimension``, ``slice``, ``n``, ``accuracy``, ``f1``."""
    out = []
    y, p = rows["label"].to_numpy(), rows["prediction"].to_numpy()
    for dim in ("piece", "piece_kind"):
        for value, g in rows.groupby(dim, sort=True):
            gy, gp = g["label"].to_numpy(), g["prediction"].to_numpy()
            out.append({"dimension": dim, "slice": str(value), "n": int(len(g)),
                        "accuracy": float(np.mean(gy == gp)), "f1": macro_f1(gy, gp)})
    c = counts(y, p)
    for cls in (0, 1):
        mask = y == cls
        if not mask.any():
            continue
        # one-vs-rest F1 of this class over all the mode's takes
        tp = c[3] if cls else c[0]
        f1 = 2 * tp / (2 * tp + c[1] + c[2]) if (2 * tp + c[1] + c[2]) else 0.0
        out.append({"dimension": "label", "slice": _CLASS[cls], "n": int(mask.sum()),
                    "accuracy": float(np.mean(p[mask] == cls)), "f1": float(f1)})
    return out


def _resampled_sums(rows, values: np.ndarray, n_boot: int,
                    rng: np.random.Generator | None) -> np.ndarray:
    """Column sums of ``values`` (one row per take) over player resamples, ``(B, m)``.

    Per fold, takes are summed per player and the players resampled within their label
    stratum (0, 1, or mixed: the other gates' strata), with Rao-Wu rescaled weights
    (:func:`~guardrails.gates._stability.rescaled_player_weights`: a fresh evaluation
    keeps each fold's label mix, and the rescaling removes the plain bootstrap's
    ``(n - 1) / n`` variance shrinkage at 4-6 players per stratum). ``rng=None`` gives
    the identity weights (``B = 1``), i.e. the observed sums, which is how the tests tie
    the bootstrap to the reported value.
    """
    folds = rows["fold"].to_numpy()
    players = rows["player_id"].to_numpy().astype(str)
    labels = rows["label"].to_numpy().astype(np.int64)
    total = np.zeros((1 if rng is None else n_boot, values.shape[1]))
    for k in np.unique(folds):
        mask = folds == k
        names, inv = np.unique(players[mask], return_inverse=True)
        per_player = np.zeros((len(names), values.shape[1]))
        np.add.at(per_player, inv, values[mask])
        weights = (np.ones((1, len(names))) if rng is None
                   else rescaled_player_weights(_strata(inv, labels[mask], len(names)),
                                                n_boot, rng))
        total += weights @ per_player
    return total


def _strata(inv: np.ndarray, labels: np.ndarray, n_players: int) -> np.ndarray:
    """Each player's label stratum: 0 or 1 when all its takes carry it, else MIXED."""
    pro = np.bincount(inv, weights=labels == 1, minlength=n_players)
    amateur = np.bincount(inv, weights=labels != 1, minlength=n_players)
    return np.where(amateur == 0, 1, np.where(pro == 0, 0, MIXED)).astype(np.int64)


def thin_strata(rows) -> str | None:
    """Why the player resamples cannot estimate stability, or None when they can.

    A (fold, label) stratum of fewer than ``MIN_STRATUM_PLAYERS`` players is the same in
    every resample: the figure would claim a precision the run lacks.
    """
    names = {0: "amateur", 1: "pro", MIXED: "mixed-label"}
    thin = []
    for k, g in rows.groupby("fold", sort=True):
        names_k, inv = np.unique(g["player_id"].to_numpy().astype(str), return_inverse=True)
        keys, sizes = np.unique(_strata(inv, g["label"].to_numpy(), len(names_k)),
                                return_counts=True)
        few = [f"{n} {names[int(key)]} player" + ("s" if n != 1 else "")
               for key, n in zip(keys, sizes, strict=True) if n < MIN_STRATUM_PLAYERS]
        if few:
            thin.append(f"fold {k}: " + ", ".join(few))
    if not thin:
        return None
    return (f"cannot be estimated: {'; '.join(thin)} (players are resampled within (fold, "
            f"label) strata; each needs >= {MIN_STRATUM_PLAYERS})")


def bootstrap_worst_f1(rows, min_samples: int, n_boot: int = 0,
                       rng: np.random.Generator | None = None) -> np.ndarray:
    """Worst-slice F1 (``slice_table``'s slices and ``min_samples`` rule) per resample.

    Returns:
        ``(n_boot,)``, or ``(1,)`` for ``rng=None`` (the observed worst F1).
    """
    y, p = rows["label"].to_numpy(), rows["prediction"].to_numpy()
    cell = 2 * y.astype(np.int64) + p.astype(np.int64)
    # slots: every piece, every piece kind (groupby's sorted groups, NaN dropped), all takes
    codes = [rows.groupby(dim, sort=True).ngroup().to_numpy() for dim in ("piece", "piece_kind")]
    sizes = [int(c.max()) + 1 if len(c) else 0 for c in codes]
    n_slots = sum(sizes) + 1
    onehot = np.zeros((len(rows), n_slots * 4))
    offset, take = 0, np.arange(len(rows))
    for code, size in zip(codes, sizes, strict=True):
        ok = code >= 0
        onehot[take[ok], (offset + code[ok]) * 4 + cell[ok]] = 1.0
        offset += size
    onehot[take, offset * 4 + cell] = 1.0
    return worst_f1_from_counts(_resampled_sums(rows, onehot, n_boot, rng)
                                .reshape(-1, n_slots, 4), min_samples)


def worst_f1_from_counts(c: np.ndarray, min_samples: int) -> np.ndarray:
    """Worst-slice F1 from slot confusion counts ``(..., S + 1, 4)`` -> ``(...)``.

    The first ``S`` slots are the piece and piece-kind slices (macro F1); the last holds
    all the mode's takes, whose per-class F1 are the two label slices. A slice no take
    falls in does not exist; the minimum runs over slices with ``>= min_samples`` takes
    (all existing slices when none is that large); NaN when no slice exists. This is the
    one array path of ``gate.slices`` (the observed value, its resamples, and the
    calibration simulator's runs).
    """
    c = np.asarray(c, dtype=np.float64)
    f1 = macro_f1_from_counts(c[..., :-1, :])
    n = c[..., :-1, :].sum(axis=-1)
    # label slices: one class's F1 over all the mode's takes, n = the class's takes
    class_f1, support = _per_class_f1(c[..., -1, :])
    f1 = np.concatenate([f1, class_f1], axis=-1)
    n = np.concatenate([n, support], axis=-1)
    present = n > 0  # a slice no drawn player has does not exist in that resample
    big = present & (n >= min_samples)
    eligible = np.where(big.any(axis=-1, keepdims=True), big, present)
    worst = np.where(eligible, np.nan_to_num(f1, nan=-1.0), np.inf).min(axis=-1)
    return np.where(eligible.any(axis=-1), worst, np.nan)


def bootstrap_ece(rows, n_bins: int, n_boot: int = 0,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """ECE of P(pro) (``ece_table``'s bins and definition) per resample, ``(n_boot,)``.

    ``rng=None`` gives ``(1,)``: the observed ECE.
    """
    return ece_from_sums(ece_sums(rows, n_bins, n_boot, rng))


def ece_sums(rows, n_bins: int, n_boot: int = 0,
             rng: np.random.Generator | None = None) -> np.ndarray:
    """Per-bin sums (counts, P(pro), labels) per player resample, ``(n_boot, 3 n_bins)``.

    ``rng=None`` gives ``(1, 3 n_bins)``: the observed sums.
    """
    prob = rows["probability"].to_numpy(dtype=np.float64)
    t = rows["label"].to_numpy().astype(np.float64)
    onehot = np.zeros((len(rows), n_bins))
    onehot[np.arange(len(rows)), calibration_bins(prob, n_bins)] = 1.0
    return _resampled_sums(rows, np.hstack([onehot, onehot * prob[:, None],
                                            onehot * t[:, None]]), n_boot, rng)


def ece_from_sums(sums: np.ndarray) -> np.ndarray:
    """ECE from per-bin sums ``(..., 3 * n_bins)`` (counts, sums of P(pro), sums of labels).

    ``sum_b n_b/N |frac_b - mean_p_b| = sum_b |sum_t_b - sum_p_b| / N`` (empty bins add
    0): the one array path of ``gate.calibration`` (observed, resamples, simulator).
    """
    n, sum_p, sum_t = np.split(np.asarray(sums, dtype=np.float64), 3, axis=-1)
    return np.abs(sum_t - sum_p).sum(axis=-1) / n.sum(axis=-1)


_STABILITY = {"min_stability": 0.0, "n_boot": 1000}


def _held_out_by_mode(ctx) -> dict[str, Any]:
    """Held-out predictions of each expected mode that has any (mode -> DataFrame)."""
    frame = held_out(ctx)
    by_mode = {m: frame[frame["mode"] == m] for m in expected_modes(ctx)}
    return {m: rows for m, rows in by_mode.items() if not rows.empty}


def _sd(samples: np.ndarray) -> float | None:
    """Sampling sd from resamples (NaN resamples dropped); None without two finite ones."""
    finite = np.asarray(samples, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.std()) if finite.size > 1 else None


def _players(rows) -> float:
    """Held-out players in all folds (a fold's player counts once per fold)."""
    return float(rows.groupby("fold")["player_id"].nunique().sum())


def _interval(samples: np.ndarray) -> list[float]:
    return [float(np.nanquantile(samples, q)) for q in (0.05, 0.95)]


@register("gate.slices", category="gate",
          params={"mode": "multimodal", "min_worst_f1": 0.5, "min_samples": 5, **_STABILITY},
          choices={"mode": MODES},
          description="per-slice F1 (piece, piece kind, label); worst slice >= min_worst_f1 "
                      "(+ stability)")
def slices(ctx: RunContext, *, mode: str, min_worst_f1: float, min_samples: int,
           min_stability: float, n_boot: int) -> CheckResult:
    """Slice metrics for every mode, gated on the worst slice of ``mode``."""
    name = "gate.slices"
    by_mode = _held_out_by_mode(ctx)
    per_mode: dict[str, Any] = {}
    worst_by_mode: dict[str, Any] = {}
    for m, rows in by_mode.items():
        table = slice_table(rows)
        per_mode[m] = table
        big = [s for s in table if s["n"] >= min_samples] or table
        worst = min(big, key=lambda s: (s["f1"] if np.isfinite(s["f1"]) else -1.0, -s["n"]))
        worst_by_mode[m] = worst
    worst = worst_by_mode.get(mode)
    expected = {"worst_f1": f">= {min_worst_f1}", "min_samples": min_samples}
    if worst is None:
        return CheckResult(name, "gate", False, observed=None, expected=expected,
                           message=f"{mode}: no held-out predictions to slice",
                           details={"per_mode": per_mode})
    ok = bool(np.isfinite(worst["f1"]) and worst["f1"] >= min_worst_f1)
    text = (f"{mode}: worst slice {worst['dimension']}={worst['slice']} "
            f"F1 {worst['f1']:.3f} (n={worst['n']})")
    rows = by_mode[mode]
    boot = bootstrap_worst_f1(rows, min_samples, n_boot, gate_rng(ctx, name))
    why = thin_strata(rows)
    stability, noise, note = None, {"decidable": None, "why": why}, None
    if why is None:
        # NaN (no slice at all) makes its pairs fail, as a NaN statistic fails the gate
        stability = float(bounded_pivot_pass_rate(worst["f1"], boot, min_worst_f1,
                                                  higher_is_better=True, bounds=(0.0, 1.0)))
        noise, note = decidability("the worst-slice F1", worst["f1"], min_worst_f1,
                                   _sd(boot), _players(rows), unit="in all")
    return finish_with_stability(
        name, passed=ok, reason=text + ("" if ok else f" < {min_worst_f1}"),
        stability=stability, stability_note=why, min_stability=min_stability,
        observed={"worst": f"{worst['dimension']}={worst['slice']}",
                  "f1": round(worst["f1"], 4), "n": worst["n"]}, expected=expected,
        details={"worst_by_mode": worst_by_mode, "per_mode": per_mode, "n_boot": n_boot,
                 "bootstrap_worst_f1": _interval(boot), "noise": noise,
                 "metric": "macro F1 (piece, piece_kind); class F1 (label)"},
        undecidable=[note] if note else None)


@register("gate.calibration", category="gate",
          params={"mode": "multimodal", "max_ece": 0.15, "n_bins": 10, **_STABILITY},
          choices={"mode": MODES},
          description="expected calibration error of P(pro) per mode + reliability table "
                      "(+ stability)")
def calibration(ctx: RunContext, *, mode: str, max_ece: float, n_bins: int, min_stability: float,
                n_boot: int) -> CheckResult:
    """ECE and reliability table per mode; gate on ``mode``'s ECE."""
    name = "gate.calibration"
    by_mode = _held_out_by_mode(ctx)
    per_mode: dict[str, Any] = {}
    for m, rows in by_mode.items():
        prob = rows["probability"].to_numpy(dtype=np.float64)
        if not np.isfinite(prob).all() or (prob < 0).any() or (prob > 1).any():
            per_mode[m] = {"ece": float("nan"), "problem": "probabilities outside [0, 1] or NaN"}
            continue
        ece, table = ece_table(rows["label"].to_numpy(), prob, n_bins)
        per_mode[m] = {"ece": ece, "n": int(len(rows)), "reliability": table,
                       "macro_f1": float(macro_f1_from_counts(
                           counts(rows["label"].to_numpy(), rows["prediction"].to_numpy())))}
    ece = (per_mode.get(mode) or {}).get("ece")
    ok = ece is not None and bool(np.isfinite(ece)) and ece <= max_ece
    details: dict[str, Any] = {"per_mode": per_mode, "n_bins": n_bins, "n_boot": n_boot,
                               "method": "ECE: equal-width bins of P(pro), pooled folds"}
    stability, note, undecidable = None, None, []
    if ece is None:
        message = note = f"{mode}: no held-out predictions"
    elif not np.isfinite(ece):
        message = note = f"{mode}: ECE is not computable ({per_mode[mode].get('problem')})"
    else:
        message = f"{mode}: ECE {ece:.4f} {'<=' if ok else '>'} {max_ece} ({n_bins} bins)"
        rows = by_mode[mode]
        boot = bootstrap_ece(rows, n_bins, n_boot, gate_rng(ctx, name))
        details["bootstrap_ece"] = _interval(boot)
        note = thin_strata(rows)
        details["noise"] = {"decidable": None, "why": note}
        if note is None:
            stability = float(bounded_pivot_pass_rate(ece, boot, max_ece,
                                                      higher_is_better=False, bounds=(0.0, 1.0)))
            details["noise"], text = decidability("the ECE", ece, max_ece, _sd(boot),
                                                  _players(rows), unit="in all")
            undecidable += [text] if text else []
    return finish_with_stability(
        name, passed=ok, reason=message, stability=stability, stability_note=note,
        min_stability=min_stability,
        observed={m: round(v["ece"], 4) for m, v in per_mode.items()},
        expected={mode: f"<= {max_ece}"}, details=details, undecidable=undecidable)
