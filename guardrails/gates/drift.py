"""``baseline.drift``: data drift between the baseline's and the candidate's corpora.

Reported whenever a baseline is given; gated only as far as the criteria file says
(the default file lists it with ``severity: warning``).

Methods (named in the result's details):

- ``audio_stats.parquet``, every numeric column: the two-sample Kolmogorov-Smirnov test
  (``scipy.stats.ks_2samp``, two-sided; statistic and p-value) and the Population
  Stability Index, ``PSI = sum_b (c_b - b_b) * ln(c_b / b_b)`` over ``psi_bins``
  quantile bins of the baseline (shares floored at 1e-4 so an empty bin stays finite).
  A column drifts when ``p < alpha`` or ``PSI > max_psi``.
- normalization statistics (``norm_stats/fold_K.json``): per fold and statistic
  (``audio_mean``, ``audio_std``, ``sensor_mean``, ``sensor_std``) the KS test over the
  per-channel values and the largest channel shift of the mean in baseline standard
  deviations (``max |mu_c - mu_b| / sd_b``); reported, drifting when ``p < alpha``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.gates._evidence import expected_folds

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


def _norm_drift(ctx, alpha: float) -> tuple[dict[str, Any], list[str]]:
    rows, drifting = {}, []
    for k in expected_folds(ctx):
        rel = f"norm_stats/fold_{k}.json"
        if not (ctx.exists(rel) and ctx.baseline.exists(rel)):
            rows[str(k)] = "missing in one run"
            continue
        cand, base = ctx.json(rel), ctx.baseline.json(rel)
        fold = {}
        for key in ("audio_mean", "audio_std", "sensor_mean", "sensor_std"):
            c, b = np.asarray(cand.get(key) or [], float), np.asarray(base.get(key) or [], float)
            stat, p = _ks(b, c)
            fold[key] = {"ks": stat, "p": p}
            if np.isfinite(p) and p < alpha:
                drifting.append(f"fold {k} {key}")
        for mod in ("audio", "sensor"):
            mc = np.asarray(cand.get(f"{mod}_mean") or [], float)
            mb = np.asarray(base.get(f"{mod}_mean") or [], float)
            sb = np.asarray(base.get(f"{mod}_std") or [], float)
            if mc.shape == mb.shape == sb.shape and mc.size:
                with np.errstate(divide="ignore", invalid="ignore"):
                    fold[f"{mod}_max_shift_sd"] = float(np.nanmax(np.abs(mc - mb) / sb))
        rows[str(k)] = fold
    return rows, drifting


@register("baseline.drift", category="baseline",
          applies=lambda ctx: None if ctx.baseline is not None else "no baseline given",
          params={"alpha": 0.01, "max_psi": 0.25, "psi_bins": 10},
          description="corpus drift vs the baseline: KS + PSI per audio_stats column, KS on "
                      "normalization stats")
def drift(ctx, *, alpha: float, max_psi: float, psi_bins: int) -> CheckResult:
    """Per-column drift between the baseline's and this run's corpus statistics."""
    cand, base = ctx.frame("audio_stats.parquet"), ctx.baseline.frame("audio_stats.parquet")
    columns = [c for c in cand.columns if c in base.columns and c not in _SKIP
               and np.issubdtype(cand[c].dtype, np.number)]
    table, drifting = {}, []
    for col in columns:
        stat, p = _ks(base[col], cand[col])
        value = psi(base[col].to_numpy(), cand[col].to_numpy(), psi_bins)
        table[col] = {"ks": stat, "p": p, "psi": value}
        if (np.isfinite(p) and p < alpha) or (np.isfinite(value) and value > max_psi):
            drifting.append(col)
    norm, norm_drifting = _norm_drift(ctx, alpha)
    worst = max(table, key=lambda c: table[c]["psi"] if np.isfinite(table[c]["psi"]) else -1,
                default=None)
    all_drift = drifting + [f"norm_stats {d}" for d in norm_drifting]
    message = (f"no drift in {len(columns)} audio_stats columns and the normalization "
               f"statistics (KS alpha={alpha}, PSI <= {max_psi})" if not all_drift
               else f"drift in {', '.join(all_drift[:6])}"
               + (f" (+{len(all_drift) - 6} more)" if len(all_drift) > 6 else ""))
    return CheckResult(
        "baseline.drift", "baseline", not all_drift,
        observed={"drifting": len(all_drift), "worst_psi": None if worst is None
                  else {worst: round(table[worst]["psi"], 4)}},
        expected={"ks_p": f">= {alpha}", "psi": f"<= {max_psi}"}, message=message,
        details={"method": "scipy.stats.ks_2samp (two-sided) + PSI over baseline quantile "
                           f"bins ({psi_bins}); norm stats: KS over channels",
                 "audio_stats": table, "norm_stats": norm, "drifting": all_drift,
                 "baseline_run": str(ctx.baseline.run_dir)})
