"""Benchmark replay: a model on a fixed replay set vs its recorded references.

Which model: in ``guardrails ci RUN`` the candidate, RUN's own exported multimodal models
(every ``RUN/onnx/multimodal_fold<K>.onnx``), labelled by the run's folder name; in
``guardrails replay --benchmark`` the model the tag ``tag`` names.

Replay set: every fold of the model that has an ONNX file, each model on its own fold's
held-out takes (``splits.parquet`` role ``test``), so the set is fixed by the run.

Two references, two results:

* ``replay.benchmark.training``: the replayed outputs against the training-time
  predictions (``predictions.parquet``) on every replayed take, pooled (P(pro) drift,
  class agreement, macro-F1 drift). Available on the first replay already.
* ``replay.benchmark.reference``: against the **stored reference** of this model (tag,
  or the candidate's run name): on the first benchmark replay (or with ``rebase``) there
  is nothing to compare, so the per-fold probabilities, macro F1, batch-1 latency and
  the model and data hashes are written to
  ``<history folder>/replay_reference/<label>.json`` and the result is a **skip**
  ("no reference to compare: reference recorded now at <path>"), never a pass; a
  criteria file that makes ``replay.benchmark`` required turns it into a failure
  (missing evidence). Later replays must reproduce the
  probabilities (``max_prob_drift``) and F1 (``max_f1_drift``) on the same data hash,
  and keep the batch-1 latency (best of ``latency_repeats`` passes, the figure least
  inflated by a busy machine) within ``max_latency_ratio`` of the reference.
  Why not the export's ``.npz`` reference data: it holds edge-case inputs for parity,
  not the replay set, and no latency; the first replay on this machine is the honest
  latency reference (latency depends on the machine, so rebase after moving it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np

from guardrails._context import RunContext
from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.errors import ArtifactError, BadInputError
from guardrails.gates._metrics import macro_f1
from guardrails.replay._features import batch_sha256
from guardrails.replay._model import OnnxModel
from guardrails.replay._record import record, short
from guardrails.replay._setup import (
    applies_candidate,
    by_tag,
    candidate_entry,
    history_path,
    open_replay,
    recorded,
)
from guardrails.replay.smoke import drift_result
from profy.contract.layout import ONNX_DIR

__all__ = ["benchmark", "reference_path"]

_PARAMS = {"registry": "", "tag": "mm-audiofix", "history": "", "max_prob_drift": 1e-3,
           "min_agreement": 1.0, "max_f1_drift": 0.01, "max_latency_ratio": 3.0,
           "latency_repeats": 20, "threads": 1, "rebase": False}


def reference_path(history: Path, tag: str) -> Path:
    """Where a model's benchmark reference lives (beside the history); ``tag`` is the
    tag, or a candidate's run folder name."""
    return history.parent / "replay_reference" / f"{tag}.json"


def _read_reference(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != 1 or not isinstance(data.get("folds"), dict):
            raise ValueError("not a version-1 replay reference")
        return data
    except (OSError, ValueError, AttributeError) as exc:
        raise BadInputError(path, f"benchmark reference is unreadable ({exc}); delete it or "
                                  "pass --rebase") from None


def _vs_reference(ref: dict, runs: dict, *, max_prob_drift: float, max_f1_drift: float,
                  max_latency_ratio: float, tag: str) -> CheckResult:
    problems, per_fold = [], {}
    for fold, now in runs.items():
        old = ref["folds"].get(str(fold))
        if old is None:
            problems.append(f"fold {fold} has no reference")
            continue
        if old["data_sha256"] != now["data_sha256"]:
            problems.append(f"fold {fold}: the replay set changed (data hash)")
            continue
        drift = float(np.max(np.abs(np.asarray(old["prob_pro"]) - now["prob_pro"])))
        f1_drift = abs(now["macro_f1"] - old["macro_f1"])
        ratio = now["latency_ms"] / max(old["latency_ms"], 1e-9)
        per_fold[fold] = {"prob_drift": drift, "f1": now["macro_f1"],
                          "reference_f1": old["macro_f1"], "latency_ms": now["latency_ms"],
                          "reference_latency_ms": old["latency_ms"], "latency_ratio": ratio,
                          "model_changed": old["model_sha256"] != now["model_sha256"]}
        if not drift <= max_prob_drift:
            problems.append(f"fold {fold}: P(pro) drifts by {drift:.2e} from the reference")
        if not f1_drift <= max_f1_drift:
            problems.append(f"fold {fold}: macro F1 {now['macro_f1']:.3f} vs reference "
                            f"{old['macro_f1']:.3f}")
        if not ratio <= max_latency_ratio:
            problems.append(f"fold {fold}: latency {now['latency_ms']:.2f} ms is "
                            f"{ratio:.1f}x the reference {old['latency_ms']:.2f} ms")
    ok = not problems
    changed = [k for k, v in per_fold.items() if v["model_changed"]]
    msg = (f"{tag} reproduces its reference of {ref['created_at']} on folds "
           f"{sorted(per_fold)}" + (f" (model bytes changed on folds {changed})" if changed
                                    else "")) if ok else "; ".join(problems)
    return CheckResult("replay.benchmark.reference", "replay", ok, observed=per_fold,
                       expected={"max_prob_drift": max_prob_drift,
                                 "max_f1_drift": max_f1_drift,
                                 "max_latency_ratio": max_latency_ratio}, message=msg)


@register("replay.benchmark", category="replay", params=_PARAMS, lane="timed",
          applies=lambda ctx, params: applies_candidate(ctx, params, needs_baseline=False),
          description="the run's own multimodal ONNX models on their fixed held-out sets vs "
                      "training-time predictions and the stored metrics/latency reference")
def benchmark(ctx: RunContext, *, registry: str, tag: str, history: str, max_prob_drift: float,
              min_agreement: float, max_f1_drift: float, max_latency_ratio: float,
              latency_repeats: int, threads: int, rebase: bool) -> list[CheckResult]:
    """Benchmark replay (see the module docstring); appends one history row."""
    candidate = not by_tag(ctx)
    folds = _model_folds(ctx.run_dir, registry, tag, candidate=candidate)
    first = open_replay(ctx.run_dir, registry=registry, tag=tag, baseline_tag="",
                        fold=folds[0], candidate=candidate)
    label = first.model.tag
    runs, probs, preds, labels, shas, recs, files = {}, [], [], [], [], [], {}
    for fold in folds:
        rp = first if fold == first.fold else open_replay(
            ctx.run_dir, registry=registry, tag=tag, baseline_tag="", fold=fold,
            candidate=candidate)
        model = OnnxModel(rp.onnx(), threads=threads)
        files[str(model.path)] = model.sha256
        out = model.predict(rp.batch, latency_repeats=latency_repeats)
        runs[fold] = {"prob_pro": out.probs[:, 1].astype(np.float64),
                      "macro_f1": macro_f1(rp.labels, out.pred), "latency_ms": out.latency_ms,
                      "latency_median_ms": out.latency_median_ms,
                      "data_sha256": batch_sha256(rp.batch), "model_sha256": model.sha256,
                      "n_takes": len(rp.batch)}
        probs.append(out.probs)
        preds.append(out.pred)
        labels.append(rp.labels)
        shas.append(model.sha256)
        recs.append(recorded(rp.model.run_dir, rp.model.mode, fold, rp.batch.sample_ids))
    pooled = {k: np.concatenate([r[k] for r in recs]) for k in ("prob_pro", "pred", "labels")}
    pooled["macro_f1"] = macro_f1(pooled["labels"], pooled["pred"])
    all_pred, all_labels = np.concatenate(preds), np.concatenate(labels)
    f1 = macro_f1(all_labels, all_pred)
    training = drift_result("replay.benchmark.training", np.concatenate(probs), all_pred, f1,
                            pooled, max_prob_drift=max_prob_drift, min_agreement=min_agreement,
                            max_f1_drift=max_f1_drift, what=f"{label} at training time")
    replayed = ", ".join(short(p, h, first.model.run_dir) for p, h in files.items())
    training = dataclasses.replace(training, message=f"{training.message} [{replayed}]")
    hist = history_path(first.registry, history)
    ref_file = reference_path(hist, label)
    ref = None if rebase else _read_reference(ref_file)
    if ref is None:
        vs_ref = _record_reference(ref_file, label, runs, rebase=rebase)
    else:
        vs_ref = _vs_reference(ref, runs, max_prob_drift=max_prob_drift,
                               max_f1_drift=max_f1_drift,
                               max_latency_ratio=max_latency_ratio, tag=label)
    latency = float(np.median([v["latency_ms"] for v in runs.values()]))
    data_sha = hashlib.sha256("".join(v["data_sha256"] for v in runs.values()).encode())
    model_sha = hashlib.sha256("".join(shas).encode()).hexdigest() if len(shas) > 1 else shas[0]
    metrics = {"macro_f1": f1, "recorded_f1": pooled["macro_f1"], "latency_ms": latency,
               "folds": {k: {"macro_f1": v["macro_f1"], "latency_ms": v["latency_ms"]}
                         for k, v in runs.items()}, "reference": str(ref_file)}
    first = dataclasses.replace(first, fold_choice=f"every fold with an ONNX file: {folds}")
    return record("benchmark", first, model_sha256=model_sha, results=[training, vs_ref],
                  metrics=metrics, macro_f1=f1, latency_ms=latency, baseline_f1=None,
                  history=history, data_sha256=data_sha.hexdigest(),
                  n_takes=int(all_pred.shape[0]), fold=None if len(folds) > 1 else folds[0],
                  onnx_files=files)


def _record_reference(ref_file: Path, label: str, runs: dict, *, rebase: bool) -> CheckResult:
    """Write this replay as the reference; the result is a skip: nothing was compared."""
    _write_reference(ref_file, label, runs)
    why = "--rebase asked for a new reference" if rebase else f"first benchmark of {label}"
    return CheckResult(
        "replay.benchmark.reference", "replay", True, skipped=True,
        observed={k: {"macro_f1": v["macro_f1"], "latency_ms": v["latency_ms"]}
                  for k, v in runs.items()},
        expected="a stored reference to compare against",
        message=f"no reference to compare: reference recorded now at {ref_file} ({why}; "
                "the next benchmark replay compares against it)",
        details={"reference": str(ref_file), "reference_recorded": True})


def _model_folds(run_or_dir: Path, registry: str, tag: str, *, candidate: bool) -> list[int]:
    """Folds of the model (the candidate's exports, or the tag's) that have an ONNX file.

    Raises:
        ArtifactError: none has (run ``profy export``).
    """
    if candidate:
        return list(candidate_entry(Path(run_or_dir)).folds)
    from guardrails.replay._model import resolve
    from guardrails.replay._setup import registry_path

    entry = resolve(registry_path(Path(run_or_dir), registry), tag, verify=False)
    folds = [k for k in entry.folds if entry.onnx_path(k).is_file()]
    if not folds:
        raise ArtifactError(entry.run_dir / ONNX_DIR, f"no ONNX model of tag {tag!r} "
                                                    "(run `profy export`)")
    return folds


def _write_reference(path: Path, tag: str, runs: dict) -> None:
    from guardrails._result import jsonable
    from profy.contract.atomic import atomic_write_json

    data = {"version": 1, "tag": tag,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "folds": {str(k): jsonable(v) for k, v in runs.items()}}
    try:
        atomic_write_json(path, data)
    except OSError as exc:
        raise BadInputError(path, f"cannot write the benchmark reference ({exc})") from None
