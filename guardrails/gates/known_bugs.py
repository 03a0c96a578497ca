"""Guards against the original model's known bugs (DESIGN.md section 1).

Each is a check that the ``legacy-20250925`` profile (which reproduces the bug on
purpose) fails and ``mm-audiofix`` passes:

- ``gate.norm_fit_train_only``: ``train.norm_fit`` is ``train`` and every fold's
  ``norm_stats/fold_K.json`` was fitted on that fold's training takes only (no
  validation or held-out take among its ``sample_ids``).
- ``gate.best_checkpoint``: the kept epoch (``FOLD ... kept_epoch=`` in
  ``training.log``) is the best epoch of ``epochs.parquet`` by the run's
  ``train.checkpoint_metric`` (``val_loss``: lower is better, ties to higher val F1;
  ``val_f1``: higher is better, ties to lower val loss; absent in runs written before
  the key existed, which kept the best val F1). Fails when another epoch (e.g. an
  earlier one, while the last was kept) ranks strictly better, and when the policy is
  ``train.checkpoint: last``.
- ``gate.global_normalization``: ``features.normalization`` is ``global`` (the fold's
  fitted artifact), not a per-sample z-score; ``NORM_REF ... audio=`` agrees.
- ``gate.audio_channels``: all ``min_channels`` (128) mel channels reach the audio
  encoder, MEASURED on the model rather than read from the config (a reshape bug the
  config does not know about must show): ``audio_channels_reaching_encoder`` in
  ``model_summary.json`` for each audio mode, which profy measures at training time with a
  forward probe (``audio_channels_measurement`` holds the probe's record; a number
  without it fails), and, when ``RUN/onnx/`` holds audio or multimodal models, an
  onnxruntime probe of each exported graph (the mel channels that move its logits).
  ``model.audio_channels_used`` in the config must not be below it either.
"""

from __future__ import annotations

import math
from typing import Any

from guardrails._context import RunContext
from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.errors import ArtifactError
from guardrails.gates._evidence import expected_folds, expected_modes, fold_lines
from guardrails.gates.fusion import norm_refs
from profy.contract.layout import EPOCHS_FILE, MODEL_SUMMARY_FILE, SPLITS_FILE

__all__ = ["audio_channels", "best_checkpoint", "best_epoch", "global_normalization",
           "norm_fit_train_only"]

AUDIO_MODES = ("audio", "multimodal")


def _result(name: str, problems: list[str], ok_message: str, observed: Any, expected: Any,
            details: dict[str, Any]) -> CheckResult:
    shown = "; ".join(problems[:4]) + (f" (+{len(problems) - 4} more)" if len(problems) > 4
                                       else "")
    return CheckResult(name, "gate", not problems, observed=observed, expected=expected,
                       message=ok_message if not problems else shown,
                       details={**details, "problems": problems})


@register("gate.norm_fit_train_only", category="gate",
          description="normalization fitted on each fold's training takes only "
                      "(train.norm_fit=train, norm_stats sample_ids)")
def norm_fit_train_only(ctx: RunContext) -> CheckResult:
    """Leakage guard: no validation or held-out take in the fitted statistics."""
    fit = (ctx.config.get("train") or {}).get("norm_fit")
    problems = [] if fit == "train" else [f"config train.norm_fit is {fit!r}, not 'train'"]
    splits = ctx.frame(SPLITS_FILE)
    leaked: dict[str, list[str]] = {}
    for k in expected_folds(ctx):
        rel = f"norm_stats/fold_{k}.json"
        stats = ctx.json(rel)
        ids = stats.get("sample_ids") if isinstance(stats, dict) else None
        if not isinstance(ids, list) or not ids:
            problems.append(f"{rel}: no fitted sample_ids list")
            continue
        mine = splits[splits["fold"] == k]
        train = set(mine.loc[mine["role"] == "train", "sample_id"].astype(str))
        heldout = set(mine.loc[mine["role"] != "train", "sample_id"].astype(str))
        bad = sorted({str(s) for s in ids} & heldout)
        unknown = sorted({str(s) for s in ids} - train - heldout)
        if bad:
            leaked[str(k)] = bad
            problems.append(f"{rel}: fitted on {len(bad)} validation/held-out take(s) of fold "
                            f"{k}, e.g. {bad[0]}")
        if unknown:
            problems.append(f"{rel}: {len(unknown)} fitted take(s) are not in fold {k}'s "
                            f"splits, e.g. {unknown[0]}")
    return _result("gate.norm_fit_train_only", problems,
                   "every fold's statistics were fitted on its training takes only",
                   {"norm_fit": fit, "leaked_folds": sorted(leaked)},
                   {"norm_fit": "train", "leaked_folds": []}, {"leaked_sample_ids": leaked})


_RANK = {"val_f1": (("val_macro_f1", False), ("val_loss", True)),   # (column, lower is better)
         "val_loss": (("val_loss", True), ("val_macro_f1", False))}


def best_epoch(rows, metric: str) -> int:
    """The epoch best by ``metric`` (``val_loss`` min / ``val_f1`` max), ties broken by the
    other metric, then by the earliest epoch (profy's own rule)."""
    (first, low1), (second, low2) = _RANK[metric]
    order = rows.sort_values([first, second, "epoch"], ascending=[low1, low2, True])
    return int(order["epoch"].iloc[0])


def ranks_worse(kept, best, metric: str, tolerance: float) -> bool:
    """Whether epoch row ``kept`` ranks strictly below row ``best`` (primary metric, then
    the tie-break metric), differences within ``tolerance`` counting as ties."""
    for column, lower in _RANK[metric]:
        a, b = float(kept[column]), float(best[column])
        if abs(a - b) > tolerance:
            return (a > b) if lower else (a < b)
    return False


@register("gate.best_checkpoint", category="gate",
          params={"tolerance": 1e-9, "require_best_policy": True},
          description="the kept checkpoint is the best epoch (not the last while an earlier "
                      "one scored better)")
def best_checkpoint(ctx: RunContext, *, tolerance: float, require_best_policy: bool) -> CheckResult:
    """"Best" must mean best: compare the kept epoch with the epoch history."""
    train = ctx.config.get("train") or {}
    # runs written before train.checkpoint_metric existed kept the best val macro F1
    policy, metric = train.get("checkpoint"), train.get("checkpoint_metric", "val_f1")
    problems = []
    if require_best_policy and policy != "best":
        problems.append(f"config train.checkpoint is {policy!r}, not 'best'")
    if metric not in ("val_loss", "val_f1"):
        problems.append(f"config train.checkpoint_metric {metric!r} is unknown")
        metric = "val_loss"
    epochs = ctx.frame(EPOCHS_FILE)
    kept = {(f.get("mode"), f.get("fold")): f for f in fold_lines(ctx)}
    table: dict[str, Any] = {}
    for mode in expected_modes(ctx):
        for k in expected_folds(ctx):
            rows = epochs[(epochs["mode"] == mode) & (epochs["fold"] == k)]
            line = kept.get((mode, str(k)))
            if rows.empty:
                problems.append(f"{mode} fold {k}: no epochs in epochs.parquet")
                continue
            if line is None or not str(line.get("kept_epoch", "")).isdigit():
                problems.append(f"{mode} fold {k}: no FOLD ... kept_epoch= line in training.log")
                continue
            if rows[["val_loss", "val_macro_f1"]].isna().any().any():
                problems.append(f"{mode} fold {k}: val_loss/val_macro_f1 NaN in epochs.parquet")
                continue
            kept_epoch = int(line["kept_epoch"])
            hit = rows[rows["epoch"] == kept_epoch]
            if hit.empty:
                problems.append(f"{mode} fold {k}: kept epoch {kept_epoch} not in epochs.parquet")
                continue
            best = best_epoch(rows, metric)
            kept_row = hit.iloc[0]
            best_row = rows[rows["epoch"] == best].iloc[0]
            last = int(rows["epoch"].max())
            table[f"{mode}/{k}"] = {"kept": kept_epoch, "best": best, "last": last,
                                    "logged_best": line.get("best_epoch")}
            if ranks_worse(kept_row, best_row, metric, tolerance):
                what = "the LAST epoch" if kept_epoch == last else f"epoch {kept_epoch}"
                problems.append(
                    f"{mode} fold {k}: kept {what} (val_f1 {kept_row['val_macro_f1']:.4f}, "
                    f"val_loss {kept_row['val_loss']:.4f}) while epoch {best} scored better by "
                    f"{metric} (val_f1 {best_row['val_macro_f1']:.4f}, "
                    f"val_loss {best_row['val_loss']:.4f})")
    n_bad = sum(1 for p in problems if "scored better" in p)
    return _result("gate.best_checkpoint", problems,
                   f"every kept checkpoint is its fold's best epoch by {metric}",
                   {"policy": policy, "metric": metric, "not_best": n_bad},
                   {"policy": "best", "not_best": 0}, {"per_fold": table})


@register("gate.global_normalization", category="gate",
          description="features.normalization is the global fitted artifact, not a "
                      "per-sample z-score")
def global_normalization(ctx: RunContext) -> CheckResult:
    """Per-sample z-scoring erases loudness/dynamics: the plan uses fold statistics."""
    norm = (ctx.config.get("features") or {}).get("normalization")
    problems = [] if norm == "global" else [
        f"config features.normalization is {norm!r} (per-take z-score), not 'global'"]
    logged = sorted({r["audio"] for r in norm_refs(ctx.text("training.log")) if "audio" in r})
    for value in logged:
        if value != "global":
            problems.append(f"training.log NORM_REF records audio={value}")
    return _result("gate.global_normalization", problems,
                   "normalization uses the fold's global fitted statistics",
                   {"normalization": norm, "logged": logged}, {"normalization": "global"}, {})


def _count(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _summary_channels(ctx, min_channels: int, problems: list[str]) -> dict[str, Any]:
    """Per audio mode: the training-time probe's count in ``model_summary.json``."""
    summary = ctx.json(MODEL_SUMMARY_FILE)
    if not isinstance(summary, dict):
        raise ArtifactError(ctx.path(MODEL_SUMMARY_FILE), "expected a JSON object per mode")
    reaching: dict[str, Any] = {}
    for mode in expected_modes(ctx):
        if mode not in AUDIO_MODES:
            continue
        entry = summary.get(mode) if isinstance(summary.get(mode), dict) else {}
        value = entry.get("audio_channels_reaching_encoder")
        probe = entry.get("audio_channels_measurement")
        reaching[mode] = value
        if not _count(value):
            problems.append(f"model_summary.json: {mode} lacks audio_channels_reaching_encoder")
            continue
        if value < min_channels:
            problems.append(f"model_summary.json: only {int(value)} channels reach the audio "
                            f"encoder of the {mode} model (< {min_channels})")
        if not isinstance(probe, dict) or probe.get("channels") != value:
            problems.append(f"model_summary.json: {mode} audio_channels_reaching_encoder="
                            f"{value!r} is not backed by a measurement on the model "
                            "(audio_channels_measurement missing or different: a run "
                            "written before profy measured it; retrain)")
    return reaching


def _onnx_channels(ctx: RunContext, min_channels: int, problems: list[str]) -> dict[str, Any]:
    """Per exported audio-mode model: channels that move its output (onnxruntime probe)."""
    from guardrails.checks.onnx_model import OnnxArtifact, audio_channels_reaching, find_models

    measured: dict[str, Any] = {}
    for path in ctx.onnx_models or find_models(ctx.run_dir):
        try:
            art = OnnxArtifact(path)
            if art.metadata.get("mode") not in AUDIO_MODES:
                continue
            probe = audio_channels_reaching(art)
        except ArtifactError as exc:
            problems.append(f"cannot probe {path}: {exc}")
            continue
        measured[art.name] = probe
        if probe["channels"] < min_channels:
            shown = ", ".join(map(str, probe["dropped"][:8]))
            problems.append(f"{path}: only {probe['channels']} of {probe['n_mels']} mel channels "
                            f"change the exported model's logits (< {min_channels}; dropped: "
                            f"{shown}{', ...' if len(probe['dropped']) > 8 else ''})")
    return measured


# the inference lane: its onnxruntime probe of the exported graphs (one ORT thread, as that
# lane's checks) runs beside the table checks; the parent then first loads onnxruntime in
# the timed lane, so `ci` gains ~0.2 s of the probe's ~0.9 s (README, guardrails timing)
@register("gate.audio_channels", category="gate", params={"min_channels": 128}, lane="inference",
          description="all 128 mel channels reach the audio encoder (measured on the model: "
                      "model_summary.json probe, and the exported ONNX models when present)")
def audio_channels(ctx: RunContext, *, min_channels: int) -> CheckResult:
    """The reshape bug dropped half the mel axis; every audio mode must see all of it.

    Not the config's word for it: ``model.audio_channels_used`` is reported (and must not
    be below ``min_channels``), but the figures gated are measured on the model itself.
    """
    model = ctx.config.get("model") or {}
    used = model.get("audio_channels_used")
    problems = []
    if not isinstance(used, int) or isinstance(used, bool) or used < min_channels:
        problems.append(f"config model.audio_channels_used is {used!r} < {min_channels}")
    reaching = _summary_channels(ctx, min_channels, problems)
    exported = _onnx_channels(ctx, min_channels, problems)
    observed = {"config": used, **reaching,
                **{f"onnx/{k}": v["channels"] for k, v in exported.items()}}
    where = "model_summary.json probe" + (f" and {len(exported)} exported model(s)"
                                          if exported else "; no exported audio model to probe")
    return _result("gate.audio_channels", problems,
                   f"{min_channels} channels reach every audio encoder (measured: {where})",
                   observed, {"channels": f">= {min_channels}"},
                   {"onnx_probe": exported})
