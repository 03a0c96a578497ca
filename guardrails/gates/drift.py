"""``baseline.drift``: data drift between the baseline's and the candidate's corpora.

Reported whenever a baseline is given; gated only as far as the criteria file says
(the default file lists it with ``severity: warning``).

Methods (named in the result's details):

- ``audio_stats.parquet``, every numeric column: the two-sample Kolmogorov-Smirnov test
  (``scipy.stats.ks_2samp``, two-sided; statistic and p-value) and the Population
  Stability Index, ``PSI = sum_b (c_b - b_b) * ln(c_b / b_b)`` over ``psi_bins``
  quantile bins of the baseline (shares floored at 1e-4 so an empty bin stays finite).
  A column drifts when ``p < alpha`` or ``PSI > max_psi``.
- normalization statistics (``norm_stats/fold_K.json``), per fold and modality
  (``audio``: one value per mel channel, ``sensor``: per key), channel by channel: the
  standardized shift of each channel's mean, ``|mean_c[i] - mean_b[i]| / std_b[i]``
  (candidate mean against the baseline's mean and std of *the same* channel ``i``, so a
  reordered channel axis is a shift). A fold/modality drifts when any channel moves by
  more than ``max_shift_sd`` baseline standard deviations; the channels are named. The
  per-channel ratio ``std_c / std_b`` is reported beside it.

What could not be compared is said, and the check then fails (a warning under the
default criteria), never "no drift": no numeric ``audio_stats`` column in both runs, a
column without finite values on one side, a fold's ``norm_stats`` file missing in one
run, or statistics whose channel counts differ or hold non-finite values or a std <= 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from guardrails._context import RunContext
from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.gates._evidence import expected_folds
from profy.contract.layout import AUDIO_STATS_FILE

__all__ = ["drift", "psi"]

_FLOOR = 1e-4
_SKIP = {"sample_id", "finite"}


def psi(baseline: np.ndarray, candidate: np.ndarray, bins: int = 10) -> float:
    """Population Stability Index of ``candidate`` against ``baseline`` (quantile bins)."""
    b = np.asarray(baseline, dtype=np.float64)
    c = np.asarray(candidate, dtype=np.float64)
    b, c = b[np.isfinite(b)], c[np.isfinite(c)]
    if not b.size or not c.size:
        return float("nan")
    edges = np.unique(np.quantile(b, np.linspace(0, 1, bins + 1)))
    if edges.size < 2:  # a constant baseline: one bin for its value, one for the rest
        share_b = np.array([1.0, 0.0])
        same = np.isclose(c, b[0])
        share_c = np.array([same.mean(), 1 - same.mean()])
    else:
        inner = edges[1:-1]
        share_b = np.bincount(np.searchsorted(inner, b, side="right"),
                              minlength=inner.size + 1) / b.size
        share_c = np.bincount(np.searchsorted(inner, c, side="right"),
                              minlength=inner.size + 1) / c.size
    share_b, share_c = np.maximum(share_b, _FLOOR), np.maximum(share_c, _FLOOR)
    return float(np.sum((share_c - share_b) * np.log(share_c / share_b)))


def _ks(a, b) -> tuple[float, float]:
    from scipy.stats import ks_2samp

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not a.size or not b.size:
        return float("nan"), float("nan")
    res = ks_2samp(a, b)
    return float(res.statistic), float(res.pvalue)


def channel_shift(cand_mean, base_mean, base_std) -> np.ndarray:
    """Per-channel standardized shift ``|cand_mean - base_mean| / base_std``.

    Args:
        cand_mean: the candidate's per-channel means, ``(C,)``.
        base_mean: the baseline's means of the same channels, ``(C,)``.
        base_std: the baseline's per-channel stds, ``(C,)``, all > 0.

    Returns:
        float64 ``(C,)``: shift of each channel in baseline standard deviations.

    Raises:
        ValueError: shapes differ, a value is not finite, or a std is <= 0 (the caller
            reports that the statistics could not be compared).
    """
    mc, mb, sb = (np.asarray(v, dtype=np.float64) for v in (cand_mean, base_mean, base_std))
    if mc.ndim != 1 or not mc.size:
        raise ValueError(f"no per-channel values (candidate mean {mc.shape})")
    if mc.shape != mb.shape or mb.shape != sb.shape:
        raise ValueError(f"channel counts differ (candidate mean {mc.shape}, baseline mean "
                         f"{mb.shape}, baseline std {sb.shape})")
    if not (np.isfinite(mc).all() and np.isfinite(mb).all() and np.isfinite(sb).all()):
        raise ValueError("a statistic is not finite")
    if (sb <= 0).any():
        raise ValueError(f"baseline std <= 0 at channel {int(np.flatnonzero(sb <= 0)[0])}")
    return np.abs(mc - mb) / sb


def _values(stats: Any, key: str) -> Any:
    return stats.get(key) if isinstance(stats, dict) else None


def _norm_drift(ctx, max_shift_sd: float) -> tuple[dict[str, Any], list[str], list[str]]:
    """Per fold and modality, channel-wise mean shifts -> ``(table, drifting, uncompared)``."""
    rows: dict[str, Any] = {}
    drifting: list[str] = []
    uncompared: list[str] = []
    folds = sorted(set(expected_folds(ctx)) | set(expected_folds(ctx.baseline)))
    for k in folds:
        rel = f"norm_stats/fold_{k}.json"
        absent = [side for side, run in (("candidate", ctx), ("baseline", ctx.baseline))
                  if not run.exists(rel)]
        if absent:
            reason = f"fold {k}: {rel} missing in the {' and the '.join(absent)} run"
            rows[str(k)] = {"compared": False, "reason": reason}
            uncompared.append(reason)
            continue
        cand, base = ctx.json(rel), ctx.baseline.json(rel)
        fold: dict[str, Any] = {"compared": True}
        for mod in ("audio", "sensor"):
            try:
                shift = channel_shift(_values(cand, f"{mod}_mean"), _values(base, f"{mod}_mean"),
                                      _values(base, f"{mod}_std"))
                ratio = np.asarray(_values(cand, f"{mod}_std"), dtype=np.float64) / np.asarray(
                    _values(base, f"{mod}_std"), dtype=np.float64)
            except (TypeError, ValueError) as exc:
                reason = f"fold {k} {mod}: {rel} {exc}"
                fold[mod] = {"compared": False, "reason": reason}
                fold["compared"] = False
                uncompared.append(reason)
                continue
            over = np.flatnonzero(shift > max_shift_sd)
            worst = int(np.argmax(shift))
            fold[mod] = {"n_channels": int(shift.size), "max_shift_sd": float(shift[worst]),
                         "worst_channel": worst, "channels_over": over.tolist(),
                         "std_ratio_range": ([float(ratio.min()), float(ratio.max())]
                                             if ratio.shape == shift.shape else None)}
            if over.size:
                shown = ", ".join(str(int(c)) for c in over[:8])
                more = f" (+{over.size - 8} more)" if over.size > 8 else ""
                drifting.append(f"fold {k} {mod} channel(s) {shown}{more} of {shift.size} "
                                f"shifted > {max_shift_sd} SD (max {shift[worst]:.2f} at "
                                f"channel {worst})")
        rows[str(k)] = fold
    return rows, drifting, uncompared


@register("baseline.drift", category="baseline",
          applies=lambda ctx: None if ctx.baseline is not None else "no baseline given",
          params={"alpha": 0.01, "max_psi": 0.25, "psi_bins": 10, "max_shift_sd": 1.0},
          description="corpus drift vs the baseline: KS + PSI per audio_stats column, "
                      "per-channel mean shift of the normalization stats")
def drift(ctx: RunContext, *, alpha: float, max_psi: float, psi_bins: int,
          max_shift_sd: float) -> CheckResult:
    """Per-column and per-channel drift between the baseline's and this run's corpus."""
    cand, base = ctx.frame(AUDIO_STATS_FILE), ctx.baseline.frame(AUDIO_STATS_FILE)
    columns = [c for c in cand.columns if c in base.columns and c not in _SKIP
               and np.issubdtype(cand[c].dtype, np.number)
               and np.issubdtype(base[c].dtype, np.number)]
    table, drifting, uncompared = {}, [], []
    if not columns:
        uncompared.append("audio_stats.parquet: no numeric column in both runs "
                          f"(candidate {sorted(map(str, cand.columns))}, baseline "
                          f"{sorted(map(str, base.columns))})")
    for col in columns:
        stat, p = _ks(base[col], cand[col])
        value = psi(base[col].to_numpy(), cand[col].to_numpy(), psi_bins)
        table[col] = {"ks": stat, "p": p, "psi": value}
        if not (np.isfinite(p) and np.isfinite(value)):
            uncompared.append(f"audio_stats.parquet {col}: no finite values in one run")
        elif p < alpha or value > max_psi:
            drifting.append(col)
    norm, norm_drifting, norm_uncompared = _norm_drift(ctx, max_shift_sd)
    uncompared += [f"norm_stats {u}" for u in norm_uncompared]
    worst = max(table, key=lambda c: table[c]["psi"] if np.isfinite(table[c]["psi"]) else -1,
                default=None)
    all_drift = drifting + [f"norm_stats {d}" for d in norm_drifting]
    parts = []
    if all_drift:
        parts.append(f"drift in {'; '.join(all_drift[:6])}"
                     + (f" (+{len(all_drift) - 6} more)" if len(all_drift) > 6 else ""))
    if uncompared:
        parts.append(f"could not compare: {'; '.join(uncompared[:4])}"
                     + (f" (+{len(uncompared) - 4} more)" if len(uncompared) > 4 else ""))
    n_norm = sum(1 for f in norm.values() for m in ("audio", "sensor")
                 if isinstance(f.get(m), dict) and "max_shift_sd" in f[m])
    message = ("; ".join(parts) if parts else
               f"no drift in {len(columns)} audio_stats columns (KS alpha={alpha}, PSI <= "
               f"{max_psi}) and {n_norm} fold/modality normalization statistics (every "
               f"channel's mean within {max_shift_sd} baseline SD)")
    return CheckResult(
        "baseline.drift", "baseline", not all_drift and not uncompared,
        observed={"drifting": len(all_drift), "uncompared": len(uncompared),
                  "worst_psi": None if worst is None else {worst: round(table[worst]["psi"], 4)},
                  "max_shift_sd": max((f[m]["max_shift_sd"] for f in norm.values()
                                       for m in ("audio", "sensor")
                                       if isinstance(f.get(m), dict)
                                       and "max_shift_sd" in f[m]), default=None)},
        expected={"ks_p": f">= {alpha}", "psi": f"<= {max_psi}",
                  "max_shift_sd": f"<= {max_shift_sd}", "uncompared": 0},
        message=message,
        details={"method": "scipy.stats.ks_2samp (two-sided) + PSI over baseline quantile "
                           f"bins ({psi_bins}); norm stats: per-channel |mean_c - mean_b| / "
                           "std_b, channel identity kept",
                 "audio_stats": table, "norm_stats": norm, "drifting": all_drift,
                 "uncompared": uncompared, "baseline_run": str(ctx.baseline.run_dir)})
