"""Count metrics at a results path, and the audio pro-recall gate built from them.

The gate (``gate.audio_pro_recall``) is one registered function on :func:`metric_gate`
plus its criteria line; default off. Its figure is recomputed from predictions.parquet
(held against scikit-learn here), it passes and fails around its threshold on a real
run, fails on a run whose audio model misses the pros, skips while disabled, and its
reported stability is calibrated on simulated evaluations (as the F1 gates' is).
"""

from __future__ import annotations

import json
import subprocess
import sys

import mutations as mut
import numpy as np
import pytest
import sim_grouped as sim
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from guardrails import RunContext, criteria_from_dict, load_criteria, run_checks
from guardrails.errors import CriteriaError
from guardrails.gates._evidence import recomputed_metric, resample_fold_f1, results_metric
from guardrails.gates._metrics import count_metric, counts, stratified_player_weights
from guardrails.gates._stability import fold_stability, resample_fold_metric
from guardrails.gates.acceptance import finish_with_stability, mean_std_rule

GATE = "gate.audio_pro_recall"
PRO_RECALL = "per_class.pro.recall"

labels = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(labels)
def test_pro_recall_equals_sklearn_on_the_predictions(pairs):
    y, p = (np.array(v) for v in zip(*pairs, strict=True))
    got = float(count_metric(PRO_RECALL)(counts(y, p)))
    assert got == pytest.approx(recall_score(y, p, pos_label=1, zero_division=0), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(labels)
def test_every_count_metric_path_equals_sklearn(pairs):
    y, p = (np.array(v) for v in zip(*pairs, strict=True))
    c = counts(y, p)
    want = {"macro_f1": f1_score(y, p, labels=[0, 1], average="macro", zero_division=0),
            "weighted_f1": f1_score(y, p, labels=[0, 1], average="weighted", zero_division=0),
            "accuracy": accuracy_score(y, p)}
    for cls, name in enumerate(("amateur", "pro")):
        for stat, fn in (("precision", precision_score), ("recall", recall_score),
                         ("f1", f1_score)):
            want[f"per_class.{name}.{stat}"] = fn(y, p, pos_label=cls, zero_division=0)
    for path, value in want.items():
        assert float(count_metric(path)(c)) == pytest.approx(value, abs=1e-12), path


def test_count_metrics_are_nan_without_takes_and_refuse_unknown_paths():
    assert np.isnan(count_metric(PRO_RECALL)(np.zeros(4)))
    for bad in ("per_class.expert.recall", "per_class.pro.auc", "recall", "per_class.pro"):
        with pytest.raises(ValueError, match="unknown count metric"):
            count_metric(bad)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_the_resampler_takes_any_count_metric(seed):
    rng = np.random.default_rng(seed)
    folds = [rng.integers(0, 6, size=(int(rng.integers(2, 7)), 4)) for _ in range(3)]
    weights = [stratified_player_weights(rng.integers(0, 2, size=len(c)), 50, rng)
               for c in folds]
    recall = resample_fold_metric(folds, weights, count_metric(PRO_RECALL))
    assert recall.shape == (50, 3)
    for k, (c, w) in enumerate(zip(folds, weights, strict=True)):
        for b in (0, 17, 49):
            pooled = (w[b][:, None] * c).sum(axis=0)
            want = pooled[3] / (pooled[2] + pooled[3]) if pooled[2] + pooled[3] else 0.0
            assert recall[b, k] == pytest.approx(want) or (np.isnan(recall[b, k])
                                                           and pooled.sum() == 0)


def test_finish_with_stability_takes_keywords_only():
    with pytest.raises(TypeError):
        finish_with_stability("gate.x", True, "ok", 0.9, None, 0.0, {}, {}, {})  # type: ignore[misc]
    r = finish_with_stability("gate.multimodal_f1", passed=True, reason="ok", stability=0.4,
                              stability_note=None, min_stability=0.5, observed={},
                              expected={}, details={})
    assert not r.passed and "verdict stability 0.40 < 0.5" in r.message


def _gate(run, tmp_path, **params):
    crit = criteria_from_dict({"version": 1, "checks": {GATE: params}})
    (result,) = run_checks(RunContext(run, report_dir=tmp_path / "rep"), crit)
    return result


def test_pro_recall_is_recomputed_per_fold_and_matches_what_the_run_publishes(tiny_run_ro):
    ctx = RunContext(tiny_run_ro)
    per_fold, mean, std, problems = recomputed_metric(ctx, "audio", PRO_RECALL)
    assert not problems and mean == pytest.approx(np.mean(list(per_fold.values())))
    frame = ctx.frame("predictions.parquet")
    for k, value in per_fold.items():
        rows = frame[(frame["mode"] == "audio") & (frame["fold"] == k)]
        assert value == pytest.approx(recall_score(rows["label"], rows["prediction"],
                                                   zero_division=0))
    published, pub_mean, pub_std, pub_problems = results_metric(ctx, "audio", PRO_RECALL)
    assert published == pytest.approx(per_fold) and not pub_problems
    assert pub_mean is None and pub_std is None  # published per fold only: no problem
    # the F1 path through the general resampler is the F1 resampler
    assert recomputed_metric(ctx, "audio")[1] == recomputed_metric(ctx, "audio", "macro_f1")[1]


def test_pro_recall_gate_passes_at_its_threshold_and_fails_just_above(tiny_run_ro, tmp_path):
    mean = recomputed_metric(RunContext(tiny_run_ro), "audio", PRO_RECALL)[1]
    at = _gate(tiny_run_ro, tmp_path, min_mean=mean, n_boot=200)
    assert at.status == "pass", at.message
    assert at.details["metric"] == PRO_RECALL and at.observed["mean"] == round(mean, 4)
    assert at.message.startswith("audio pro recall: mean ")
    above = _gate(tiny_run_ro, tmp_path, min_mean=mean + 1e-9, n_boot=200)
    assert above.status == "fail" and f"< {mean + 1e-9}" in above.message
    # the tiny corpus holds one player per (fold, label) stratum: no stability to claim,
    # so a gate that requires one fails and says why (the figure itself: calibration test)
    assert at.observed["stability"] is None
    assert "cannot be estimated" in at.details["stability_note"]
    strict = _gate(tiny_run_ro, tmp_path, min_mean=mean, n_boot=200, min_stability=0.5)
    assert strict.status == "fail" and "stability unknown" in strict.message


def test_pro_recall_gate_fails_a_run_whose_audio_model_misses_pros(tiny_run, tmp_path):
    preds = mut.read(tiny_run, "predictions")
    missed = (preds["mode"] == "audio") & (preds["label"] == 1)
    missed &= np.arange(len(preds)) % 4 != 0  # about 3 of 4 pros missed
    preds.loc[missed, "prediction"] = 0
    preds.loc[missed, "probability"] = 0.1
    mut.write(tiny_run, "predictions", preds)
    r = _gate(tiny_run, tmp_path, min_mean=0.5, n_boot=200)
    assert r.status == "fail" and r.observed["mean"] < 0.5, r.message
    # the published per-fold figures now disagree with the predictions: said, not used
    assert "complete_results.json publishes fold" in r.message


def test_pro_recall_gate_is_off_by_default_and_skips_saying_why(tiny_run_ro, tmp_path):
    default = load_criteria()
    assert default.checks[GATE]["min_mean"] is None
    assert GATE in load_criteria("dev").checks
    (r,) = run_checks(RunContext(tiny_run_ro, report_dir=tmp_path / "rep"), default,
                      names=[GATE])
    assert r.status == "skip" and not r.fails_verdict
    assert "disabled" in r.message and "min_mean is null" in r.message
    with pytest.raises(CriteriaError, match="min_mean must be a number or null"):
        _gate(tiny_run_ro, tmp_path, min_mean="high")


def test_pro_recall_gate_from_the_cli(tiny_run_ro, tmp_path):
    crit = tmp_path / "c.yaml"
    crit.write_text(yaml.safe_dump({"version": 1, "checks": {GATE: {"min_mean": 1.01,
                                                                     "n_boot": 100}}}))
    proc = subprocess.run([sys.executable, "-m", "guardrails.cli", "gate", str(tiny_run_ro),
                           "--baseline", str(tiny_run_ro), "--criteria", str(crit),
                           "--report-dir", str(tmp_path / "r"), "--quiet"],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stderr[-2000:]
    verdict = json.loads((tmp_path / "r" / "verdict.json").read_text())
    assert [(c["name"], c["status"]) for c in verdict["checks"]] == [(GATE, "fail")]


def test_f1_resampling_is_unchanged_by_the_general_resampler(tiny_run_ro):
    from guardrails.gates._evidence import expected_folds, fold_players, held_out, resample_weights

    ctx = RunContext(tiny_run_ro)
    folds, _ = fold_players(held_out(ctx), "audio", expected_folds(ctx))
    weights = resample_weights(folds, 64, np.random.default_rng(3))
    via_counts = resample_fold_metric([f.counts for f in folds], weights,
                                      count_metric("macro_f1"))
    assert np.array_equal(resample_fold_f1(folds, weights), via_counts, equal_nan=True)


@pytest.mark.slow
def test_pro_recall_stability_is_calibrated():
    """Runs reported at x pass in about x of fresh evaluations (every populated bin
    within 0.1), as for the F1 gates (test_calibration.py), on simulated evaluations."""
    rng = np.random.default_rng(11)
    metric = count_metric(PRO_RECALL)
    rule = mean_std_rule(0.8, 1.0)
    c = sim.draw_f1_runs(rng, 4000, 40, (0.55, 0.99))       # (R, 1 + fresh, K, G, 4)
    truth = rule(metric(c[:, 1:].sum(axis=-2))).mean(axis=1)
    obs = c[:, 0]
    (samples,) = sim.boot_fold(metric, [obs], sim.STRATA, 200, rng)
    reported = fold_stability(metric(obs.sum(axis=-2)), samples, rule, 400, rng)
    rows = sim.reliability(reported, truth, min_count=100)
    assert len(rows) >= 4, rows
    off = [r for r in rows if abs(r[4] - r[3]) > 0.1]
    assert not off, off
