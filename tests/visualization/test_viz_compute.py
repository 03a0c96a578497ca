"""Plot numbers against independent sources: training.log, scikit-learn, scipy, pandas."""

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import pearsonr
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix, f1_score

from profy.errors import MalformedFileError, MissingInputError
from profy.visualization import compute
from profy.visualization._artifacts import check_status, read_verdict
from profy.visualization.release_notes import flatten


def _log_weights(run):
    """MODALITY_WEIGHTS lines of training.log, written by the trainer at run time."""
    out = {}
    for line in (run / "training.log").read_text().splitlines():
        if line.startswith("MODALITY_WEIGHTS "):
            kv = dict(tok.split("=", 1) for tok in line.split()[1:])
            out[kv["fold"]] = kv
    return out


def test_weight_distribution_matches_the_training_log(tiny_run_ro):
    stats = compute.weight_distribution(tiny_run_ro)
    logged = _log_weights(tiny_run_ro)
    assert [str(s.fold) for s in stats] == sorted(k for k in logged if k != "all") + ["all"]
    for s in stats:
        kv = logged[str(s.fold)]
        assert s.n == int(kv["n"])
        assert s.mean == pytest.approx(float(kv["mean_sensor"]), abs=1e-5)
        assert s.median == pytest.approx(float(kv["median_sensor"]), abs=1e-5)
        assert s.min == pytest.approx(float(kv["min_sensor"]), abs=1e-5)
        assert s.frac_sensor_ge_half == pytest.approx(float(kv["frac_sensor_ge_0.5"]), abs=1e-5)
        assert s.counts.sum() == s.n  # every weight lands in a bin, 1.0 included


def test_confusion_matches_recorded_per_fold_matrices_and_sklearn(tiny_run_ro):
    import json

    results = json.loads((tiny_run_ro / "complete_results.json").read_text())
    preds = pq.read_table(tiny_run_ro / "predictions.parquet").to_pandas()
    got = compute.confusion_by_mode(tiny_run_ro)
    assert set(got) == set(results["modes"])
    for mode, cm in got.items():
        recorded = sum(np.array(f["confusion_matrix"])
                       for f in results["modes"][mode]["folds"].values())
        np.testing.assert_array_equal(cm, recorded)
        part = preds[preds["mode"] == mode]
        np.testing.assert_array_equal(cm, confusion_matrix(part["label"], part["prediction"],
                                                           labels=[0, 1]))


def test_fold_scores_are_sklearn_macro_f1_of_the_predictions(tiny_run_ro):
    scores = compute.fold_scores(tiny_run_ro)
    preds = pq.read_table(tiny_run_ro / "predictions.parquet").to_pandas()
    assert len(scores) == preds.groupby(["mode", "fold"]).ngroups
    for row in scores.itertuples():
        part = preds[(preds["mode"] == row.mode) & (preds["fold"] == row.fold)]
        assert row.score == pytest.approx(f1_score(part["label"], part["prediction"],
                                                   average="macro", labels=[0, 1],
                                                   zero_division=0.0))
    for mode, part in scores.groupby("mode"):
        assert part["mean"].iloc[0] == pytest.approx(part["score"].mean())
        assert part["std"].iloc[0] == pytest.approx(part["score"].std(ddof=0))


def test_gate_vs_quality_joins_audio_stats_and_matches_scipy(tiny_run_ro):
    gq = compute.gate_vs_quality(tiny_run_ro)
    weights = pq.read_table(tiny_run_ro / "modality_weights.parquet").to_pandas()
    stats = pq.read_table(tiny_run_ro / "audio_stats.parquet").to_pandas().set_index("sample_id")
    assert len(gq.points) == len(weights)
    expected_snr = stats.loc[gq.points["sample_id"], "snr_db"].to_numpy()
    np.testing.assert_allclose(gq.points["snr_db"], expected_snr)
    r, _ = pearsonr(gq.points["snr_db"], gq.points["sensor_weight"])
    assert gq.pearson_r == pytest.approx(r)
    assert np.sign(gq.slope) == np.sign(r)


def test_gate_vs_quality_names_the_file_when_a_take_has_no_stats(tiny_run):
    stats = pq.read_table(tiny_run / "audio_stats.parquet")
    first = pq.read_table(tiny_run / "modality_weights.parquet").column("sample_id")[0].as_py()
    keep = pa.compute.not_equal(stats.column("sample_id"), first)
    pq.write_table(stats.filter(keep), tiny_run / "audio_stats.parquet")
    with pytest.raises(MalformedFileError, match=rf"audio_stats\.parquet.*{first}"):
        compute.gate_vs_quality(tiny_run)


def test_reliability_matches_sklearn_calibration_curve(tiny_run_ro):
    preds = pq.read_table(tiny_run_ro / "predictions.parquet").to_pandas()
    for mode, (table, ece) in compute.reliability_by_mode(tiny_run_ro).items():
        part = preds[preds["mode"] == mode]
        prob_true, prob_pred = calibration_curve(part["label"], part["probability"], n_bins=10)
        full = table[table["count"] > 0]
        np.testing.assert_allclose(full["fraction_positive"], prob_true)
        np.testing.assert_allclose(full["mean_predicted"], prob_pred)
        by_hand = (full["count"] * (full["fraction_positive"] - full["mean_predicted"]).abs()
                   ).sum() / len(part)
        assert ece == pytest.approx(by_hand)


def test_damaged_and_missing_artifacts_are_named(tiny_run):
    (tiny_run / "predictions.parquet").write_bytes(b"not parquet")
    with pytest.raises(MalformedFileError, match="predictions.parquet"):
        compute.confusion_by_mode(tiny_run)
    (tiny_run / "modality_weights.parquet").unlink()
    with pytest.raises(MissingInputError, match="modality_weights.parquet"):
        compute.weight_distribution(tiny_run)


def test_out_of_range_weights_are_refused(tiny_run):
    table = pq.read_table(tiny_run / "modality_weights.parquet").to_pandas()
    table.loc[0, "sensor_weight"] = 1.5
    table.to_parquet(tiny_run / "modality_weights.parquet")
    with pytest.raises(MalformedFileError, match=r"sensor_weight 1\.5 outside"):
        compute.weight_distribution(tiny_run)


def test_a_damaged_verdict_is_an_error_not_not_gated(tiny_run):
    (tiny_run / "guardrails").mkdir()
    (tiny_run / "guardrails" / "verdict.json").write_text('{"checks": [{"status": "pass"}]}')
    with pytest.raises(MalformedFileError, match="verdict.json.*no 'name'"):
        read_verdict(tiny_run)
    shutil.rmtree(tiny_run / "guardrails")
    assert read_verdict(tiny_run) == (None, None)


_keys = st.text(alphabet="abcxyz_", min_size=1, max_size=5)
_leaves = st.one_of(st.integers(), st.text(max_size=4), st.lists(st.integers(), max_size=3))
_trees = st.recursive(_leaves, lambda inner: st.dictionaries(_keys, inner, min_size=1,
                                                             max_size=4), max_leaves=12)


@given(st.dictionaries(_keys, _trees, max_size=4))
def test_flatten_keeps_every_leaf_once(tree):
    flat = flatten(tree)

    def leaves(obj):
        if isinstance(obj, dict) and obj:
            return [x for v in obj.values() for x in leaves(v)]
        return [obj]

    every = [x for v in tree.values() for x in leaves(v)]  # the top level is not a leaf
    assert sorted(map(repr, flat.values())) == sorted(map(repr, every))
    for dotted, value in flat.items():  # each dotted path walks back to its leaf
        node = tree
        for part in dotted.split("."):
            node = node[part]
        assert node == value


@given(st.fixed_dictionaries({"name": st.just("x")}, optional={
    "status": st.sampled_from(["pass", "fail", "warn", "skip"]), "passed": st.booleans(),
    "skipped": st.booleans(), "severity": st.sampled_from(["error", "warning"])}))
def test_check_status_prefers_the_recorded_status(entry):
    status = check_status(entry)
    assert status in {"pass", "fail", "warn", "skip"}
    if "status" in entry:
        assert status == entry["status"]
    elif entry.get("skipped"):
        assert status == "skip"


def test_fold_scores_refuse_results_without_modes(tiny_run):
    (tiny_run / "complete_results.json").write_text("{}")
    with pytest.raises(MalformedFileError, match="complete_results.json.*no 'modes'"):
        compute.fold_scores(tiny_run)


def test_all_columns_used_exist_in_the_schemas():
    from profy.contract.schemas import (
        AUDIO_STATS_SCHEMA,
        MODALITY_WEIGHTS_SCHEMA,
        PREDICTIONS_SCHEMA,
    )

    assert {"fold", "sample_id", "sensor_weight", "correct"} <= set(MODALITY_WEIGHTS_SCHEMA.names)
    assert {"sample_id", "snr_db"} <= set(AUDIO_STATS_SCHEMA.names)
    assert {"mode", "fold", "label", "probability", "prediction"} <= set(PREDICTIONS_SCHEMA.names)
