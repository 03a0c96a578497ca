"""Smoke replay: the release model on the baseline's best sensor-only fold.

Plan: find the fold where the sensor-only baseline (tag ``sensor-v1``) scored best
(``complete_results.json``), replay that fold's held-out takes through the multimodal
release model's ONNX file (tag ``mm-audiofix``) with onnxruntime from cached features,
and compare

1. **drift**: the replayed probabilities and macro F1 against the multimodal model's
   training-time predictions (``predictions.parquet``) on the same takes: max absolute
   difference of P(pro) <= ``max_prob_drift``, predicted-class agreement >=
   ``min_agreement``, |F1 difference| <= ``max_f1_drift``;
2. **vs sensor-only**: replayed multimodal macro F1 >= the baseline's recorded macro F1
   on the same takes minus ``margin``.
"""

from __future__ import annotations

import numpy as np

from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.replay._model import OnnxModel, macro_f1
from guardrails.replay._record import record
from guardrails.replay._setup import applies_replay, open_replay, recorded

__all__ = ["drift_result", "smoke"]

_PARAMS = {"registry": "", "tag": "mm-audiofix", "baseline_tag": "sensor-v1", "history": "",
           "max_prob_drift": 1e-3, "min_agreement": 1.0, "max_f1_drift": 0.01, "margin": 0.0,
           "threads": 1}


def drift_result(name: str, probs: np.ndarray, pred: np.ndarray, f1: float,
                 rec: dict, *, max_prob_drift: float, min_agreement: float,
                 max_f1_drift: float, what: str) -> CheckResult:
    """Replayed outputs vs recorded ones on the same takes (one result)."""
    prob_drift = float(np.max(np.abs(probs[:, 1].astype(np.float64) - rec["prob_pro"])))
    agreement = float(np.mean(pred == rec["pred"]))
    f1_drift = abs(f1 - rec["macro_f1"])
    problems = []
    if not prob_drift <= max_prob_drift:
        problems.append(f"P(pro) drifts by {prob_drift:.2e} > {max_prob_drift:g}")
    if not agreement >= min_agreement:
        problems.append(f"class agreement {agreement:.3f} < {min_agreement:g}")
    if not f1_drift <= max_f1_drift:
        problems.append(f"macro F1 {f1:.3f} vs recorded {rec['macro_f1']:.3f} "
                        f"(drift {f1_drift:.3f} > {max_f1_drift:g})")
    ok = not problems
    message = (f"replay matches {what}: F1 {f1:.3f} (recorded {rec['macro_f1']:.3f}), "
               f"max P drift {prob_drift:.1e}, agreement {agreement:.0%}") if ok \
        else f"replay drifts from {what}: " + "; ".join(problems)
    return CheckResult(name, "replay", ok,
                       observed={"macro_f1": f1, "recorded_f1": rec["macro_f1"],
                                 "max_prob_drift": prob_drift, "agreement": agreement},
                       expected={"max_prob_drift": max_prob_drift,
                                 "min_agreement": min_agreement, "max_f1_drift": max_f1_drift},
                       message=message)


@register("replay.smoke", category="replay", params=_PARAMS, lane="timed",
          applies=lambda ctx: applies_replay(ctx),
          description="release model (ONNX) on the baseline's best sensor-only fold: no "
                      "drift from training, not worse than sensor-only")
def smoke(ctx, *, registry: str, tag: str, baseline_tag: str, history: str,
          max_prob_drift: float, min_agreement: float, max_f1_drift: float, margin: float,
          threads: int) -> list[CheckResult]:
    """Smoke replay (see the module docstring); appends one history row."""
    rp = open_replay(ctx.run_dir, registry=registry, tag=tag, baseline_tag=baseline_tag)
    model = OnnxModel(rp.onnx(), threads=threads)
    out = model.predict(rp.batch)
    f1 = macro_f1(rp.labels, out.pred)
    ids = rp.batch.sample_ids
    rec_mm = recorded(rp.model.run_dir, rp.model.mode, rp.fold, ids)
    rec_base = recorded(rp.baseline.run_dir, rp.baseline.mode, rp.fold, ids)
    drift = drift_result("replay.smoke.drift", out.probs, out.pred, f1, rec_mm,
                         max_prob_drift=max_prob_drift, min_agreement=min_agreement,
                         max_f1_drift=max_f1_drift, what=f"{tag} at training time")
    base_f1 = rec_base["macro_f1"]
    better = f1 >= base_f1 - margin
    vs = CheckResult(
        "replay.smoke.vs_baseline", "replay", better,
        observed={"multimodal_f1": f1, "sensor_only_f1": base_f1, "delta": f1 - base_f1},
        expected=f"multimodal F1 >= sensor-only F1 - {margin:g}",
        message=(f"fold {rp.fold} ({len(ids)} takes): {tag} F1 {f1:.3f} "
                 f"{'>=' if better else '<'} {baseline_tag} F1 {base_f1:.3f}"
                 + ("" if better else f" - {margin:g}: multimodal is worse than sensor-only")),
        details={"baseline_best_fold_f1": rp.baseline_fold_f1})
    weights = out.modality_weights
    metrics = {"macro_f1": f1, "recorded_f1": rec_mm["macro_f1"], "sensor_only_f1": base_f1,
               "max_prob_drift": drift.observed["max_prob_drift"],
               "agreement": drift.observed["agreement"],
               "audio_share": None if weights is None else float(weights[:, 1].mean()),
               "latency_ms": out.latency_ms, "latency_median_ms": out.latency_median_ms,
               "batch_ms": out.batch_ms}
    return record("smoke", rp, model_sha256=model.sha256, results=[drift, vs], metrics=metrics,
                  macro_f1=f1, latency_ms=out.latency_ms, baseline_f1=base_f1,
                  history=history)
