"""Gates on the fusion gate's behaviour and on what ``training.log`` must record.

- ``gate.training_log``: ``training.log`` holds a modality-weight summary
  (``MODALITY_WEIGHTS`` lines) and, for every fold, a normalization reference
  (``NORM_REF fold=K path=... sha256=...``) whose path resolves to an existing file
  inside the run with exactly that sha256.
- ``gate.sensor_weight_share``: the sensor weight is ``>= min_weight`` (0.5) for at
  least ``min_fraction`` (80%) of the held-out (test-role) takes in
  ``modality_weights.parquet``; with the player-bootstrap verdict stability.
- ``gate.sensor_weight_clamp``: the configured clamp ``model.min_sensor_weight`` is at
  least the plan's 0.35, and no recorded sensor share (``modality_weights.parquet``,
  ``gate_log.parquet``) falls below it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np

from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.errors import ArtifactError
from guardrails.gates._evidence import expected_folds, expected_modes, gate_rng
from guardrails.gates._metrics import bootstrap_player_weights

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
def training_log(ctx) -> CheckResult:
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
    mw = ctx.frame("modality_weights.parquet")
    splits = ctx.frame("splits.parquet")
    test = splits[splits["role"] == "test"][["sample_id", "fold", "player_id"]]
    merged = mw.merge(test, on=["sample_id", "fold"], how="inner")
    return merged, int(len(mw) - len(merged))


@register("gate.sensor_weight_share", category="gate", applies=_multimodal_applies,
          params={"min_weight": 0.5, "min_fraction": 0.8, "min_stability": 0.0,
                  "n_boot": 1000},
          description="sensor weight >= 0.5 for >= 80% of held-out takes (+ stability)")
def sensor_weight_share(ctx, *, min_weight: float, min_fraction: float, min_stability: float,
                        n_boot: int) -> CheckResult:
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
    stability = None
    if len(w):
        rng = gate_rng(ctx, name)
        hits_b, n_b = np.zeros(n_boot), np.zeros(n_boot)
        for _, g in frame.groupby("fold"):
            players, inv = np.unique(g["player_id"].astype(str), return_inverse=True)
            per_hits = np.bincount(inv, weights=(g["sensor_weight"] >= min_weight),
                                   minlength=len(players))
            per_n = np.bincount(inv, minlength=len(players))
            weights = bootstrap_player_weights(len(players), n_boot, rng)
            hits_b += weights @ per_hits
            n_b += weights @ per_n
        stability = float(np.mean(hits_b / n_b >= min_fraction))
        details["stability"] = stability
    if min_stability > 0 and not problems and not (stability or 0.0) >= min_stability:
        problems.append(f"verdict stability {stability} < {min_stability}")
    passed = not problems
    return CheckResult(name, "gate", passed,
                       observed={"fraction": round(fraction, 4) if len(w) else fraction,
                                 "stability": None if stability is None else round(stability, 4)},
                       expected=expected if min_stability <= 0
                       else {**expected, "stability": f">= {min_stability}"},
                       message=(f"sensor weight >= {min_weight} for {fraction:.1%} of "
                                f"{len(w)} held-out takes") if passed else "; ".join(problems),
                       details=details)


@register("gate.sensor_weight_clamp", category="gate", applies=_multimodal_applies,
          params={"plan_min": 0.35, "tolerance": 1e-6},
          description="configured sensor-share clamp >= 0.35 and never undercut in "
                      "modality_weights/gate_log")
def sensor_weight_clamp(ctx, *, plan_min: float, tolerance: float) -> CheckResult:
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
    for rel, column in (("modality_weights.parquet", "sensor_weight"),
                        ("gate_log.parquet", "sensor_weight")):
        if rel == "gate_log.parquet" and not ctx.exists(rel):
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
