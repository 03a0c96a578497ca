"""Each gate on a real run folder: passing, and failing for the right reason once mutated.

Tiny runs do not reach the plan's F1 targets, so the F1 threshold gates are driven by
thresholds set through a criteria dict (``criteria_from_dict``), around the values the
run actually published.
"""

from __future__ import annotations

import json

import mutations as mut
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from guardrails import RunContext, criteria_from_dict, run_checks
from guardrails.gates._evidence import recomputed_f1
from profy.contract import schemas as S
from profy.contract.atomic import write_parquet_atomic

LEGACY_BUGS = ("gate.norm_fit_train_only", "gate.best_checkpoint", "gate.global_normalization",
               "gate.audio_channels", "gate.sensor_weight_clamp")


def run_gates(run, tmp_path, *names, params=None, seed=0):
    params = params or {}
    crit = criteria_from_dict({"version": 1, "checks": {n: params.get(n, {}) for n in names}})
    results = run_checks(RunContext(run, report_dir=tmp_path / "rep", seed=seed), crit)
    return {r.name: r for r in results}



def results_json(run):
    return json.loads((run / "complete_results.json").read_text())


def write_results(run, data):
    (run / "complete_results.json").write_text(json.dumps(data))


def test_legacy_run_fails_the_known_bug_guards_and_mm_audiofix_passes(
        tiny_run_ro, tiny_legacy_run_ro, tmp_path):
    good = run_gates(tiny_run_ro, tmp_path, *LEGACY_BUGS, "gate.training_log",
                     "gate.results_match_predictions", "gate.sensor_weight_share")
    assert all(r.passed for r in good.values()), {n: r.message for n, r in good.items()
                                                   if not r.passed}
    bad = run_gates(tiny_legacy_run_ro, tmp_path, *LEGACY_BUGS)
    assert not any(r.passed for r in bad.values())
    assert "64" in bad["gate.audio_channels"].message
    assert "per_sample" in bad["gate.global_normalization"].message
    assert "norm_fit is 'all'" in bad["gate.norm_fit_train_only"].message
    assert bad["gate.norm_fit_train_only"].details["leaked_sample_ids"]
    assert "'last'" in bad["gate.best_checkpoint"].message
    assert "min_sensor_weight 0.0" in bad["gate.sensor_weight_clamp"].message


def test_f1_gates_pass_at_their_boundary_and_fail_just_above(tiny_run, tmp_path):
    tiny_run_ro = mut.takes_as_players(tiny_run)  # enough players per stratum for stability
    # the gates decide on figures recomputed from predictions.parquet (issue 18, item 3):
    # read them from a lax run, then put each threshold exactly on them
    lax = {"gate.multimodal_f1": {"min_mean": 0.0, "max_std": 1.0},
           "gate.audio_f1": {"min_mean": 0.0, "max_std": 1.0}}
    seen = {n: r.details for n, r in run_gates(tiny_run_ro, tmp_path, *lax, params=lax).items()}
    data = results_json(tiny_run_ro)["modes"]
    for d in seen.values():  # ... and they agree with what the run published
        assert d["mean"] == pytest.approx(data[d["mode"]]["mean"]["macro_f1"], abs=1e-9)
        assert d["std"] == pytest.approx(data[d["mode"]]["std"]["macro_f1"], abs=1e-9)
    ctx = RunContext(tiny_run_ro)
    delta = recomputed_f1(ctx, "multimodal")[1] - recomputed_f1(ctx, "sensor")[1]
    at = {n: {"min_mean": d["mean"], "max_std": d["std"]} for n, d in seen.items()}
    at["gate.multimodal_vs_sensor"] = {"min_delta": delta}
    ok = run_gates(tiny_run_ro, tmp_path, *at, params=at)
    assert all(r.passed for r in ok.values()), [r.message for r in ok.values()]
    for r in ok.values():
        assert 0.0 <= r.details["stability"] <= 1.0 and "stability" in r.observed
    above = {n: {k: v + 1e-9 if k.startswith("min") else v - 1e-9 for k, v in p.items()}
             for n, p in at.items()}
    fail = run_gates(tiny_run_ro, tmp_path, *above, params=above)
    assert not any(r.passed for r in fail.values())
    assert "< " in fail["gate.multimodal_f1"].message


def test_min_stability_turns_a_fragile_pass_into_a_fail(tiny_run, tmp_path):
    tiny_run_ro = mut.takes_as_players(tiny_run)  # enough players per stratum for stability
    mm = results_json(tiny_run_ro)["modes"]["multimodal"]
    params = {"gate.multimodal_f1": {"min_mean": mm["mean"]["macro_f1"], "max_std": 1.0}}
    res = run_gates(tiny_run_ro, tmp_path, "gate.multimodal_f1", params=params)
    stab = res["gate.multimodal_f1"].details["stability"]
    assert res["gate.multimodal_f1"].passed and stab < 1.0
    params["gate.multimodal_f1"]["min_stability"] = min(1.0, stab + 0.01)
    res = run_gates(tiny_run_ro, tmp_path, "gate.multimodal_f1", params=params)
    assert not res["gate.multimodal_f1"].passed
    assert "stability" in res["gate.multimodal_f1"].message
    again = run_gates(tiny_run_ro, tmp_path, "gate.multimodal_f1", params=params)
    assert again["gate.multimodal_f1"].details["stability"] == stab  # same seed, same value


@pytest.mark.parametrize("breakage", ["nan_mean", "missing_fold", "missing_mode"])
def test_broken_results_file_fails_the_match_not_the_recomputed_gates(tiny_run, tmp_path,
                                                                       breakage):
    """The F1 gates recompute from predictions.parquet (issue 18, item 3): a results file
    with a NaN, a missing fold or mode fails gate.results_match_predictions, and the
    gates name what the file publishes without deciding on it."""
    data = results_json(tiny_run)
    if breakage == "nan_mean":
        data["modes"]["multimodal"]["mean"]["macro_f1"] = float("nan")
        want = "not a finite number"
    elif breakage == "missing_fold":
        del data["modes"]["multimodal"]["folds"]["2"]
        want = "fold 2 missing"
    else:
        del data["modes"]["multimodal"]
        want = "mode missing"
    write_results(tiny_run, data)
    lax = {"gate.multimodal_f1": {"min_mean": 0.0, "max_std": 1.0},
           "gate.multimodal_vs_sensor": {"min_delta": -1.0}}
    res = run_gates(tiny_run, tmp_path, *lax, "gate.results_match_predictions", params=lax)
    match = res.pop("gate.results_match_predictions")
    assert not match.passed and want in match.message, match.message
    for r in res.values():
        assert r.passed, r.message
        if breakage != "missing_fold":  # mean and std are still published then
            assert "complete_results.json publishes mean None" in r.message


@pytest.mark.parametrize("breakage", ["missing_fold", "missing_mode"])
def test_f1_gates_fail_on_missing_predictions(tiny_run, tmp_path, breakage):
    preds = mut.read(tiny_run, "predictions")
    mm = preds["mode"] == "multimodal"
    gone = mm & (preds["fold"] == 2) if breakage == "missing_fold" else mm
    mut.write(tiny_run, "predictions", preds[~gone].reset_index(drop=True))
    lax = {"gate.multimodal_f1": {"min_mean": 0.0, "max_std": 1.0},
           "gate.multimodal_vs_sensor": {"min_delta": -1.0}}
    res = run_gates(tiny_run, tmp_path, *lax, "gate.results_match_predictions", params=lax)
    for r in res.values():
        assert not r.passed and "multimodal: fold 2 has no rows in predictions.parquet" in (
            r.message), r.message


def test_results_that_disagree_with_predictions_are_named(tiny_run, tmp_path):
    data = results_json(tiny_run)
    stored = data["modes"]["audio"]["folds"]["1"]["macro_f1"]
    data["modes"]["audio"]["folds"]["1"]["macro_f1"] = stored + 0.1
    write_results(tiny_run, data)
    r = run_gates(tiny_run, tmp_path, "gate.results_match_predictions")[
        "gate.results_match_predictions"]
    assert not r.passed
    assert "audio fold 1 macro_f1" in r.message and f"{stored + 0.1:.6f}" in r.message
    assert f"{stored:.6f}" in r.message


def test_weighted_f1_reported_as_macro_is_caught(tiny_run, tmp_path):
    from guardrails.gates._metrics import macro_f1, weighted_f1

    preds = mut.read(tiny_run, "predictions")
    rows = preds[(preds["mode"] == "multimodal") & (preds["fold"] == 0)]
    # imbalance the fold (relabel one take) so weighted F1 and macro F1 differ
    preds.loc[rows.index[0], "label"] = 1 - preds.loc[rows.index[0], "label"]
    mut.write(tiny_run, "predictions", preds)
    rows = preds.loc[rows.index]
    y, p = rows["label"].to_numpy(), rows["prediction"].to_numpy()
    assert abs(weighted_f1(y, p) - macro_f1(y, p)) > 1e-3
    data = results_json(tiny_run)
    fold = data["modes"]["multimodal"]["folds"]["0"]
    fold.update(macro_f1=weighted_f1(y, p), weighted_f1=weighted_f1(y, p),
                accuracy=float((y == p).mean()))
    write_results(tiny_run, data)
    r = run_gates(tiny_run, tmp_path, "gate.results_match_predictions")[
        "gate.results_match_predictions"]
    assert not r.passed and "weighted F1 reported as macro" in r.message
    assert "multimodal fold 0 macro_f1" in r.message


def test_training_log_references_are_verified(tiny_run, tmp_path):
    assert run_gates(tiny_run, tmp_path, "gate.training_log")["gate.training_log"].passed
    norm = tiny_run / "norm_stats" / "fold_1.json"
    norm.write_text(norm.read_text() + "\n")
    log = tiny_run / "training.log"
    log.write_text("".join(line for line in log.read_text().splitlines(keepends=True)
                           if not line.startswith("MODALITY_WEIGHTS")))
    r = run_gates(tiny_run, tmp_path, "gate.training_log")["gate.training_log"]
    assert not r.passed
    assert "fold 1: norm_stats/fold_1.json sha256" in r.message
    assert "no MODALITY_WEIGHTS summary line" in r.message


def test_training_log_norm_ref_must_exist(tiny_run, tmp_path):
    (tiny_run / "norm_stats" / "fold_2.json").unlink()
    r = run_gates(tiny_run, tmp_path, "gate.training_log")["gate.training_log"]
    assert not r.passed and "fold 2" in r.message and "missing" in r.message


def test_sensor_weight_share_and_clamp(tiny_run, tmp_path):
    names = ("gate.sensor_weight_share", "gate.sensor_weight_clamp")
    assert all(r.passed for r in run_gates(tiny_run, tmp_path, *names).values())
    mw = mut.read(tiny_run, "modality_weights")
    n = int(len(mw) * 0.3)
    mw.loc[: n - 1, "sensor_weight"] = 0.3
    mw.loc[: n - 1, "audio_weight"] = 0.7
    mut.write(tiny_run, "modality_weights", mw)
    res = run_gates(tiny_run, tmp_path, *names)
    assert not res["gate.sensor_weight_share"].passed
    assert "< 80%" in res["gate.sensor_weight_share"].message
    assert not res["gate.sensor_weight_clamp"].passed
    assert f"{n} sensor weights below the clamp 0.35" in res["gate.sensor_weight_clamp"].message
    mw.loc[0, "sensor_weight"] = float("nan")
    mut.write(tiny_run, "modality_weights", mw)
    res = run_gates(tiny_run, tmp_path, *names)
    assert "NaN" in res["gate.sensor_weight_share"].message
    assert "NaN" in res["gate.sensor_weight_clamp"].message


def _edit_config(run, section, key, value):
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg[section][key] = value
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))


def test_norm_fit_on_a_held_out_take_is_caught(tiny_run, tmp_path):
    splits = mut.read(tiny_run, "splits")
    held = splits[(splits["fold"] == 0) & (splits["role"] == "test")]["sample_id"].iloc[0]
    path = tiny_run / "norm_stats" / "fold_0.json"
    stats = json.loads(path.read_text())
    stats["sample_ids"].append(held)
    path.write_text(json.dumps(stats))
    r = run_gates(tiny_run, tmp_path, "gate.norm_fit_train_only")["gate.norm_fit_train_only"]
    assert not r.passed and held in r.message and r.details["leaked_sample_ids"] == {"0": [held]}


def test_last_epoch_kept_while_an_earlier_one_was_better_is_caught(tiny_run, tmp_path):
    assert run_gates(tiny_run, tmp_path, "gate.best_checkpoint")["gate.best_checkpoint"].passed
    log = (tiny_run / "training.log").read_text()
    line = next(ln for ln in log.splitlines() if ln.startswith("FOLD mode=sensor fold=0 "))
    kept = int(line.split("kept_epoch=")[1].split()[0])
    epochs = pd.read_parquet(tiny_run / "epochs.parquet")
    other = (epochs["mode"] == "sensor") & (epochs["fold"] == 0) & (epochs["epoch"] != kept)
    epochs.loc[other, "val_loss"] = epochs["val_loss"].min() - 0.5  # another epoch was better
    write_parquet_atomic(pa.Table.from_pandas(epochs, schema=S.EPOCHS_SCHEMA,
                                              preserve_index=False), tiny_run / "epochs.parquet")
    r = run_gates(tiny_run, tmp_path, "gate.best_checkpoint")["gate.best_checkpoint"]
    assert not r.passed and "sensor fold 0: kept" in r.message and "scored better" in r.message


def test_per_sample_zscore_and_dropped_channels_are_caught(tiny_run, tmp_path):
    names = ("gate.global_normalization", "gate.audio_channels")
    assert all(r.passed for r in run_gates(tiny_run, tmp_path, *names).values())
    _edit_config(tiny_run, "features", "normalization", "per_sample")
    summary = json.loads((tiny_run / "model_summary.json").read_text())
    summary["multimodal"]["audio_channels_reaching_encoder"] = 64
    (tiny_run / "model_summary.json").write_text(json.dumps(summary))
    res = run_gates(tiny_run, tmp_path, *names)
    assert "'per_sample'" in res["gate.global_normalization"].message
    assert ("only 64 channels reach the audio encoder of the multimodal model"
            in res["gate.audio_channels"].message)
    assert not any(r.passed for r in res.values())


def test_slices_and_calibration(tiny_run_ro, tmp_path):
    lax = {"gate.slices": {"min_worst_f1": 0.0}, "gate.calibration": {"max_ece": 1.0}}
    res = run_gates(tiny_run_ro, tmp_path, *lax, params=lax)
    sl, cal = res["gate.slices"], res["gate.calibration"]
    assert sl.passed and cal.passed
    dims = {s["dimension"] for s in sl.details["per_mode"]["multimodal"]}
    assert dims == {"piece", "piece_kind", "label"}
    assert "worst slice" in sl.message
    assert set(cal.details["per_mode"]) == {"sensor", "audio", "multimodal"}
    table = cal.details["per_mode"]["multimodal"]["reliability"]
    assert sum(row["count"] for row in table) == cal.details["per_mode"]["multimodal"]["n"]
    strict = {"gate.slices": {"min_worst_f1": 1.01}, "gate.calibration": {"max_ece": 0.0}}
    res = run_gates(tiny_run_ro, tmp_path, *strict, params=strict)
    assert not res["gate.slices"].passed and "< 1.01" in res["gate.slices"].message
    assert not res["gate.calibration"].passed and "> 0.0" in res["gate.calibration"].message


def test_drift_is_detected_on_a_shifted_corpus(tiny_run_ro, tiny_run, tmp_path):
    stats = mut.read(tiny_run, "audio_stats")
    stats["snr_db"] = stats["snr_db"] + 40.0
    mut.write(tiny_run, "audio_stats", stats)
    crit = criteria_from_dict({"version": 1, "checks": {"baseline.drift": {}}})
    ctx = RunContext(tiny_run, report_dir=tmp_path / "r", baseline=RunContext(tiny_run_ro))
    r = run_checks(ctx, crit)[0]
    assert not r.passed and "snr_db" in r.details["drifting"]
    assert r.details["audio_stats"]["snr_db"]["p"] < 0.01


def test_default_criteria_run_every_gate_on_a_real_run(tiny_run_ro, tmp_path):
    from guardrails import load_criteria

    crit = load_criteria()
    results = run_checks(RunContext(tiny_run_ro, report_dir=tmp_path / "r"), crit,
                         categories=["gate", "baseline"])
    names = {r.name for r in results}
    assert {"gate.multimodal_f1", "gate.best_checkpoint", "gate.slices"} <= names
    by = {r.name: r for r in results}
    assert by["gate.slices"].severity == "warning"
    assert by["baseline.f1_delta"].skipped  # no baseline given
