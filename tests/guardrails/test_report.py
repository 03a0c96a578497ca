"""Verdict outputs: verdict.json against its schema, JUnit through a real parser,
Markdown and the terminal table; exit codes; atomic writes."""

from __future__ import annotations

import io
import json

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from junitparser import Failure, JUnitXml, Skipped
from rich.console import Console

from guardrails import BadInputError, CheckResult
from guardrails.report import emit, load_schema

VALIDATOR = jsonschema.Draft202012Validator(load_schema(),
                                            format_checker=jsonschema.FormatChecker())


def _results():
    return [
        CheckResult("data.ok", "data", True, observed=130, expected=">= 120", message="fine",
                    duration_s=0.25),
        CheckResult("gate.f1", "gate", False, observed=float("nan"), expected={"min": 0.78},
                    message="macro F1 0.61 < 0.78 [multimodal] | bad", details={"folds": [1, 2]}),
        CheckResult("calib.ece", "baseline", False, severity="warning", observed=0.2,
                    expected="<= 0.1", message="ECE high"),
        CheckResult("onnx.parity", "onnx", True, skipped=True, message="skipped: no ONNX"),
    ]


def _emit(tmp_path, results, **kw):
    buf = io.StringIO()
    code = emit(results, title="guardrails test", report_dir=tmp_path / "r",
                console=Console(file=buf, width=160), **kw)
    return code, buf.getvalue()


def test_outputs_validate_and_agree(tmp_path):
    code, table = _emit(tmp_path, _results(), junit=tmp_path / "ci" / "junit.xml",
                        markdown=tmp_path / "pr.md", extra={"engine": "pandas"},
                        run_dir="runs/x", criteria_source="default.yaml", elapsed_s=1.5)
    assert code == 1
    verdict = json.loads((tmp_path / "r" / "verdict.json").read_text())
    VALIDATOR.validate(verdict)
    assert verdict["verdict"] == "fail" and verdict["exit_code"] == 1
    assert verdict["summary"] == {"total": 4, "pass": 1, "fail": 1, "warn": 1, "skip": 1}
    assert [c["name"] for c in verdict["checks"]] == [r.name for r in _results()]
    assert verdict["checks"][1]["observed"] == "nan"  # non-finite made visible, JSON valid
    assert verdict["extra"] == {"engine": "pandas"} and verdict["run_dir"] == "runs/x"
    assert verdict["timings"] == {"total_s": 1.5, "checks_s": 0.25}

    for path in (tmp_path / "r" / "junit.xml", tmp_path / "ci" / "junit.xml"):
        xml = JUnitXml.fromfile(str(path))
        cases = {case.name: case for suite in xml for case in suite}
        assert set(cases) == {r.name for r in _results()}
        assert any(isinstance(x, Failure) for x in cases["gate.f1"].result)
        assert any(isinstance(x, Skipped) for x in cases["onnx.parity"].result)
        assert cases["data.ok"].is_passed and cases["calib.ece"].is_passed  # warn: not a failure
        assert "WARNING" in cases["calib.ece"].system_out  # ... but visible
        assert sum(s.failures for s in xml) == 1 and sum(s.skipped for s in xml) == 1

    md = (tmp_path / "pr.md").read_text()
    assert md == (tmp_path / "r" / "summary.md").read_text()
    assert "**FAIL**" in md and "`gate.f1`" in md and "\\| bad" in md  # pipes escaped
    assert md.index("gate.f1") < md.index("data.ok")  # failures first
    assert "gate.f1" in table and "verdict: FAIL" in table and "[multimodal]" in table
    assert not list((tmp_path / "r").glob(".*.tmp"))  # atomic writes leave no temp files


def test_warnings_and_skips_do_not_fail(tmp_path):
    code, _ = _emit(tmp_path, [r for r in _results() if r.name != "gate.f1"])
    assert code == 0
    assert json.loads((tmp_path / "r" / "verdict.json").read_text())["verdict"] == "pass"


def test_unwritable_report_dir_is_bad_input(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BadInputError, match="report-dir"):
        emit(_results(), title="t", report_dir=blocker / "sub", console=False)


def test_emit_refuses_non_results(tmp_path):
    with pytest.raises(TypeError, match="CheckResult"):
        emit([{"name": "x"}], title="t", report_dir=tmp_path, console=False)


_values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.text(max_size=20), st.lists(st.floats(), max_size=3))
_result = st.builds(
    CheckResult, name=st.text(min_size=1, max_size=30).filter(str.strip),
    category=st.sampled_from(["data", "audit", "onnx", "gate", "baseline", "replay"]),
    passed=st.booleans(), severity=st.sampled_from(["error", "warning"]), observed=_values,
    expected=_values, message=st.text(max_size=60),
    details=st.dictionaries(st.text(max_size=5), _values, max_size=3), skipped=st.booleans(),
    duration_s=st.one_of(st.none(), st.floats(0, 100)))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(results=st.lists(_result, max_size=6))
def test_any_results_give_valid_outputs(tmp_path, results):
    code = emit(results, title="prop", report_dir=tmp_path / "p", console=False)
    verdict = json.loads((tmp_path / "p" / "verdict.json").read_text())
    VALIDATOR.validate(verdict)
    assert code == int(any(r.fails_verdict for r in results)) == verdict["exit_code"]
    xml = JUnitXml.fromfile(str(tmp_path / "p" / "junit.xml"))
    assert sum(len(list(s)) for s in xml) == len(results)


@pytest.mark.parametrize("name", ["guardrails.report", "guardrails.checks",
                                  "guardrails.checks.audit", "guardrails.checks.data_quality",
                                  "guardrails.checks.data_quality_norm",
                                  "guardrails.checks.audit_integrity"])
def test_all_lists_the_public_names(name):
    import importlib
    import types

    module = importlib.import_module(name)
    assert all(hasattr(module, n) for n in module.__all__)
    public = [n for n, v in vars(module).items() if not n.startswith("_")
              and not isinstance(v, types.ModuleType) and n != "annotations"
              and getattr(v, "__module__", name) == name and callable(v)]
    assert set(public) <= set(module.__all__), set(public) - set(module.__all__)
