"""Robustness replay: the smoke replay's takes under controlled perturbations.

Model, baseline and fold are the smoke replay's (:mod:`.smoke`): in ``guardrails ci RUN``
RUN's own exported multimodal model, the baseline through the registry, the fold chosen
by the baseline's validation score (never a held-out score).

Levels (see :mod:`._perturb` for how each is made): clean, audio noise at each of
``snr_levels`` dB, audio dropped out (silent audio, empty mask, silent-take quality
vector), and each fraction of ``key_drop_fractions`` of the sensor keys frozen.

At every level the multimodal release model and the sensor-only baseline replay the
same perturbed takes; the baseline runs from its own ONNX file when the baseline tag
has one for the fold (once for all the levels that leave its sensor input as it is),
else (audio levels only: they do not touch its input) its training-time predictions
stand in for it. Reported per level: both macro F1s and the gate's mean audio share
(``modality_weights[:, 1]``). Nothing here is timed, so ``guardrails ci`` runs it beside
the table checks (the inference lane of :mod:`guardrails._registry`), with one intra-op
thread so the two lanes share the machine's cores rather than fight over them.

Results:

* ``replay.robustness[<level>]`` for each level in ``must_hold``: fails when the
  multimodal F1 falls below the sensor-only F1 on the same takes minus ``margin``.
  Other levels are reported in the details only.
* ``replay.robustness.gate``: the gate must lower its audio share as audio quality
  drops: the mean audio share at the lowest SNR must be below the clean share (by at
  least ``min_share_drop``).
* ``replay.robustness.audio_dropout``: a **structural property**, not a replay that
  could pass or fail on behaviour: the fusion gate forces the audio weight to 0 when
  the audio mask is empty, so at audio dropout the multimodal model is its own sensor
  path by construction, and "multimodal >= sensor-only at dropout" or "audio share
  below clean at dropout" would only restate that. The result verifies the structure
  (every take's audio weight is 0 at dropout: "structural: audio weight 0 on empty
  mask, verified") and fails when it is broken. ``audio_dropout`` therefore cannot be
  a ``must_hold`` level; its F1s stay in the details.
"""

from __future__ import annotations

import numpy as np

from guardrails._context import RunContext
from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.gates._metrics import macro_f1
from guardrails.replay._model import OnnxModel
from guardrails.replay._perturb import apply_level, levels_from_params
from guardrails.replay._record import record, short
from guardrails.replay._setup import applies_candidate, by_tag, open_replay, recorded

__all__ = ["robustness"]

_PARAMS = {"registry": "", "tag": "mm-audiofix", "baseline_tag": "sensor-v1", "history": "",
           "snr_levels": [30, 20, 10, 0], "key_drop_fractions": [0.1, 0.25],
           "must_hold": ["clean", "snr_20db"], "margin": 0.0,
           "min_share_drop": 0.0, "seed": 0, "threads": 1}


_STRUCTURAL_ATOL = 1e-6  # an audio weight above this on an empty mask breaks the structure


@register("replay.robustness", category="replay", params=_PARAMS, lane="inference",
          applies=lambda ctx, params: applies_candidate(ctx, params, needs_baseline=True),
          description="release model under audio noise, audio dropout and dropped sensor "
                      "keys vs sensor-only; the gate lowers audio trust as quality drops")
def robustness(ctx: RunContext, *, registry: str, tag: str, baseline_tag: str, history: str,
               snr_levels: list, key_drop_fractions: list, must_hold: list, margin: float,
               min_share_drop: float, seed: int, threads: int) -> list[CheckResult]:
    """Robustness replay (see the module docstring); appends one history row."""
    levels = levels_from_params(snr_levels, key_drop_fractions)
    names = [lv.name for lv in levels]
    unknown = sorted(set(must_hold) - set(names))
    if unknown or "audio_dropout" in must_hold:
        from guardrails.errors import CriteriaError

        if unknown:
            raise CriteriaError(f"replay.robustness.must_hold names unknown level(s) "
                                f"{unknown}; levels: {names}")
        raise CriteriaError("replay.robustness.must_hold: audio_dropout is a structural "
                            "property (the gate forces audio weight 0 on an empty mask), "
                            "reported as replay.robustness.audio_dropout; drop it from "
                            "must_hold")
    rp = open_replay(ctx.run_dir, registry=registry, tag=tag, baseline_tag=baseline_tag,
                     candidate=not by_tag(ctx))
    model = OnnxModel(rp.onnx(), threads=threads)
    files = {str(model.path): model.sha256}
    base_onnx = rp.onnx(rp.baseline)
    base_model = OnnxModel(base_onnx, threads=threads) if base_onnx.is_file() else None
    if base_model is not None:
        files[str(base_model.path)] = base_model.sha256
    dropout_weights = None
    base_rec = recorded(rp.baseline.run_dir, rp.baseline.mode, rp.fold, rp.batch.sample_ids)
    table: dict[str, dict] = {}
    unperturbed_sensor_f1 = None  # audio levels leave the sensor-only input as it is
    for level in levels:
        batch = apply_level(rp.batch, level, top_db=rp.top_db, seed=seed)
        out = model.predict(batch, latency_repeats=0)
        if level.kind == "dropout":
            dropout_weights = out.modality_weights
        row = {"macro_f1": macro_f1(rp.labels, out.pred),
               "audio_share": None if out.modality_weights is None
               else float(out.modality_weights[:, 1].mean()),
               "mean_quality_snr_db": float(batch.arrays["quality"][:, 0].mean())}
        if base_model is not None and (level.touches_sensor or unperturbed_sensor_f1 is None):
            f1 = macro_f1(rp.labels, base_model.predict(batch, latency_repeats=0).pred)
            if not level.touches_sensor:
                unperturbed_sensor_f1 = f1
            row["sensor_only_f1"], row["sensor_only_source"] = f1, "onnx"
        elif base_model is not None:
            row["sensor_only_f1"], row["sensor_only_source"] = unperturbed_sensor_f1, "onnx"
        elif not level.touches_sensor:
            row["sensor_only_f1"] = base_rec["macro_f1"]
            row["sensor_only_source"] = "recorded"
        else:
            row["sensor_only_f1"], row["sensor_only_source"] = None, "unavailable"
        table[level.name] = row
    replayed = short(model.path, model.sha256, rp.model.run_dir)
    results = [_level_result(name, table[name], margin, replayed, baseline_tag, rp.fold)
               for name in must_hold]
    results.append(_gate_result(table, levels, min_share_drop))
    if "audio_dropout" in table:
        results.append(_structural_result(dropout_weights, table["audio_dropout"], replayed))
    clean = table["clean"]
    metrics = {"levels": table, "must_hold": list(must_hold), "seed": seed}
    return record("robustness", rp, model_sha256=model.sha256, results=results,
                  metrics=metrics, macro_f1=clean["macro_f1"], latency_ms=None,
                  baseline_f1=clean["sensor_only_f1"], history=history, onnx_files=files)


def _structural_result(weights: np.ndarray | None, row: dict, replayed: str) -> CheckResult:
    """Audio dropout as the structural property it is (module docstring)."""
    name = "replay.robustness.audio_dropout"
    expected = f"audio weight <= {_STRUCTURAL_ATOL:g} for every take with an empty audio mask"
    info = {"kind": "structural property", "structural": True,
            "f1_at_dropout": row["macro_f1"], "sensor_only_f1_at_dropout": row["sensor_only_f1"]}
    if weights is None:
        return CheckResult(name, "replay", True, skipped=True, expected=expected,
                           message=f"structural: {replayed} has no modality_weights output "
                                   "(not a fusion model): nothing to verify", details=info)
    audio = np.asarray(weights, dtype=np.float64)[:, 1]
    worst = float(np.max(np.abs(audio))) if audio.size else 0.0
    ok = audio.size > 0 and worst <= _STRUCTURAL_ATOL
    observed = {"max_audio_weight": worst, "n_takes": int(audio.size),
                "takes_with_audio_weight": int(np.sum(np.abs(audio) > _STRUCTURAL_ATOL))}
    message = (f"structural: audio weight 0 on empty mask, verified on {audio.size} takes "
               f"(max {worst:.1e}) - a property of the gate, not a replay that could fail on "
               f"behaviour [{replayed}]") if ok else (
        f"structural property broken: audio weight up to {worst:.3g} with an empty audio "
        f"mask on {observed['takes_with_audio_weight']} of {audio.size} takes: the fusion "
        f"gate lets silent audio in [{replayed}]")
    return CheckResult(name, "replay", ok, observed=observed, expected=expected,
                       message=message, details=info)


def _level_result(name: str, row: dict, margin: float, tag: str, baseline_tag: str,
                  fold: int) -> CheckResult:
    """``tag`` names the replayed model (its file and sha256) in the message."""
    mm, so = row["macro_f1"], row["sensor_only_f1"]
    if so is None:
        return CheckResult(f"replay.robustness[{name}]", "replay", False, observed=row,
                           expected=f"multimodal F1 >= sensor-only F1 - {margin:g}",
                           message=f"{name}: no sensor-only ONNX for fold {fold} to replay "
                                   f"the perturbed sensor through (export {baseline_tag})")
    ok = mm >= so - margin
    share = "" if row["audio_share"] is None else f", audio share {row['audio_share']:.2f}"
    return CheckResult(
        f"replay.robustness[{name}]", "replay", ok, observed=row,
        expected=f"multimodal F1 >= sensor-only F1 - {margin:g}",
        message=f"{name}: {tag} F1 {mm:.3f} {'>=' if ok else '<'} {baseline_tag} F1 {so:.3f}"
                f"{share}" + ("" if ok else ": multimodal falls below sensor-only"))


def _gate_result(table: dict, levels: list, min_share_drop: float) -> CheckResult:
    # dropout is not a probe: its audio share is 0 by construction (the structural result)
    clean = table["clean"]["audio_share"]
    noise = [lv for lv in levels if lv.kind == "noise"]
    probes = [min(noise, key=lambda lv: lv.value).name] if noise else []
    shares = {n: table[n]["audio_share"] for n in ["clean", *probes]}
    if clean is None or not probes:
        return CheckResult("replay.robustness.gate", "replay", True, skipped=True,
                           observed=shares, message="no gate or no noise level to probe it "
                                                    "(set snr_levels)")
    lower = {n: shares[n] < clean - min_share_drop for n in probes}
    ok = all(lower.values())
    trend = ", ".join(f"{n} {s:.3f}" for n, s in shares.items())
    return CheckResult(
        "replay.robustness.gate", "replay", ok, observed=shares,
        expected=f"audio share below clean by > {min_share_drop:g} at {probes}",
        message=f"gate audio share: {trend}" + ("" if ok else ": the gate does not lower "
                                                "audio trust when quality drops"),
        details={"audio_share_by_level": {n: r["audio_share"] for n, r in table.items()},
                 "f1_by_level": {n: r["macro_f1"] for n, r in table.items()},
                 "monotone_in_snr": bool(np.all(np.diff(
                     [table[lv.name]["audio_share"] for lv in [levels[0], *noise]]) <= 0))})
