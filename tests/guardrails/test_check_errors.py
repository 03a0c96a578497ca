"""Bad evidence fails a check instead of crashing the run; criteria values are checked at
load time (``null`` only where the default is ``null``, declared choices)."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrails import CheckResult, RunContext, criteria_from_dict, run_checks
from guardrails._criteria import load_criteria
from guardrails._registry import REGISTRY, load_all_checks, register
from guardrails.cli import main
from guardrails.errors import BadInputError, CriteriaError
from profy.contract.atomic import write_parquet_atomic


# --- a check that raises on its evidence -------------------------------------------------
def _break_predictions(run) -> None:
    """predictions.parquet without its ``probability`` column and with a label of 7."""
    path = run / "predictions.parquet"
    df = pd.read_parquet(path).drop(columns=["probability"])
    df.loc[df.index[df["mode"] == "multimodal"][0], "label"] = 7
    write_parquet_atomic(pa.Table.from_pandas(df, preserve_index=False), path)


def test_ci_on_schema_broken_predictions_gives_a_verdict_with_failing_checks(tiny_run, tmp_path,
                                                                           capsys):
    _break_predictions(tiny_run)
    report = tmp_path / "rep"
    code = main(["ci", str(tiny_run), "--report-dir", str(report), "--quiet"])
    assert code == 1, capsys.readouterr().err
    by = {c["name"]: c for c in json.loads((report / "verdict.json").read_text())["checks"]}
    slices, calibration = by["gate.slices"], by["gate.calibration"]
    # both are `severity: warning` in the default criteria; a crash is an error regardless
    for crashed in (slices, calibration):
        assert crashed["status"] == "fail" and crashed["severity"] == "error"
        assert crashed["message"].startswith(f"{crashed['name']} could not evaluate")
        assert "Traceback" in crashed["details"]["traceback"]
        assert "guardrails/gates/" in crashed["details"]["raised_at"]
    assert "ValueError" in slices["message"] and "y_true holds" in slices["message"]
    assert "KeyError: 'probability'" in calibration["message"]
    assert by["audit.predictions"]["status"] == "fail"  # the audit names the schema break


@pytest.fixture
def raising_checks():
    """``gate.probe_raises`` (tables lane) and ``onnx.probe_raises`` (forked inference lane)
    each raise a KeyError; ``gate.probe_misuse`` raises a BadInputError."""
    def boom(ctx):
        raise KeyError("label")

    def misuse(ctx):
        raise BadInputError("criteria", "not a way to use this check")

    register("gate.probe_raises", category="gate")(boom)
    register("onnx.probe_raises", category="onnx", lane="inference")(boom)
    register("gate.probe_misuse", category="gate")(misuse)
    yield
    for name in ("gate.probe_raises", "onnx.probe_raises", "gate.probe_misuse"):
        REGISTRY.pop(name, None)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_raising_check_fails_in_either_lane_with_json_details(raising_checks, tmp_path,
                                                                   jobs):
    crit = criteria_from_dict({"version": 1, "checks": {
        "gate.probe_raises": {"severity": "warning"}, "onnx.probe_raises": {}}})
    results = run_checks(RunContext(tmp_path), crit, jobs=jobs)
    assert [r.name for r in results] == ["gate.probe_raises", "onnx.probe_raises"]
    for r in results:
        assert not r.passed and r.status == "fail" and r.severity == "error"
        assert "KeyError: 'label'" in r.message and r.details["exception"] == "KeyError"
        sent = json.loads(json.dumps(r.to_dict(), allow_nan=False))  # what a lane sends
        assert CheckResult.from_dict(sent).to_dict() == r.to_dict()


def test_misuse_still_propagates_as_guardrails_error(raising_checks, tmp_path):
    crit = criteria_from_dict({"version": 1, "checks": {"gate.probe_misuse": {}}})
    with pytest.raises(BadInputError, match="not a way to use"):
        run_checks(RunContext(tmp_path), crit)


# --- criteria: null and choices ----------------------------------------------------------
def _declared(with_none_default: bool) -> list[tuple[str, str]]:
    return sorted((name, key) for name, spec in load_all_checks().items()
                  for key, default in spec.params.items()
                  if (default is None) == with_none_default)


def test_null_is_refused_for_every_parameter_with_a_non_null_default():
    pairs = _declared(with_none_default=False)
    assert ("gate.multimodal_f1", "min_mean") in pairs
    for name, key in pairs:
        with pytest.raises(CriteriaError, match=rf"<dict>: {name}\.{key} must be .*got None"):
            criteria_from_dict({"version": 1, "checks": {name: {key: None}}})


def test_null_stays_allowed_where_the_default_is_null():
    pairs = _declared(with_none_default=True)
    assert ("onnx.latency", "max_batch1_ms") in pairs
    for name, key in pairs:
        assert criteria_from_dict({"version": 1, "checks": {name: {key: None}}}
                                  ).checks[name][key] is None


def test_null_in_a_criteria_file_names_file_check_and_key(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("version: 1\nchecks:\n  gate.multimodal_f1: {min_mean: null}\n")
    with pytest.raises(CriteriaError) as info:
        load_criteria(path)
    assert str(path) in str(info.value) and "gate.multimodal_f1.min_mean" in str(info.value)


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.text(max_size=12), st.sampled_from(["worse", "non_inferior"])))
def test_declared_choices_are_checked_at_load_time(value):
    body = {"version": 1, "checks": {"baseline.f1_delta": {"rule": value}}}
    if value in ("worse", "non_inferior"):
        assert criteria_from_dict(body).checks["baseline.f1_delta"]["rule"] == value
    else:
        with pytest.raises(CriteriaError, match=r"baseline\.f1_delta\.rule must be one of"):
            criteria_from_dict(body)


def test_register_refuses_choices_that_exclude_the_default():
    with pytest.raises(ValueError, match="choices for 'rule'"):
        register("gate.choice_probe", category="gate", params={"rule": "x"},
                 choices={"rule": ("y",)})(lambda ctx: CheckResult("gate.choice_probe",
                                                                   "gate", True))
    assert "gate.choice_probe" not in REGISTRY
