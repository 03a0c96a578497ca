"""Gates on the fusion gate's behaviour and on what ``training.log`` must record.

- ``gate.training_log``: ``training.log`` holds a modality-weight summary
  (``MODALITY_WEIGHTS`` lines) and, for every fold, a normalization reference
  (``NORM_REF fold=K path=... sha256=...``) whose path resolves to an existing file
  inside the run with exactly that sha256.
- ``gate.sensor_weight_share``: the sensor weight is ``>= min_weight`` (0.5) for at
  least ``min_fraction`` (80%) of the held-out (test-role) takes in
  ``modality_weights.parquet``; with its verdict stability (the pooled-statistic
  estimator of :mod:`guardrails.gates._stability`: players resampled within (fold,
  label) strata, fresh share ``T_obs + T_b - T_b'``; unknown, with the reason, when a
  stratum holds a single player) and its decidability (the share's player-clustered
  sampling sd against its distance to ``min_fraction``).
- ``gate.sensor_weight_clamp``: the configured clamp ``model.min_sensor_weight`` is at
  least the plan's 0.35, and no recorded sensor share (``modality_weights.parquet``,
  ``gate_log.parquet``) falls below it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np

from guardrails._context import RunContext
from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.errors import ArtifactError
from guardrails.gates._evidence import (
    MIN_STRATUM_PLAYERS,
    expected_folds,
    expected_modes,
    gate_rng,
)
from guardrails.gates._metrics import stratified_player_weights
from guardrails.gates._stability import decidability, pivot_pass_rate
from profy.contract.layout import GATE_LOG_FILE, MODALITY_WEIGHTS_FILE, SPLITS_FILE

__all__ = ["norm_refs", "sensor_weight_clamp", "sensor_weight_share", "training_log"]

_NORM_REF = re.compile(r"^NORM_REF (.*)$", re.MULTILINE)
_MW = re.compile(r"^MODALITY_WEIGHTS (.*)$", re.MULTILINE)


def _fields(body: str) -> dict[str, str]:
    return dict(tok.split("=", 1) for tok in body.split() if "=" in tok)


def norm_refs(log: str) -> list[dict[str, str]]:
    """The ``NORM_REF`` lines of a training log as dicts."""
    return [_fields(b) for b in _NORM_REF.findall(log)]


def _multimodal_applies(ctx) -> str | None:
    try:
        modes = expected_modes(ctx)
    except ArtifactError:
        return None  # the check itself reports the missing config as a failure
    return None if "multimodal" in modes else "no multimodal mode in this run"


@register("gate.training_log", category="gate",
          description="training.log: modality-weight summary + NORM_REF per fold resolving "
                      "to an existing artifact with the same sha256")
def training_log(ctx: RunContext) -> CheckResult:
    """The run's log must let a reader find its fusion summary and normalization."""
    name = "gate.training_log"
    log = ctx.text("training.log")
    problems: list[str] = []
    mw = [_fields(b) for b in _MW.findall(log)]
    if "multimodal" in expected_modes(ctx) and not mw:
        problems.append("no MODALITY_WEIGHTS summary line")
    refs = {r.get("fold"): r for r in norm_refs(log)}
    resolved: dict[str, Any] = {}
    for k in expected_folds(ctx):
        ref = refs.get(str(k))
        if ref is None:
            problems.append(f"fold {k}: no NORM_REF line")
            continue
        rel, want = ref.get("path"), ref.get("sha256")
        if not rel or not want:
            problems.append(f"fold {k}: NORM_REF lacks path= or sha256=")
            continue
        try:
            path = ctx.path(rel)
        except ArtifactError as exc:
            problems.append(f"fold {k}: NORM_REF {exc.problem}: {rel}")
            continue
        got = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        resolved[str(k)] = {"path": rel, "sha256_log": want, "sha256_file": got}
        if got != want:
            problems.append(f"fold {k}: {rel} sha256 {str(got)[:12]}… != logged {want[:12]}…")
    passed = not problems
    return CheckResult(name, "gate", passed,
                       observed={"modality_weight_lines": len(mw), "norm_refs": len(refs)},
                       expected={"modality_weight_lines": ">= 1",
                                 "norm_refs": "one per fold, hash matches"},
                       message=("modality-weight summary present; every fold's NORM_REF "
                                "resolves with a matching sha256") if passed
                       else "; ".join(problems),
                       details={"problems": problems, "norm_refs": resolved,
                                "modality_weights": mw})


def _held_out_weights(ctx):
    mw = ctx.frame(MODALITY_WEIGHTS_FILE)
    splits = ctx.frame(SPLITS_FILE)
    test = splits[splits["role"] == "test"][["sample_id", "fold", "player_id", "label"]]
    merged = mw.merge(test, on=["sample_id", "fold"], how="inner")
    return merged, int(len(mw) - len(merged))


def _share_resamples(frame, min_weight: float, n_boot: int, rng: np.random.Generator):
    """Pooled share of hits over player resamples within (fold, label) strata.

    Returns:
        ``(samples (n_boot,), note, n_players)``; ``samples`` is None (``note`` says why)
        when a stratum holds fewer than two players: it would never vary.
    """
    hits_b, n_b = np.zeros(n_boot), np.zeros(n_boot)
    thin, n_players = [], 0
    for k, g in frame.groupby("fold", sort=True):
        players, inv = np.unique(g["player_id"].astype(str), return_inverse=True)
        n_players += len(players)
        take_labels = g["label"].astype(str).to_numpy()
        labels = np.array([own[0] if own.size == 1 else "mixed-label" for own in
                           (np.unique(take_labels[inv == i]) for i in range(len(players)))])
        keys, sizes = np.unique(labels, return_counts=True)
        if (sizes < MIN_STRATUM_PLAYERS).any():
            thin.append(f"fold {k}: " + ", ".join(
                f"{n} {key} player" + ("s" if n != 1 else "")
                for key, n in zip(keys, sizes, strict=True) if n < MIN_STRATUM_PLAYERS))
            continue
        per_hits = np.bincount(inv, weights=(g["sensor_weight"] >= min_weight),
                               minlength=len(players))
        per_n = np.bincount(inv, minlength=len(players))
        weights = stratified_player_weights(labels, n_boot, rng)
        hits_b += weights @ per_hits
        n_b += weights @ per_n
    if thin:
        return None, (f"cannot be estimated: {'; '.join(thin)} (players are resampled within "
                      f"(fold, label) strata; each needs >= {MIN_STRATUM_PLAYERS})"), n_players
    return hits_b / n_b, None, n_players


@register("gate.sensor_weight_share", category="gate", applies=_multimodal_applies,
          params={"min_weight": 0.5, "min_fraction": 0.8, "min_stability": 0.0,
                  "n_boot": 1000},
          description="sensor weight >= 0.5 for >= 80% of held-out takes (+ stability)")
def sensor_weight_share(ctx: RunContext, *, min_weight: float, min_fraction: float,
                        min_stability: float, n_boot: int) -> CheckResult:
    """The fusion gate must lean on the reliable modality (the sensor) for most takes."""
    name = "gate.sensor_weight_share"
    frame, dropped = _held_out_weights(ctx)
    expected = {"fraction": f">= {min_fraction}", "weight": f">= {min_weight}"}
    w = frame["sensor_weight"].to_numpy(dtype=np.float64)
    problems = []
    if frame.empty:
        problems.append("modality_weights.parquet has no held-out (test-role) takes")
    if np.isnan(w).any():
        problems.append(f"{int(np.isnan(w).sum())} sensor weights are NaN")
    missing = sorted(set(expected_folds(ctx)) - {int(f) for f in frame["fold"].unique()})
    if missing:
        problems.append(f"fold(s) {missing} have no modality weights")
    hit = w >= min_weight  # NaN compares False: a NaN weight never counts as a hit
    fraction = float(hit.mean()) if len(w) else float("nan")
    per_fold = {int(k): float(g["sensor_weight"].ge(min_weight).mean())
                for k, g in frame.groupby("fold")}
    details: dict[str, Any] = {"per_fold": per_fold, "n": int(len(w)),
                               "not_held_out_rows": dropped, "min_stability": min_stability}
    if not problems and not fraction >= min_fraction:
        problems.append(f"sensor weight >= {min_weight} for {fraction:.1%} of held-out takes "
                        f"< {min_fraction:.0%}")
    stability, note = None, None
    if len(w) and not np.isnan(w).any():
        samples, note, n_players = _share_resamples(frame, min_weight, n_boot,
                                                    gate_rng(ctx, name))
        if samples is not None:
            stability = float(pivot_pass_rate(fraction, samples, min_fraction,
                                              higher_is_better=True))
            details["bootstrap_fraction"] = [float(np.quantile(samples, q))
                                             for q in (0.05, 0.95)]
            details["noise"], undecidable = decidability(
                "the share", fraction, min_fraction, float(np.std(samples)), n_players,
                unit="in all")
            details["undecidable"] = undecidable
    details["stability"], details["stability_note"] = stability, note
    if min_stability > 0 and not problems and not (stability or 0.0) >= min_stability:
        problems.append(f"verdict stability {stability} < {min_stability}" if stability
                        is not None else f"stability unknown ({note})")
    passed = not problems
    return CheckResult(name, "gate", passed,
                       observed={"fraction": round(fraction, 4) if len(w) else fraction,
                                 "stability": None if stability is None else round(stability, 4)},
                       expected=expected if min_stability <= 0
                       else {**expected, "stability": f">= {min_stability}"},
                       message=((f"sensor weight >= {min_weight} for {fraction:.1%} of "
                                 f"{len(w)} held-out takes") if passed else "; ".join(problems))
                       + (f" [{details['undecidable']}]" if details.get("undecidable") else ""),
                       details=details)


@register("gate.sensor_weight_clamp", category="gate", applies=_multimodal_applies,
          params={"plan_min": 0.35, "tolerance": 1e-6},
          description="configured sensor-share clamp >= 0.35 and never undercut in "
                      "modality_weights/gate_log")
def sensor_weight_clamp(ctx: RunContext, *, plan_min: float, tolerance: float) -> CheckResult:
    """The fusion gate's floor on the sensor share is configured and respected."""
    name = "gate.sensor_weight_clamp"
    clamp = (ctx.config.get("model") or {}).get("min_sensor_weight")
    problems: list[str] = []
    observed: dict[str, Any] = {"clamp": clamp}
    if not isinstance(clamp, (int, float)) or isinstance(clamp, bool) or not np.isfinite(clamp):
        problems.append(f"config model.min_sensor_weight is {clamp!r}, not a number")
        clamp = None
    elif clamp < plan_min:
        problems.append(f"config model.min_sensor_weight {clamp} < the plan's {plan_min}")
    for rel, column in ((MODALITY_WEIGHTS_FILE, "sensor_weight"),
                        (GATE_LOG_FILE, "sensor_weight")):
        if rel == GATE_LOG_FILE and not ctx.exists(rel):
            continue  # optional telemetry; modality_weights.parquet is required
        w = ctx.frame(rel)[column].to_numpy(dtype=np.float64)
        key = rel.split(".")[0]
        if not len(w) or np.isnan(w).any():
            problems.append(f"{rel}: {'empty' if not len(w) else 'NaN sensor weights'}")
            continue
        observed[f"{key}_min"] = round(float(w.min()), 4)
        if clamp is not None and w.min() < clamp - tolerance:
            below = int((w < clamp - tolerance).sum())
            problems.append(f"{rel}: {below} sensor weights below the clamp {clamp} "
                            f"(min {w.min():.4f})")
    passed = not problems
    return CheckResult(name, "gate", passed, observed=observed,
                       expected={"clamp": f">= {plan_min}", "sensor_weight": ">= clamp"},
                       message=(f"clamp {clamp} >= {plan_min}; no sensor share below it")
                       if passed else "; ".join(problems), details={"problems": problems})
