"""Parquet audits: schemas, ranges, keys, sums and referential integrity on a real run,
mutated copies that fail for the right reason, and Hypothesis frames breaking one rule."""

from __future__ import annotations

import mutations as mut
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import failed_rules
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrails.checks.audit import ARTIFACTS, audit_frame, audit_path
from profy.contract import schemas as S
from profy.contract.atomic import write_parquet_atomic

AUDITS = tuple(f"audit.{a}" for a in ARTIFACTS) + ("audit.integrity",)


def test_real_run_passes_every_audit(tiny_run_ro, run_selected):
    results = run_selected(tiny_run_ro, *AUDITS)
    assert {n: r.status for n, r in results.items()} == dict.fromkeys(AUDITS, "pass")
    assert results["audit.predictions"].observed["rows"] == len(
        pd.read_parquet(tiny_run_ro / "predictions.parquet"))


@pytest.mark.parametrize(("mutate", "check", "rule"), [
    (mut.probability_out_of_range, "audit.predictions", "probability.range"),
    (mut.duplicate_prediction, "audit.predictions", "key.unique"),
    (mut.weights_not_summing, "audit.modality_weights", "weights.sum_to_one"),
    (mut.fold_as_int64, "audit.predictions", "schema.columns"),
    (mut.duplicate_audio_row, "audit.audio_stats", "key.unique"),
])
def test_mutation_fails_its_rule_only(tiny_run, run_selected, mutate, check, rule):
    mutate(tiny_run)
    result = run_selected(tiny_run, check)[check]
    assert result.status == "fail"
    assert failed_rules(result) == {rule}
    assert rule in result.message


def _rewrite(run, relpath: str, change) -> None:
    """Rewrite one artifact through pandas with ``change(frame)``, keeping its schema."""
    path = run / relpath
    table = pq.read_table(path)
    frame = change(table.to_pandas())
    out = pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False)
    write_parquet_atomic(out, path)


def _set(column, value):
    def change(df):
        df.loc[0, column] = value
        return df
    return change


def _duplicate_first_row(df):
    return pd.concat([df, df.iloc[:1]], ignore_index=True)


def _weights_sum_to(total):
    def change(df):
        df.loc[0, ["sensor_weight", "audio_weight"]] = (0.9, total - 0.9)  # each in [0, 1]
        return df
    return change


@pytest.mark.parametrize(("relpath", "change", "rule"), [
    ("splits.parquet", _set("role", "holdout"), "role.in_set"),
    ("gate_log.parquet", _weights_sum_to(1.05), "weights.sum_to_one"),
    ("gate_log.parquet", _set("temperature", 0.5), "temperature.range"),
    ("epochs.parquet", _duplicate_first_row, "key.unique"),
    ("epochs.parquet", _set("val_macro_f1", 1.5), "val_macro_f1.range"),
    ("manifest.parquet", _set("piece_kind", "etude"), "piece_kind.in_set"),
    ("manifest.parquet", _set("sample_rate", 0), "sample_rate.range"),
    ("features/feature_index.parquet", _duplicate_first_row, "key.unique"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_every_artifact_audit_fails_its_rule_only(tiny_run, run_selected, relpath, change, rule):
    check = "audit." + relpath.rsplit("/", 1)[-1].removesuffix(".parquet")
    _rewrite(tiny_run, relpath, change)
    result = run_selected(tiny_run, check)[check]
    assert result.status == "fail" and failed_rules(result) == {rule}, result.message
    assert rule in result.message


def test_prediction_for_a_training_take_breaks_integrity(tiny_run, run_selected):
    take = mut.predict_training_take(tiny_run)
    result = run_selected(tiny_run, "audit.integrity")["audit.integrity"]
    # the prediction points at a training take, and the take it replaced lost its prediction
    assert failed_rules(result) == {"predictions.in_heldout",
                                    "predictions.label_matches_splits",
                                    "heldout.predicted.sensor"}
    rule = next(r for r in result.details["rules"] if r["rule"] == "predictions.in_heldout")
    assert rule["unexpected_count"] == 1
    assert take


def test_missing_prediction_breaks_integrity(tiny_run, run_selected):
    mut.drop_prediction(tiny_run, mode="multimodal")
    result = run_selected(tiny_run, "audit.integrity")["audit.integrity"]
    # the take's modality weights now point at no multimodal prediction either
    assert failed_rules(result) == {"heldout.predicted.multimodal",
                                    "modality_weights.in_predictions"}


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.98])
def test_corrupt_parquet_is_a_failure_naming_the_file(tiny_run, run_selected, keep):
    mut.truncate(tiny_run, "predictions.parquet", keep=keep)
    result = run_selected(tiny_run, "audit.predictions")["audit.predictions"]
    assert result.status == "fail"
    assert "predictions.parquet" in result.message
    assert ("empty file" in result.message) if keep == 0.0 else ("not a readable Parquet"
                                                                  in result.message)


def test_zero_row_table_fails_nonempty(tmp_path):
    path = tmp_path / "predictions.parquet"
    pq.write_table(S.PREDICTIONS_SCHEMA.empty_table(), path)
    result = audit_path(path, report_dir=tmp_path / "r")
    assert failed_rules(result) == {"rows.nonempty"}


def test_artifact_is_read_from_metadata(tiny_run_ro, tmp_path):
    renamed = tmp_path / "whatever.parquet"
    renamed.write_bytes((tiny_run_ro / "modality_weights.parquet").read_bytes())
    result = audit_path(renamed, report_dir=tmp_path / "r")
    assert result.name == "audit.modality_weights" and result.passed


# --- Hypothesis: a valid generated frame passes; breaking one rule fails that rule only ---

@st.composite
def predictions_frames(draw):
    n = draw(st.integers(1, 25))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    probs = rng.uniform(0, 1, n)
    probs[np.abs(probs - 0.5) < 1e-3] = 0.25  # keep clear of the argmax tie
    keys = draw(st.lists(st.tuples(st.sampled_from(S.MODES), st.integers(0, 4),
                                   st.sampled_from([f"take{i:02d}" for i in range(20)])),
                         min_size=n, max_size=n, unique=True))
    return pd.DataFrame({"mode": [k[0] for k in keys],
                         "fold": np.array([k[1] for k in keys], dtype="int32"),
                         "sample_id": [k[2] for k in keys],
                         "label": rng.integers(0, 2, n).astype("int32"),
                         "probability": probs,
                         "prediction": (probs > 0.5).astype("int32")})


def _break(df: pd.DataFrame, rule: str, i: int) -> pd.DataFrame:
    df = df.copy()
    if rule == "probability.range":  # stays consistent with its prediction
        df.loc[i, ["probability", "prediction"]] = [1.5, 1]
    elif rule == "probability.not_null":
        df.loc[i, ["probability", "prediction"]] = [np.nan, 0]
    elif rule == "prediction.range":  # at the exact tie, any prediction agrees
        df.loc[i, ["probability", "prediction"]] = [0.5, 2]
    elif rule == "prediction.matches_probability":
        df.loc[i, "prediction"] = 1 - df.loc[i, "prediction"]
    elif rule == "label.range":
        df.loc[i, "label"] = 3
    elif rule == "fold.range":
        df.loc[i, "fold"] = -1 - df["fold"].max()  # a new key: stays unique
    elif rule == "mode.in_set":
        df.loc[i, "mode"] = "fusion"
    elif rule == "key.unique":
        df = pd.concat([df, df.iloc[[i]]], ignore_index=True)
    elif rule == "sample_id.not_null":
        df.loc[i, "sample_id"] = None
    return df


BREAKABLE = ["probability.range", "probability.not_null", "prediction.range",
             "prediction.matches_probability", "label.range", "fold.range", "mode.in_set",
             "key.unique", "sample_id.not_null"]


def _table(df: pd.DataFrame) -> tuple[pd.DataFrame, pa.Schema]:
    schema = pa.schema([f.with_nullable(True) for f in S.PREDICTIONS_SCHEMA],
                       metadata=S.PREDICTIONS_SCHEMA.metadata)  # nulls must reach the audit
    return pa.Table.from_pandas(df, schema=schema, preserve_index=False).to_pandas(), \
        S.PREDICTIONS_SCHEMA


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(frame=predictions_frames(), rule=st.sampled_from([None, *BREAKABLE]), data=st.data())
def test_generated_frame_breaks_exactly_one_rule(frame, rule, data):
    if rule is not None:
        frame = _break(frame, rule, data.draw(st.integers(0, len(frame) - 1)))
    df, schema = _table(frame)
    outcomes = audit_frame(df, "predictions", schema)
    failed = {o.id for o in outcomes if not o.success}
    assert failed == (set() if rule is None else {rule})


@st.composite
def modality_weight_frames(draw):
    n = draw(st.integers(1, 20))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    sensor = rng.uniform(0.35, 1.0, n)
    frame = pd.DataFrame({"fold": rng.integers(0, 3, n).astype("int32"),
                          "sample_id": [f"take{i:03d}" for i in range(n)],
                          "sensor_weight": sensor, "audio_weight": 1.0 - sensor})
    for name in S.QUALITY_FIELDS:
        frame[name] = rng.uniform(0.0, 1.0, n) if name in ("nonsilent_ratio", "clipping_ratio") \
            else rng.normal(0.0, 30.0, n)
    frame["gate_temperature"] = rng.uniform(1.0, 5.0, n)
    frame["correct"] = rng.integers(0, 2, n).astype(bool)
    return frame[S.MODALITY_WEIGHTS_SCHEMA.names]


def _break_weights(df: pd.DataFrame, rule: str, i: int) -> pd.DataFrame:
    df = df.copy()
    if rule == "weights.sum_to_one":  # both stay within [0, 1]
        df.loc[i, ["sensor_weight", "audio_weight"]] = [0.5, 0.4]
    elif rule == "gate_temperature.range":
        df.loc[i, "gate_temperature"] = 0.5
    elif rule == "clipping_ratio.range":
        df.loc[i, "clipping_ratio"] = 1.01
    elif rule == "snr_db.finite":
        df.loc[i, "snr_db"] = np.inf
    elif rule == "loudness_db.not_null":
        df.loc[i, "loudness_db"] = np.nan
    elif rule == "key.unique":
        df = pd.concat([df, df.iloc[[i]]], ignore_index=True)
    return df


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=modality_weight_frames(),
       rule=st.sampled_from([None, "weights.sum_to_one", "gate_temperature.range",
                             "clipping_ratio.range", "snr_db.finite", "loudness_db.not_null",
                             "key.unique"]), data=st.data())
def test_generated_weights_break_exactly_one_rule(frame, rule, data):
    if rule is not None:
        frame = _break_weights(frame, rule, data.draw(st.integers(0, len(frame) - 1)))
    outcomes = audit_frame(frame, "modality_weights", S.MODALITY_WEIGHTS_SCHEMA)
    assert {o.id for o in outcomes if not o.success} == (set() if rule is None else {rule})
