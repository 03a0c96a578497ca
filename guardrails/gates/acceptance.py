"""Acceptance gates on per-fold metrics (DESIGN.md section 4), with verdict stability.

Gates (thresholds from the criteria file; defaults are the improvement plan's):

- ``gate.multimodal_f1``: multimodal mean macro F1 ``>= min_mean`` (0.78) and std over
  folds ``<= max_std`` (0.02);
- ``gate.audio_f1``: audio-only mean ``>= 0.62`` and std ``<= 0.04``;
- ``gate.multimodal_vs_sensor``: multimodal mean minus sensor-only mean ``>= 0.05``;
- ``gate.audio_pro_recall``: audio-only mean recall of pros over folds ``>= min_mean``;
  off by default (``min_mean: null``: the check skips and says so).

Any count metric (a function of the confusion counts, named by its results path:
``macro_f1``, ``accuracy``, ``per_class.pro.recall``, ...) gates the same way through
:func:`metric_gate`, so a new threshold gate with stability is one registered function
naming its mode and metric, plus its criteria line.

The numbers gated are recomputed from the run's artifacts, never read on trust: each
fold's metric from its rows of ``predictions.parquet``, then the mean and the std over
folds with ``ddof = STD_DDOF`` (``profy.contract.schemas.STD_DDOF = 0``, population std; the one
constant profy's results writer uses as well). What ``complete_results.json`` publishes
is shown beside them and checked by ``gate.results_match_predictions``; editing it cannot
change these verdicts.

Boundaries are inclusive and exact: a mean equal to ``min_mean`` passes, a std equal
to ``max_std`` passes; values are compared as stored, without rounding. A missing
mode, fold or statistic, or a NaN, fails with the reason; it never passes.

Verdict stability (defined in :mod:`guardrails.gates._stability`): the probability
that the gate passes on a fresh evaluation of the same recipe on new players from the
same population, given this run. Per-fold values (macro F1, or the paired multimodal -
sensor delta) are drawn from their posterior predictive
(:func:`~guardrails.gates._stability.fold_stability`), whose sampling noise per fold is
the variance of a player bootstrap (players drawn with replacement within each (fold,
label) stratum; two modes paired by player id); the gate's own rule is applied to each
draw (``n_boot`` draws, seeded by ``--seed``). A stratum of fewer than two players
never varies, so the stability is then unknown (``None``, with the reason), not 1.
``min_stability`` (default 0: reported only) makes a pass also require that
probability; it is shown in ``observed`` and ``details["stability"]``.

Decidability: ``details["noise"]`` holds the player-clustered sampling sd of each
statistic at this run's size (a fold's F1, the mean over folds, the delta) and whether
the threshold lies within it; when it does, the message says so and how many players
per fold would be needed. The verdict stays the criteria's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.errors import CriteriaError
from guardrails.gates._evidence import (
    MIN_STRATUM_PLAYERS,
    STD_DDOF,
    expected_folds,
    fold_players,
    gate_rng,
    held_out,
    pair_folds,
    recomputed_metric,
    resample_fold_metric,
    resample_weights,
    results_metric,
    thin_strata,
)
from guardrails.gates._metrics import CountMetric, count_metric
from guardrails.gates._stability import decidability, fold_stability
from profy.contract.layout import PREDICTIONS_FILE

if TYPE_CHECKING:
    from guardrails._context import RunContext

__all__ = ["audio_f1", "audio_pro_recall", "delta_rule", "delta_verdict", "f1_rule",
           "finish_with_stability", "mean_std_rule", "metric_gate", "multimodal_f1",
           "multimodal_vs_sensor", "stability_of", "threshold_verdict"]

_F1 = count_metric("macro_f1")


def _ok(x: Any) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _r(x: float | None) -> float | None:
    # observed values are for reading; details keep the full precision
    return round(x, 4) if _ok(x) else x


def threshold_verdict(mean: float | None, std: float | None, *, min_mean: float,
                      max_std: float) -> tuple[bool, str]:
    """``mean >= min_mean and std <= max_std`` (inclusive); NaN/None never passes.

    Returns:
        ``(passed, reason)``.
    """
    if not _ok(mean) or not _ok(std):
        return False, f"mean={mean!r} std={std!r}: not a finite number"
    reasons = []
    if not mean >= min_mean:
        reasons.append(f"mean {mean:.4f} < {min_mean}")
    if not std <= max_std:
        reasons.append(f"std {std:.4f} > {max_std}")
    return (not reasons), ("; ".join(reasons) or f"mean {mean:.4f} >= {min_mean}, "
                                                f"std {std:.4f} <= {max_std}")


def delta_verdict(delta: float | None, *, min_delta: float) -> tuple[bool, str]:
    """``delta >= min_delta`` (inclusive); NaN/None never passes."""
    if not _ok(delta):
        return False, f"delta={delta!r}: not a finite number"
    if delta >= min_delta:
        return True, f"delta {delta:+.4f} >= {min_delta}"
    return False, f"delta {delta:+.4f} < {min_delta}"


def mean_std_rule(min_mean: float, max_std: float):
    """A threshold gate's rule on per-fold values ``(..., K)`` -> bool ``(...)`` (inclusive)."""
    def passes(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        return ((values.mean(axis=-1) >= min_mean)
                & (values.std(axis=-1, ddof=STD_DDOF) <= max_std))
    return passes


f1_rule = mean_std_rule  # the F1 gates' rule (the name the calibration simulator uses)


def delta_rule(min_delta: float):
    """``gate.multimodal_vs_sensor``'s rule on per-fold deltas ``(..., K)``: mean >= min_delta."""
    def passes(delta: np.ndarray) -> np.ndarray:
        return np.asarray(delta, dtype=np.float64).mean(axis=-1) >= min_delta
    return passes


def stability_of(passes: np.ndarray) -> float:
    """Share of resamples on which the gate passed (NaN resamples count as fails)."""
    passes = np.asarray(passes, dtype=bool)
    return float(passes.mean()) if passes.size else float("nan")


def _fold_samples(ctx: RunContext, name: str, modes: list[str], n_boot: int,
                  metric: CountMetric = _F1
                  ) -> tuple[dict[str, np.ndarray] | None, str | None, dict[str, Any]]:
    """Per mode, bootstrap ``metric`` ``(n_boot, n_folds)`` with shared (paired) weights.

    With two modes the players are paired by id per fold (a player held out in only one
    mode's predictions is dropped and counted in the returned ``dropped``); players are
    drawn within (fold, label) strata.
    """
    folds = expected_folds(ctx)
    frame = held_out(ctx)
    per_mode = {}
    for mode in modes:
        try:
            players, problems = fold_players(frame, mode, folds)
        except ValueError as exc:  # a class id outside {0, 1}
            return None, f"{PREDICTIONS_FILE}: {exc}", {}
        if problems:
            return None, "; ".join(problems), {}
        per_mode[mode] = players
    dropped: dict[str, Any] = {}
    if len(modes) == 2:
        a, b, dropped, problems = pair_folds(per_mode[modes[0]], per_mode[modes[1]])
        if problems:
            return None, f"{modes[0]} vs {modes[1]}: " + "; ".join(problems), dropped
        per_mode = {modes[0]: a, modes[1]: b}
    elif len(modes) != 1:
        raise ValueError(f"stability resamples one mode or a pair, not {modes}")
    thin = thin_strata(per_mode[modes[0]], folds)
    if thin:
        return None, (f"cannot be estimated: {'; '.join(thin)} (players are resampled "
                      f"within (fold, label) strata; each needs >= {MIN_STRATUM_PLAYERS})"
                      ), dropped
    weights = resample_weights(per_mode[modes[0]], n_boot, gate_rng(ctx, name))
    return ({m: resample_fold_metric(f, weights, metric) for m, f in per_mode.items()}, None,
            dropped)


def _published(ctx: RunContext, mode: str, mean: float | None, std: float | None, *,
               metric: CountMetric = _F1, per_fold: dict[int, float] | None = None,
               tolerance: float = 1e-6) -> tuple[dict[str, Any], str]:
    """What complete_results.json publishes, and a note when it disagrees.

    A flat metric is compared on its published mean and std; a nested one (the file
    publishes it per fold only) on its per-fold values.
    """
    pub_folds, pub_mean, pub_std, problems = results_metric(ctx, mode, metric.path)
    if metric.aggregated:
        pub: dict[str, Any] = {"mean": pub_mean, "std": pub_std, "problems": problems}
        pairs = [("mean", pub_mean, mean), ("std", pub_std, std)]
    else:
        pub = {"per_fold": pub_folds, "problems": problems}
        pairs = [(f"fold {k} {metric.path}", pub_folds.get(k), v)
                 for k, v in sorted((per_fold or {}).items())]
    off = [f"{stat} {p!r}" if p is None else f"{stat} {p:.4f}"
           for stat, p, r in pairs if r is not None and (p is None or abs(p - r) > tolerance)]
    note = (f" [complete_results.json publishes {', '.join(off)}: not used; see "
            f"gate.results_match_predictions]" if off else "")
    return pub, note


def finish_with_stability(name: str, *, passed: bool, reason: str, stability: float | None,
                          stability_note: str | None, min_stability: float,
                          observed: dict[str, Any], expected: dict[str, Any],
                          details: dict[str, Any], undecidable: list[str] | None = None
                          ) -> CheckResult:
    """The gate's result with its verdict stability (shared by every threshold gate).

    Args:
        name: the check.
        passed: the verdict of the gate's own rule on this run.
        reason: the message so far (why it passed or failed).
        stability: the predicted pass probability, or None when it cannot be estimated.
        stability_note: why it is None (shown in the message when it matters).
        min_stability: ``> 0`` turns a pass whose stability is below it (or unknown) into
            a fail; 0 only reports it.
        observed, expected, details: the result's; ``stability`` is added to each.
        undecidable: sentences from :func:`~guardrails.gates._stability.decidability`,
            appended to the message; they never change the verdict.
    """
    observed = {**observed, "stability": None if stability is None else round(stability, 4)}
    details = {**details, "stability": stability, "stability_note": stability_note,
               "min_stability": min_stability}
    verdict = passed
    if min_stability > 0:
        expected = {**expected, "stability": f">= {min_stability}"}
        if stability is None or not stability >= min_stability:
            verdict = False
            reason += (f"; verdict stability {stability:.2f} < {min_stability}"
                       if stability is not None else f"; stability unknown ({stability_note})")
    elif passed and stability is not None and stability < 0.5:
        reason += f" (fragile: predicted to pass in {stability:.0%} of fresh evaluations)"
    if undecidable:
        reason += " [" + "; ".join(undecidable) + "]"
    return CheckResult(name, "gate", verdict, observed=observed, expected=expected,
                       message=reason, details=details)


def _players_per_fold(ctx: RunContext, modes: list[str]) -> float:
    frame = held_out(ctx)
    rows = frame[frame["mode"].isin(modes)]
    per_fold = rows.groupby("fold")["player_id"].nunique()
    return float(per_fold.mean()) if len(per_fold) else float("nan")


def fold_noise(samples: np.ndarray) -> tuple[float, float]:
    """Sampling sd of one fold's value and of the mean over folds, from ``(B, K)`` resamples.

    Player-clustered, as the bootstrap measures it: ``sqrt(mean_k var_k)`` and
    ``sqrt(sum_k var_k) / K``.
    """
    var = np.nanvar(np.asarray(samples, dtype=np.float64), axis=0)
    return float(np.sqrt(var.mean())), float(np.sqrt(var.sum()) / var.size)


def _disabled(name: str, mode: str, metric: CountMetric) -> CheckResult:
    return CheckResult(name, "gate", True, skipped=True,
                       message=f"skipped: disabled (criteria {name}.min_mean is null: set a "
                               f"threshold to gate {mode} {metric.label})",
                       details={"mode": mode, "metric": metric.path})


def _mean_std_stability(ctx: RunContext, name: str, mode: str, spec: CountMetric,
                        values: np.ndarray, per_fold: dict[int, float], *, min_mean: float,
                        max_std: float, n_boot: int, details: dict[str, Any]
                        ) -> tuple[float, list[str]]:
    """Stability of the mean/std rule from resamples ``values`` ``(B, K)``, and the
    undecidability notes; the interval and the noise go into ``details``."""
    observed = np.array([per_fold[k] for k in sorted(per_fold)])
    stability = float(fold_stability(observed, values, mean_std_rule(min_mean, max_std), n_boot,
                                     gate_rng(ctx, name + "/predictive")))
    details[f"bootstrap_mean_{spec.key}"] = [float(np.nanquantile(values.mean(axis=1), q))
                                             for q in (0.05, 0.95)]
    fold_sd, mean_sd = fold_noise(values)
    n = _players_per_fold(ctx, [mode])
    noise: dict[str, Any] = {}
    notes = []
    for key, what, value, limit, sd, spread in (
            ("std", f"fold {spec.label}", details["std"], max_std, fold_sd, True),
            ("mean", f"mean fold {spec.label}", details["mean"], min_mean, mean_sd, False)):
        noise[key], text = decidability(what, value, limit, sd, n, spread=spread)
        if text and math.isfinite(limit):
            notes.append(text)
    details["noise"] = noise
    return stability, notes


def metric_gate(ctx: RunContext, name: str, mode: str, metric: str = "macro_f1", *,
                min_mean: float | None, max_std: float, min_stability: float,
                n_boot: int) -> CheckResult:
    """A threshold gate on a count metric's mean and std over folds, with stability.

    Args:
        ctx: the run.
        name: the check's name (seeds its resamples).
        mode: the model judged (``audio``, ``multimodal``, ...).
        metric: a count metric's results path (:func:`~guardrails.gates._metrics.count_metric`).
        min_mean: the mean over folds must reach it (inclusive); None turns the gate off
            (a skip saying so, never a pass).
        max_std: the std over folds (``ddof = STD_DDOF``) must not exceed it.
        min_stability: see :func:`finish_with_stability`.
        n_boot: player resamples (and fresh evaluations drawn).

    Raises:
        CriteriaError: ``min_mean`` is neither null nor a number.
    """
    spec = count_metric(metric)
    if min_mean is None:
        return _disabled(name, mode, spec)
    if not isinstance(min_mean, (int, float)) or isinstance(min_mean, bool):
        raise CriteriaError(f"{name}.min_mean must be a number or null, got {min_mean!r}")
    per_fold, mean, std, problems = recomputed_metric(ctx, mode, spec)
    expected = {"mean": f">= {min_mean}", "std": f"<= {max_std}"}
    observed = {"mean": _r(mean), "std": _r(std)}
    details: dict[str, Any] = {"mode": mode, "metric": spec.path, "per_fold": per_fold,
                               "mean": mean, "std": std, "std_ddof": STD_DDOF,
                               "n_boot": n_boot, "source": "recomputed from predictions.parquet"}
    if problems:
        return CheckResult(name, "gate", False, observed=observed, expected=expected,
                           message="; ".join(problems), details=details)
    details["published"], note = _published(ctx, mode, mean, std, metric=spec,
                                            per_fold=per_fold)
    passed, reason = threshold_verdict(mean, std, min_mean=min_mean, max_std=max_std)
    samples, why, _ = _fold_samples(ctx, name, [mode], n_boot, spec)
    stability, notes = None, []
    if samples is not None:
        stability, notes = _mean_std_stability(ctx, name, mode, spec, samples[mode], per_fold,
                                               min_mean=min_mean, max_std=max_std,
                                               n_boot=n_boot, details=details)
    subject = mode if spec is _F1 else f"{mode} {spec.label}"
    return finish_with_stability(
        name, passed=passed, reason=f"{subject}: {reason}{note}", stability=stability,
        stability_note=why, min_stability=min_stability, observed=observed,
        expected=expected, details=details, undecidable=notes)


_STABILITY = {"min_stability": 0.0, "n_boot": 1000}


@register("gate.multimodal_f1", category="gate",
          params={"min_mean": 0.78, "max_std": 0.02, **_STABILITY},
          description="multimodal macro F1: mean >= 0.78, std <= 0.02 over folds (+ stability)")
def multimodal_f1(ctx: RunContext, *, min_mean: float, max_std: float, min_stability: float,
                  n_boot: int) -> CheckResult:
    """The plan's headline gate on the multimodal model."""
    return metric_gate(ctx, "gate.multimodal_f1", "multimodal", "macro_f1", min_mean=min_mean,
                       max_std=max_std, min_stability=min_stability, n_boot=n_boot)


@register("gate.audio_f1", category="gate",
          params={"min_mean": 0.62, "max_std": 0.04, **_STABILITY},
          description="audio-only macro F1: mean >= 0.62, std <= 0.04 over folds (+ stability)")
def audio_f1(ctx: RunContext, *, min_mean: float, max_std: float, min_stability: float,
             n_boot: int) -> CheckResult:
    """The audio branch must carry signal on its own (the 128-channel fix)."""
    return metric_gate(ctx, "gate.audio_f1", "audio", "macro_f1", min_mean=min_mean,
                       max_std=max_std, min_stability=min_stability, n_boot=n_boot)


@register("gate.audio_pro_recall", category="gate",
          params={"min_mean": None, "max_std": 1.0, **_STABILITY},
          description="audio-only recall of pros: mean over folds >= min_mean (+ stability); "
                      "off while min_mean is null")
def audio_pro_recall(ctx: RunContext, *, min_mean: float | None, max_std: float,
                     min_stability: float, n_boot: int) -> CheckResult:
    """The audio model must find the pros (a missed pro is called an amateur)."""
    return metric_gate(ctx, "gate.audio_pro_recall", "audio", "per_class.pro.recall",
                       min_mean=min_mean, max_std=max_std, min_stability=min_stability,
                       n_boot=n_boot)


@register("gate.multimodal_vs_sensor", category="gate",
          params={"min_delta": 0.05, **_STABILITY},
          description="multimodal mean macro F1 beats sensor-only by >= 0.05 (+ stability)")
def multimodal_vs_sensor(ctx: RunContext, *, min_delta: float, min_stability: float,
                         n_boot: int) -> CheckResult:
    """Fusion must earn its keep over the sensor-only model."""
    name = "gate.multimodal_vs_sensor"
    per_mm, mm, _, p_mm = recomputed_metric(ctx, "multimodal")
    per_se, se, _, p_se = recomputed_metric(ctx, "sensor")
    problems = p_mm + p_se
    delta = None if mm is None or se is None else mm - se
    observed = {"delta": _r(delta), "multimodal": _r(mm), "sensor": _r(se)}
    expected = {"delta": f">= {min_delta}"}
    details: dict[str, Any] = {"source": "recomputed from predictions.parquet",
                               "n_boot": n_boot}
    if problems:
        return CheckResult(name, "gate", False, observed=observed, expected=expected,
                           message="; ".join(problems), details=details)
    published = "".join(_published(ctx, m, v, None)[1] for m, v in (("multimodal", mm),
                                                                     ("sensor", se)))
    passed, reason = delta_verdict(delta, min_delta=min_delta)
    samples, why, dropped = _fold_samples(ctx, name, ["multimodal", "sensor"], n_boot)
    details["paired_players_dropped"] = dropped
    stability, notes = None, []
    if samples is not None:  # paired: one player resample scores both modes
        fold_deltas = samples["multimodal"] - samples["sensor"]
        observed_d = np.array([per_mm[k] - per_se[k] for k in sorted(per_mm)])
        stability = float(fold_stability(observed_d, fold_deltas, delta_rule(min_delta), n_boot,
                                          gate_rng(ctx, name + "/predictive")))
        _, delta_sd = fold_noise(fold_deltas)
        details["noise"], text = decidability(
            "the delta", delta, min_delta, delta_sd,
            _players_per_fold(ctx, ["multimodal", "sensor"]))
        notes += [text] if text else []
    return finish_with_stability(
        name, passed=passed, reason=f"multimodal - sensor: {reason}{published}",
        stability=stability, stability_note=why, min_stability=min_stability,
        observed=observed, expected=expected, details=details, undecidable=notes)
