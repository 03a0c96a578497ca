"""Verdict stability: what the figure means, how it is estimated, and when a gate cannot decide.

**Definition.** A gate's *stability* is the probability that the same gate, with the
same thresholds, passes on a *fresh evaluation* of the same training recipe on new
players from the same population (same number of folds, players per fold and label mix
as this run), given this run's evidence. It is a predictive probability about a *fresh
run*, not the share of resamples of *this* run that pass: a bootstrap resample
scatters around this run's statistic, whereas a fresh run scatters around the unknown
true value, which itself lies somewhere around this run's statistic. The figure is
checked for calibration by ``tests/guardrails/test_calibration.py``: over simulated
evaluations with known truth (per-player accuracy drawn from a population; homogeneous
and heterogeneous folds; thresholds far above, near and far below), runs reported at
``x`` pass in about ``x`` of fresh runs (every reliability bin within 0.1).

Two estimators, one per kind of statistic (every gate reuses one of them):

* **Fold statistics** (:func:`fold_stability`; the mean and std of a per-fold count
  metric such as macro F1 or pro recall, resampled by :func:`resample_fold_metric`; the
  paired multimodal-minus-sensor fold delta): each fold's value is
  ``mu + b_k + e_k``, with ``b_k ~ N(0, tau^2)`` the fold-to-fold (between) variation a
  fresh split and training would draw again, and ``e_k ~ N(0, s^2)`` the sampling
  noise at the fold's size, ``s^2`` the mean over folds of the player-clustered
  bootstrap variance (players drawn with replacement within each (fold, label)
  stratum). The observed spread over folds already contains ``s^2``; resampling
  players inside each fold (today's figure until issue 19) adds it a second time and
  overstated a fresh run's std. Here ``tau`` gets its posterior on a grid (the fold
  values' sum of squares is ``(tau^2 + s^2) chi2(K-1)``; flat prior on ``tau`` in
  ``[0, TAU_MAX]``), ``mu`` is ``N(mean, (tau^2 + s^2) / K)`` around the run's mean, and
  fresh fold values are drawn from ``N(mu, tau^2 + s^2)``; the gate's own rule (mean,
  std, or both) is applied to every draw and the stability is the share that passes.
* **Pooled statistics** (:func:`pivot_pass_rate`; the sensor-weight share, the worst
  slice's F1 and the ECE, the last two through :func:`bounded_pivot_pass_rate`): a
  fresh statistic is
  ``T_obs + (T_b - T_obs) - (T_b' - T_obs)`` for two independent player resamples
  ``b, b'``: a fresh run's error and this run's error have the same (bootstrap)
  distribution, so their difference is the predictive deviation; a bias the statistic
  has at this size (ECE and a minimum over slices are biased) cancels. All ``B^2``
  pairs of the ``B`` resamples are used. For the worst slice's F1 (a minimum) and the
  ECE (biased upward at small n) the calibration simulator finds the pivot calibrated
  when players are resampled within (fold, label) strata, as a fresh evaluation keeps
  the label mix, with Rao-Wu rescaled weights (:func:`rescaled_player_weights`): the
  plain bootstrap's ``(n - 1) / n`` variance at 4-6 players per stratum left the ECE's
  pivot off by about 0.1 in mid bins, and resampling within folds only (the label mix
  varying) left it too wide.

**Decidability** (:func:`decidability`): each threshold gate also reports the sampling
sd of its statistic at this run's size (player-clustered) and, when the threshold lies
within that noise, says so and how many players would bring the noise down to the
distance that matters; the verdict itself stays the criteria's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["STD_NOISE_FACTOR", "TAU_MAX", "bounded_pivot_pass_rate", "decidability",
           "fold_predictive", "fold_stability", "pivot_pass_rate", "players_needed",
           "rescaled_player_weights", "resample_fold_metric"]

# Prior on the fold-to-fold (between) sd of a fold score: flat on [0, TAU_MAX]. Three folds
# cannot estimate it (their spread is a chi-square with 2 degrees of freedom), so the figure
# rests on this prior; 0.07 is what the calibration simulator (fold sd of the fold's mean
# accuracy 0 or up to 0.08) finds calibrated. A recipe whose folds differ more needs more.
TAU_MAX = 0.07
_N_GRID = 64
_MIN_VAR = 1e-10  # a fold whose resamples never vary (every player perfect) still has a scale
STD_NOISE_FACTOR = 1.0  # a std limit below STD_NOISE_FACTOR x the fold noise sd is undecidable


def fold_predictive(observed, within_var, n_draws: int, rng: np.random.Generator,
                    tau_max: float = TAU_MAX) -> np.ndarray:
    """Per-fold values of fresh evaluations, drawn from their posterior predictive.

    Model: ``x_k = mu + b_k + e_k``, ``b_k ~ N(0, tau^2)``, ``e_k ~ N(0, s^2)`` with
    ``s^2`` the mean of ``within_var`` over folds; flat priors on ``mu`` and on ``tau`` in
    ``[0, tau_max]`` (a grid of 64 values). A fresh evaluation has the same fold sizes, so
    the same ``s^2``. The centre is the plain mean over folds (the gates' statistic; a
    precision-weighted mean would lean towards high-F1 folds, whose F1 varies less).

    Args:
        observed: per-fold values of this run, ``(..., K)`` (leading axes: independent runs).
        within_var: per-fold sampling variance at this run's size, ``(..., K)`` (the
            player-clustered bootstrap variance of each fold's value).
        n_draws: fresh evaluations to draw per run.
        rng: the generator.
        tau_max: upper end of the between-fold sd prior.

    Returns:
        ``(..., n_draws, K)`` fresh per-fold values; apply the gate's rule to each draw.
    """
    x = np.asarray(observed, dtype=np.float64)
    s2 = np.asarray(within_var, dtype=np.float64)
    if x.shape != s2.shape or x.ndim < 1:
        raise ValueError(f"observed {x.shape} and within_var {s2.shape} must match (..., K)")
    k = x.shape[-1]
    noise = np.maximum(s2.mean(axis=-1), _MIN_VAR)                     # (...,) pooled
    tau2 = np.linspace(0.0, tau_max, _N_GRID) ** 2                     # (T,)
    v = tau2 + noise[..., None]                                         # (..., T)
    ss = ((x - x.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)       # (...,)
    # SS ~ v chi2(K-1): log-likelihood of v up to a constant (mu integrated out)
    loglik = -0.5 * (k - 1) * np.log(v) - 0.5 * ss[..., None] / v
    post = np.exp(loglik - loglik.max(axis=-1, keepdims=True))
    cdf = np.cumsum(post, axis=-1)
    cdf /= cdf[..., -1:]
    lead = x.shape[:-1]
    flat_cdf = cdf.reshape(-1, _N_GRID)
    u = rng.random((flat_cdf.shape[0], n_draws))
    idx = np.minimum(_rowwise_count_le(flat_cdf, u), _N_GRID - 1).reshape(*lead, n_draws)
    v_draw = np.take_along_axis(v, idx, axis=-1)                        # (..., n_draws)
    # the gate's statistic is the plain mean over folds: centre there, sd sqrt(v / K)
    mu = x.mean(axis=-1)[..., None] + rng.standard_normal(idx.shape) * np.sqrt(v_draw / k)
    sd = np.sqrt(v_draw)[..., None]
    return mu[..., None] + sd * rng.standard_normal((*idx.shape, k))


def resample_fold_metric(fold_counts: Sequence[np.ndarray], weights: Sequence[np.ndarray],
                         metric: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """A count metric per player resample and fold, ``(B, K)``.

    Args:
        fold_counts: per fold, the players' confusion counts ``(G_k, 4)``.
        weights: per fold, the players' multiplicities in each resample ``(B, G_k)``.
        metric: any function of confusion counts ``(..., 4) -> (...)`` (macro F1, a
            class's recall: :func:`guardrails.gates._metrics.count_metric`).
    """
    return np.stack([metric(w @ c) for w, c in zip(weights, fold_counts, strict=True)],
                    axis=1)


def fold_stability(observed, samples, passes, n_draws: int, rng: np.random.Generator,
                   tau_max: float = TAU_MAX):
    """Stability of a rule on per-fold values (mean, std, paired delta: one code path).

    Args:
        observed: this run's per-fold values, ``(..., K)``.
        samples: their player-clustered bootstrap, ``(..., B, K)`` (only each fold's
            variance is used: the sampling noise at this run's size).
        passes: the gate's rule, per-fold values ``(..., K)`` -> bool ``(...)``.
        n_draws: fresh evaluations drawn from :func:`fold_predictive`.
        rng: the generator.

    Returns:
        The share of fresh evaluations on which ``passes`` holds, ``(...)``.
    """
    within = np.nanvar(np.asarray(samples, dtype=np.float64), axis=-2)
    fresh = fold_predictive(observed, within, n_draws, rng, tau_max)
    return np.asarray(passes(fresh), dtype=bool).mean(axis=-1)


def _rowwise_count_le(sorted_rows: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Per row, how many of ``sorted_rows[r]`` are <= each of ``queries[r]`` (2-D inputs)."""
    lo = min(float(sorted_rows.min()), float(queries.min()), 0.0)
    hi = max(float(sorted_rows.max()), float(queries.max()), 0.0)
    span = (hi - lo) + 1.0
    offset = (np.arange(sorted_rows.shape[0]) * span)[:, None]
    flat = (sorted_rows - lo + offset).ravel()
    hits = np.searchsorted(flat, (queries - lo + offset).ravel(), side="right")
    return hits.reshape(queries.shape) - (np.arange(sorted_rows.shape[0])
                                          * sorted_rows.shape[1])[:, None]


def pivot_pass_rate(observed, samples, threshold: float, *, higher_is_better: bool
                    ) -> np.ndarray | float:
    """Share of fresh runs ``T_obs + T_b - T_b'`` on the passing side of ``threshold``.

    Every pair ``(b, b')`` of the ``B`` resamples is used (``B^2`` fresh statistics, by
    sorting). A NaN resample (the statistic does not exist there) makes its pairs fail,
    as a NaN statistic fails the gate. Boundaries are inclusive, as the gates'.

    Args:
        observed: the run's statistic, scalar or ``(R,)``.
        samples: its player resamples, ``(B,)`` or ``(R, B)``.
        threshold: the gate's limit.
        higher_is_better: pass when ``>= threshold`` (else when ``<= threshold``).

    Returns:
        The stability, a float (or ``(R,)`` for batched input); NaN without resamples or
        with a NaN observed statistic.
    """
    s = np.asarray(samples, dtype=np.float64)
    obs = np.asarray(observed, dtype=np.float64)
    scalar = s.ndim == 1
    s2 = np.atleast_2d(s)
    obs = np.broadcast_to(obs.reshape(-1), (s2.shape[0],)).astype(np.float64)
    if not higher_is_better:  # T <= thr  <=>  -T >= -thr
        s2, obs, threshold = -s2, -obs, -threshold
    b = s2.shape[1]
    out = np.full(s2.shape[0], np.nan)
    if b:
        finite = np.isfinite(s2)
        # a NaN resample sorts above every query and queries below every sample: its
        # pairs never pass (bounded stand-ins keep the row-offset search exact enough)
        scale = 4.0 * (np.abs(np.r_[s2[finite], obs[np.isfinite(obs)], threshold]).max()
                       + 1.0)
        srt = np.sort(np.where(finite, s2, scale), axis=1)
        # pass: obs + s_i - s_j >= thr  <=>  s_j <= obs + s_i - thr
        queries = np.where(finite, np.nan_to_num(obs[:, None]) + s2 - threshold, -scale)
        hits = _rowwise_count_le(srt, queries)
        out = np.where(np.isfinite(obs), hits.sum(axis=1) / float(b * b), np.nan)
    return float(out[0]) if scalar else out


def bounded_pivot_pass_rate(observed, samples, threshold: float, *, higher_is_better: bool,
                            bounds: tuple[float, float]) -> np.ndarray | float:
    """:func:`pivot_pass_rate` for a statistic confined to ``bounds`` (an F1, an ECE).

    A fresh value ``T_obs + T_b - T_b'`` may leave the range the statistic can take; it
    is clipped there. Inside the range clipping decides nothing; at its ends it does: a
    threshold at or beyond the range's passing end (e.g. ``min F1 <= 0``) passes every
    fresh run with a statistic, one beyond its failing end passes none.
    """
    lo, hi = bounds
    s = np.asarray(samples, dtype=np.float64)
    always = threshold <= lo if higher_is_better else threshold >= hi
    never = threshold > hi if higher_is_better else threshold < lo
    if not (always or never):
        return pivot_pass_rate(observed, samples, threshold, higher_is_better=higher_is_better)
    s2 = np.atleast_2d(s)
    obs = np.broadcast_to(np.asarray(observed, dtype=np.float64).reshape(-1), (s2.shape[0],))
    b = s2.shape[1]
    share = (np.isfinite(s2).mean(axis=1) ** 2 if always else np.zeros(s2.shape[0])) if b \
        else np.full(s2.shape[0], np.nan)
    out = np.where(np.isfinite(obs), share, np.nan)
    return float(out[0]) if s.ndim == 1 else out


def rescaled_player_weights(strata, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Rao-Wu rescaled bootstrap weights of players drawn within strata, ``(n_boot, G)``.

    In each stratum of ``n >= 2`` players, ``n - 1`` are drawn with replacement and their
    multiplicities scaled by ``n / (n - 1)``: every resample keeps each stratum's total
    weight ``n``, and the variance of a sum over players is the unbiased one (the plain
    bootstrap's is ``(n - 1) / n`` of it: 0.8 for 5 players, which left a pooled
    statistic's pivot too narrow in the calibration simulator). A stratum of one player
    keeps weight 1 (it never varies; callers report such strata).

    Args:
        strata: each player's stratum, ``(G,)``.
        n_boot: resamples.
        rng: the generator; strata are drawn in sorted order, so a seed repeats.
    """
    keys = np.asarray(strata)
    if keys.ndim != 1 or keys.size < 1:
        raise ValueError("a fold without players cannot be resampled")
    out = np.ones((n_boot, keys.size))
    for key in np.unique(keys):
        members = np.flatnonzero(keys == key)
        n = members.size
        if n >= 2:
            draws = rng.multinomial(n - 1, np.full(n, 1.0 / n), size=n_boot)
            out[:, members] = draws * (n / (n - 1))
    return out


def players_needed(n_now: float, sd: float, target: float) -> int | None:
    """Players (per fold, as ``n_now``) at which a sampling sd ``sd`` shrinks to ``target``.

    A player-clustered sd falls as ``1 / sqrt(players)``; None when ``target`` is not
    positive (no size decides a statistic that sits on its threshold).
    """
    if not (target > 0 and math.isfinite(sd) and sd >= 0 and n_now > 0):
        return None
    return max(int(math.ceil(n_now * (sd / target) ** 2)), int(math.ceil(n_now)))


def decidability(what: str, value: float | None, threshold: float, sd: float | None,
                  n_players: float, unit: str = "per fold", *, spread: bool = False
                  ) -> tuple[dict[str, Any], str | None]:
    """Whether the run's size lets ``value`` be told apart from ``threshold``.

    Args:
        what: the statistic's name in the note (e.g. "mean fold F1").
        value: the run's statistic (None/NaN: nothing to decide).
        threshold: the gate's limit on it.
        sd: the statistic's player-clustered sampling sd at this run's size.
        n_players: players per ``unit`` in this run.
        unit: what ``n_players`` counts ("per fold", "in all").
        spread: the limit bounds a *spread* (a std over folds): undecidable when the
            per-fold noise sd alone exceeds the limit (even folds that do not differ
            would show a std about that large); else undecidable when the distance
            ``|value - threshold|`` is below one sd.

    Returns:
        ``(info, note)``: ``info`` (for ``details``) holds ``sd``, ``distance``,
        ``decidable``, ``players_needed``; ``note`` is the message's sentence, or None
        when the statistic is decidable at this size.
    """
    info: dict[str, Any] = {"statistic": what, "sd": sd, "threshold": threshold,
                            "n_players": n_players, "unit": unit}
    if sd is None or not math.isfinite(sd) or value is None or not math.isfinite(value):
        return {**info, "decidable": None}, None
    n_txt = f"{n_players:.0f} players {unit}"
    if spread:
        target = threshold / STD_NOISE_FACTOR
        need = players_needed(n_players, sd, target)
        ok = sd <= target
        info.update(distance=None, decidable=ok, players_needed=None if ok else need)
        if ok:
            return info, None
        return info, (f"undecidable at {n_txt}: {what} noise sd {sd:.3f} > the {threshold} "
                      f"limit" + (f"; about {need} players {unit} are needed" if need else ""))
    distance = abs(value - threshold)
    need = players_needed(n_players, sd, distance)
    ok = distance >= sd
    info.update(distance=distance, decidable=ok, players_needed=None if ok else need)
    if ok:
        return info, None
    return info, (f"undecidable at {n_txt}: {what} {value:.3f} lies within its noise sd "
                  f"{sd:.3f} of the {threshold} limit"
                  + (f"; about {need} players {unit} would make that distance one sd"
                     if need else ""))
