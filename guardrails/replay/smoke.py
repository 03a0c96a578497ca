"""Smoke replay: the release model on the baseline's best (by validation) sensor-only fold.

Which model: in ``guardrails ci RUN`` the candidate, RUN's own exported multimodal model
(``RUN/onnx/multimodal_fold<K>.onnx``); in ``guardrails replay --smoke`` the model the
tag ``tag`` (``mm-audiofix``) names. The baseline is the sensor-only tag
``baseline_tag`` (``sensor-v1``), resolved through the registry.

Which fold (no winner's curse): among the folds both have, the one where the baseline
scored best **on validation** (its kept epoch's ``val_macro_f1`` in ``epochs.parquet``,
ties: lowest fold; :func:`guardrails.replay._setup.choose_fold`). The plan's "best
sensor-only fold" was read from held-out scores before, which inflated the baseline by
the best-of-k selection bias on the very takes the comparison uses; validation takes
are not those takes. The message and ``details.fold_choice`` say how the fold was
chosen.

Replay that fold's held-out takes through the model's ONNX file with onnxruntime from
cached features, and compare

1. **drift**: the replayed probabilities and macro F1 against the multimodal model's
   training-time predictions (``predictions.parquet``) on the same takes: max absolute
   difference of P(pro) <= ``max_prob_drift``, predicted-class agreement >=
   ``min_agreement``, |F1 difference| <= ``max_f1_drift``;
2. **vs sensor-only**: replayed multimodal macro F1 >= the baseline's recorded macro F1
   on the same takes minus ``margin``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from guardrails._context import RunContext
from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.gates._metrics import macro_f1
from guardrails.replay._model import OnnxModel
from guardrails.replay._record import record, short
from guardrails.replay._setup import applies_candidate, by_tag, open_replay, recorded

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
          applies=lambda ctx, params: applies_candidate(ctx, params, needs_baseline=True),
          description="the run's own multimodal ONNX on the baseline's best-validation "
                      "sensor-only fold: no drift from training, not worse than sensor-only")
def smoke(ctx: RunContext, *, registry: str, tag: str, baseline_tag: str, history: str,
          max_prob_drift: float, min_agreement: float, max_f1_drift: float, margin: float,
          threads: int) -> list[CheckResult]:
    """Smoke replay (see the module docstring); appends one history row."""
    rp = open_replay(ctx.run_dir, registry=registry, tag=tag, baseline_tag=baseline_tag,
                     candidate=not by_tag(ctx))
    model = OnnxModel(rp.onnx(), threads=threads)
    name = rp.model.tag
    replayed = short(model.path, model.sha256, rp.model.run_dir)
    out = model.predict(rp.batch)
    f1 = macro_f1(rp.labels, out.pred)
    ids = rp.batch.sample_ids
    rec_mm = recorded(rp.model.run_dir, rp.model.mode, rp.fold, ids)
    rec_base = recorded(rp.baseline.run_dir, rp.baseline.mode, rp.fold, ids)
    drift = drift_result("replay.smoke.drift", out.probs, out.pred, f1, rec_mm,
                         max_prob_drift=max_prob_drift, min_agreement=min_agreement,
                         max_f1_drift=max_f1_drift, what=f"{name} at training time")
    drift = dataclasses.replace(drift, message=f"{drift.message} [{replayed}]")
    base_f1 = rec_base["macro_f1"]
    better = f1 >= base_f1 - margin
    vs = CheckResult(
        "replay.smoke.vs_baseline", "replay", better,
        observed={"multimodal_f1": f1, "sensor_only_f1": base_f1, "delta": f1 - base_f1},
        expected=f"multimodal F1 >= sensor-only F1 - {margin:g}",
        message=(f"fold {rp.fold} ({len(ids)} takes, chosen by {baseline_tag} validation "
                 f"F1, not held-out): {replayed} F1 {f1:.3f} "
                 f"{'>=' if better else '<'} {baseline_tag} F1 {base_f1:.3f}"
                 + ("" if better else f" - {margin:g}: multimodal is worse than sensor-only")),
        details={"baseline_validation_f1": rp.selection_f1})
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
