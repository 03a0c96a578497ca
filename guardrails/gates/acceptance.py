"""Acceptance gates on macro F1 (DESIGN.md section 4), with verdict stability.

Gates (thresholds from the criteria file; defaults are the improvement plan's):

- ``gate.multimodal_f1``: multimodal mean macro F1 ``>= min_mean`` (0.78) and std over
  folds ``<= max_std`` (0.02);
- ``gate.audio_f1``: audio-only mean ``>= 0.62`` and std ``<= 0.04``;
- ``gate.multimodal_vs_sensor``: multimodal mean minus sensor-only mean ``>= 0.05``.

The numbers gated are recomputed from the run's artifacts, never read on trust: each
fold's macro F1 from its rows of ``predictions.parquet``, then the mean and the std over
folds with ``ddof = STD_DDOF`` (``profy.schemas.STD_DDOF = 0``, population std; the one
constant profy's results writer uses as well). What ``complete_results.json`` publishes
is shown beside them and checked by ``gate.results_match_predictions``; editing it cannot
change these verdicts.

Boundaries are inclusive and exact: a mean equal to ``min_mean`` passes, a std equal
to ``max_std`` passes; values are compared as stored, without rounding. A missing
mode, fold or statistic, or a NaN, fails with the reason; it never passes.

Verdict stability: the probability that the gate would pass on a bootstrap resample
of the held-out takes, drawing *players* with replacement within each (fold, label)
stratum (a player's takes are not independent; the folds are stratified by label),
recomputing every fold's macro F1 from the predictions and applying the same rule
(``n_boot`` resamples, seeded by ``--seed``). Two modes (``multimodal_vs_sensor``) are
paired by player id. A stratum of fewer than two players never varies, so the
stability is then unknown (``None``, with the reason), not 1.
``min_stability`` (default 0: reported only) makes a pass also require that
probability; it is shown in ``observed`` and ``details["stability"]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.gates._evidence import (
    MIN_STRATUM_PLAYERS,
    STD_DDOF,
    expected_folds,
    fold_players,
    gate_rng,
    held_out,
    pair_folds,
    recomputed_f1,
    resample_fold_f1,
    resample_weights,
    results_f1,
    thin_strata,
)

__all__ = ["delta_verdict", "finish_with_stability", "stability_of", "threshold_verdict"]


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


def stability_of(passes: np.ndarray) -> float:
    """Share of resamples on which the gate passed (NaN resamples count as fails)."""
    passes = np.asarray(passes, dtype=bool)
    return float(passes.mean()) if passes.size else float("nan")


def _fold_f1_samples(ctx, name: str, modes: list[str], n_boot: int
                     ) -> tuple[dict[str, np.ndarray] | None, str | None, dict[str, Any]]:
    """Per mode, bootstrap macro F1 ``(n_boot, n_folds)`` with shared (paired) weights.

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
            return None, f"predictions.parquet: {exc}", {}
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
    return {m: resample_fold_f1(f, weights) for m, f in per_mode.items()}, None, dropped


def _published(ctx, mode: str, mean: float | None, std: float | None,
               tolerance: float = 1e-6) -> tuple[dict[str, Any], str]:
    """What complete_results.json publishes, and a note when it disagrees."""
    _, pub_mean, pub_std, problems = results_f1(ctx, mode)
    pub = {"mean": pub_mean, "std": pub_std, "problems": problems}
    off = [f"{stat} {p!r}" if p is None else f"{stat} {p:.4f}"
           for stat, p, r in (("mean", pub_mean, mean), ("std", pub_std, std))
           if r is not None and (p is None or abs(p - r) > tolerance)]
    note = (f" [complete_results.json publishes {', '.join(off)}: not used; see "
            f"gate.results_match_predictions]" if off else "")
    return pub, note


def finish_with_stability(name: str, passed_rule: bool, reason: str, stability: float | None,
                          note: str | None, min_stability: float, observed: dict,
                          expected: dict, details: dict) -> CheckResult:
    """The gate's result with its verdict stability (shared by every threshold gate).

    ``stability`` goes to ``observed`` and ``details``; ``min_stability > 0`` turns a
    pass whose stability is below it (or unknown, ``note`` says why) into a fail.
    """
    observed = {**observed, "stability": None if stability is None else round(stability, 4)}
    details = {**details, "stability": stability, "stability_note": note,
               "min_stability": min_stability}
    passed = passed_rule
    if min_stability > 0:
        expected = {**expected, "stability": f">= {min_stability}"}
        if stability is None or not stability >= min_stability:
            passed = False
            reason += (f"; verdict stability {stability:.2f} < {min_stability}"
                       if stability is not None else f"; stability unknown ({note})")
    elif passed_rule and stability is not None and stability < 0.5:
        reason += f" (fragile: holds in {stability:.0%} of player resamples)"
    return CheckResult(name, "gate", passed, observed=observed, expected=expected,
                       message=reason, details=details)


def _f1_gate(ctx, name: str, mode: str, *, min_mean: float, max_std: float,
             min_stability: float, n_boot: int) -> CheckResult:
    per_fold, mean, std, problems = recomputed_f1(ctx, mode)
    expected = {"mean": f">= {min_mean}", "std": f"<= {max_std}"}
    observed = {"mean": _r(mean), "std": _r(std)}
    details: dict[str, Any] = {"mode": mode, "per_fold": per_fold, "mean": mean, "std": std,
                               "std_ddof": STD_DDOF, "n_boot": n_boot,
                               "source": "recomputed from predictions.parquet"}
    if problems:
        return CheckResult(name, "gate", False, observed=observed, expected=expected,
                           message="; ".join(problems), details=details)
    details["published"], note = _published(ctx, mode, mean, std)
    passed, reason = threshold_verdict(mean, std, min_mean=min_mean, max_std=max_std)
    samples, why, _ = _fold_f1_samples(ctx, name, [mode], n_boot)
    stability = None
    if samples is not None:
        f1 = samples[mode]
        means, stds = f1.mean(axis=1), f1.std(axis=1, ddof=STD_DDOF)
        stability = stability_of((means >= min_mean) & (stds <= max_std))
        details["bootstrap_mean_f1"] = [float(np.nanquantile(means, q)) for q in (0.05, 0.95)]
    return finish_with_stability(name, passed, f"{mode}: {reason}{note}", stability, why,
                                 min_stability, observed, expected, details)


_F1_PARAMS = {"min_stability": 0.0, "n_boot": 1000}


@register("gate.multimodal_f1", category="gate",
          params={"min_mean": 0.78, "max_std": 0.02, **_F1_PARAMS},
          description="multimodal macro F1: mean >= 0.78, std <= 0.02 over folds (+ stability)")
def multimodal_f1(ctx, *, min_mean: float, max_std: float, min_stability: float,
                  n_boot: int) -> CheckResult:
    """The plan's headline gate on the multimodal model."""
    return _f1_gate(ctx, "gate.multimodal_f1", "multimodal", min_mean=min_mean,
                    max_std=max_std, min_stability=min_stability, n_boot=n_boot)


@register("gate.audio_f1", category="gate",
          params={"min_mean": 0.62, "max_std": 0.04, **_F1_PARAMS},
          description="audio-only macro F1: mean >= 0.62, std <= 0.04 over folds (+ stability)")
def audio_f1(ctx, *, min_mean: float, max_std: float, min_stability: float,
             n_boot: int) -> CheckResult:
    """The audio branch must carry signal on its own (the 128-channel fix)."""
    return _f1_gate(ctx, "gate.audio_f1", "audio", min_mean=min_mean, max_std=max_std,
                    min_stability=min_stability, n_boot=n_boot)


@register("gate.multimodal_vs_sensor", category="gate",
          params={"min_delta": 0.05, **_F1_PARAMS},
          description="multimodal mean macro F1 beats sensor-only by >= 0.05 (+ stability)")
def multimodal_vs_sensor(ctx, *, min_delta: float, min_stability: float,
                         n_boot: int) -> CheckResult:
    """Fusion must earn its keep over the sensor-only model."""
    name = "gate.multimodal_vs_sensor"
    _, mm, _, p_mm = recomputed_f1(ctx, "multimodal")
    _, se, _, p_se = recomputed_f1(ctx, "sensor")
    problems = p_mm + p_se
    delta = None if mm is None or se is None else mm - se
    observed = {"delta": _r(delta), "multimodal": _r(mm), "sensor": _r(se)}
    expected = {"delta": f">= {min_delta}"}
    details: dict[str, Any] = {"source": "recomputed from predictions.parquet",
                               "n_boot": n_boot}
    if problems:
        return CheckResult(name, "gate", False, observed=observed, expected=expected,
                           message="; ".join(problems), details=details)
    notes = "".join(_published(ctx, m, v, None)[1] for m, v in (("multimodal", mm),
                                                                 ("sensor", se)))
    passed, reason = delta_verdict(delta, min_delta=min_delta)
    samples, why, dropped = _fold_f1_samples(ctx, name, ["multimodal", "sensor"], n_boot)
    details["paired_players_dropped"] = dropped
    stability = None
    if samples is not None:  # paired: one player resample scores both modes
        deltas = samples["multimodal"].mean(axis=1) - samples["sensor"].mean(axis=1)
        stability = stability_of(deltas >= min_delta)
    return finish_with_stability(name, passed, f"multimodal - sensor: {reason}{notes}",
                                 stability, why, min_stability, observed, expected, details)
