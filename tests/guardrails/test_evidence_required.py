"""Issue 18 item 2: required evidence fails instead of skipping; the dev profile; skipped
checks listed under the verdict line (console, Markdown, HTML).

Unit tests run on probe checks and tiny folders; the ``ci`` tests run on the session's
real tiny run (no ``onnx/``: the pre-export state).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from guardrails import CheckResult, RunContext, criteria_from_dict, run_checks
from guardrails._criteria import load_criteria
from guardrails._registry import REGISTRY, register, require, skip_reason
from guardrails.cli import main
from guardrails.errors import BadInputError, CriteriaError
from guardrails.report import emit, markdown_summary

ONNX = ("onnx.checker", "onnx.signature", "onnx.parity", "onnx.latency", "onnx.quantization")


# --- criteria: required, profiles, extends ------------------------------------------------
def test_required_is_validated_like_severity():
    crit = criteria_from_dict({"version": 1, "checks": {"data.splits": {"required": True},
                                                        "audit.splits": {"required": False}}})
    assert crit.required == frozenset({"data.splits"})
    assert "required" not in crit.checks["data.splits"]  # not passed to the check
    for bad in ("yes", 1, None):
        with pytest.raises(CriteriaError, match=r"data\.splits\.required must be true or false"):
            criteria_from_dict({"version": 1, "checks": {"data.splits": {"required": bad}}})


def test_default_requires_onnx_and_smoke_dev_requires_nothing_else_the_same():
    default, dev = load_criteria(), load_criteria("dev")
    assert set(ONNX) | {"replay.smoke"} <= default.required
    assert dev.required == frozenset()
    assert Path(dev.source).name == "dev.yaml" and Path(default.source).name == "default.yaml"
    # dev extends default: the same checks, thresholds and severities, never drifting apart
    assert dev.checks == default.checks and dev.severities == default.severities
    assert load_criteria(dev.source).required == frozenset()  # a path still works


def test_unknown_profile_and_extends_errors(tmp_path):
    with pytest.raises(BadInputError, match="profile: .*default.*dev"):
        load_criteria("nope")
    loop = tmp_path / "loop.yaml"
    loop.write_text("version: 1\nextends: loop.yaml\nchecks: {}\n")
    with pytest.raises(CriteriaError, match="loops"):
        load_criteria(loop)
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"version": 1, "extends": "dev", "checks": {
        "replay.smoke": {"required": True, "margin": 0.01}, "gate.slices": False}}))
    crit = load_criteria(mine)
    assert crit.required == frozenset({"replay.smoke"})
    assert crit.checks["replay.smoke"]["margin"] == 0.01 and "gate.slices" not in crit.checks
    assert crit.checks["gate.multimodal_f1"] == load_criteria().checks["gate.multimodal_f1"]


# --- run_checks: a required check that would skip fails ------------------------------------
@pytest.fixture
def probes():
    """``gate.probe_absent`` skips (``applies(ctx)``); ``gate.probe_params`` skips unless
    its ``where`` parameter names an existing folder (``applies(ctx, params)``);
    ``gate.probe_self_skip`` returns a skipped result itself."""
    def ok(ctx, **_):
        return CheckResult("gate.probe", "gate", True, message="compared")

    register("gate.probe_absent", category="gate",
             applies=lambda ctx: "no widget in RUN: run `profy widget RUN`")(ok)
    register("gate.probe_params", category="gate", params={"where": ""},
             applies=lambda ctx, params: None if params["where"] and
             Path(params["where"]).is_dir() else f"no folder {params['where']!r}")(ok)
    register("gate.probe_self_skip", category="gate")(
        lambda ctx: CheckResult("gate.probe_self_skip", "gate", True, skipped=True,
                                message="no reference to compare: recorded now"))
    yield
    for name in ("gate.probe_absent", "gate.probe_params", "gate.probe_self_skip"):
        REGISTRY.pop(name, None)


@pytest.mark.parametrize("jobs", [1, 2])
def test_required_skip_fails_naming_the_missing_evidence(probes, tmp_path, jobs):
    names = ("gate.probe_absent", "gate.probe_self_skip")
    loose = criteria_from_dict({"version": 1, "checks": dict.fromkeys(names, {})})
    strict = criteria_from_dict({"version": 1, "checks": dict.fromkeys(names,
                                                                       {"required": True})})
    ctx = RunContext(tmp_path)
    assert [r.status for r in run_checks(ctx, loose, jobs=jobs)] == ["skip", "skip"]
    absent, self_skip = run_checks(ctx, strict, jobs=jobs)
    assert absent.status == self_skip.status == "fail"
    assert absent.message == "missing evidence: no widget in RUN: run `profy widget RUN`"
    assert self_skip.message == "missing evidence: no reference to compare: recorded now"
    assert absent.details["required"] and absent.observed == "missing evidence"


def test_skip_test_gets_the_criterias_parameters(probes, tmp_path):
    spec = REGISTRY["gate.probe_params"]
    ctx = SimpleNamespace(run_dir=tmp_path)
    assert skip_reason(spec, ctx, {"where": ""}) == "no folder ''"
    assert skip_reason(spec, ctx, {"where": str(tmp_path)}) is None
    crit = criteria_from_dict({"version": 1, "checks": {
        "gate.probe_params": {"where": str(tmp_path), "required": True}}})
    assert [r.status for r in run_checks(RunContext(tmp_path), crit)] == ["pass"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.sampled_from(["error", "warning"])),
                max_size=6), st.booleans())
def test_require_never_lets_a_skip_through(flags, required):
    results = [CheckResult(f"gate.x{i}", "gate", passed, severity, skipped=skipped,
                           message="skipped: why" if skipped else "")
               for i, (passed, skipped, severity) in enumerate(flags)]
    out = require(results, required=required)
    assert len(out) == len(results)
    for before, after in zip(results, out, strict=True):
        if required and before.skipped:
            assert not after.skipped and not after.passed and after.message == \
                "missing evidence: why" and after.severity == before.severity
        else:
            assert after == before


# --- skipped checks under the verdict line --------------------------------------------------
def _results():
    return [CheckResult("data.ok", "data", True, message="fine"),
            CheckResult("onnx.parity", "onnx", True, skipped=True,
                        message="skipped: no onnx/ in RUN: run `profy export RUN`"),
            CheckResult("baseline.f1_delta", "baseline", True, skipped=True,
                        message="skipped: no baseline given")]


def test_console_and_markdown_list_skipped_checks_under_the_verdict(tmp_path):
    buf = io.StringIO()
    emit(_results(), title="t", report_dir=tmp_path / "r", console=Console(file=buf, width=200))
    lines = buf.getvalue().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("verdict: PASS"))
    assert lines[at + 1].startswith("not judged (2 skipped")
    assert "onnx.parity: no onnx/ in RUN: run `profy export RUN`" in lines[at + 2]
    assert "baseline.f1_delta: no baseline given" in lines[at + 3]
    md = markdown_summary(_results(), title="t", verdict="pass")
    head, _, rest = md.partition("<details>")  # listed before anything folded away
    assert "**Not judged** (2 skipped" in head
    assert "- `onnx.parity`: no onnx/ in RUN: run `profy export RUN`" in head


def test_html_report_lists_skipped_checks_in_the_verdict_section(tmp_path):
    from profy.visualization.report import _verdict_html

    emit(_results(), title="t", report_dir=tmp_path / "r", console=False)
    verdict = json.loads((tmp_path / "r" / "verdict.json").read_text())
    html = _verdict_html(verdict, tmp_path / "r" / "verdict.json", tmp_path, "")
    banner_end = html.index("</div>")
    listed = html.index("Not judged")
    assert banner_end < listed < html.index("<table>")
    assert "<code>onnx.parity</code>" in html[listed:html.index("<table>")]


# --- ci on a real run without onnx/ ---------------------------------------------------------
def _verdict(report: Path) -> dict:
    return {c["name"]: c for c in json.loads((report / "verdict.json").read_text())["checks"]}


@pytest.mark.slow
def test_ci_without_onnx_is_red_naming_the_missing_evidence_and_dev_skips(tiny_run_ro, tmp_path,
                                                                          capsys):
    crit = tmp_path / "release.yaml"  # the default's required evidence on a few cheap checks
    release = load_criteria()
    crit.write_text(yaml.safe_dump({"version": 1, "checks": {
        **{n: {"required": True} for n in (*ONNX[:3], "replay.smoke")},
        "data.splits": {}}}))
    rep = tmp_path / "rel"
    assert main(["ci", str(tiny_run_ro), "--criteria", str(crit), "--report-dir", str(rep)]) == 1
    out = capsys.readouterr().out
    checks = _verdict(rep)
    for name in (*ONNX[:3], "replay.smoke"):
        assert name in release.required
        assert checks[name]["status"] == "fail", name
        assert checks[name]["message"].startswith("missing evidence: no onnx/")
        assert f"profy export {tiny_run_ro}" in checks[name]["message"]
    assert checks["data.splits"]["status"] == "pass" and "verdict: FAIL" in out

    rep = tmp_path / "dev"  # the dev profile: the same run, evidence absent -> skips
    main(["ci", str(tiny_run_ro), "--criteria", "dev", "--report-dir", str(rep), "--quiet"])
    dev = _verdict(rep)
    assert all(dev[n]["status"] == "skip" for n in (*ONNX, "replay.smoke", "replay.benchmark",
                                                    "replay.robustness"))
    assert not [c for c in dev.values() if c["message"].startswith("missing evidence")]
    # green-able: a dev-based file without the gates a 2-epoch tiny run cannot meet
    red = sorted(n for n, c in dev.items() if c["status"] == "fail")
    mine = tmp_path / "inner.yaml"
    mine.write_text(yaml.safe_dump({"version": 1, "extends": "dev",
                                    "checks": dict.fromkeys(red, False)}))
    rep = tmp_path / "green"
    assert main(["ci", str(tiny_run_ro), "--criteria", str(mine), "--report-dir", str(rep)]) == 0
    out = capsys.readouterr().out
    assert "verdict: PASS" in out and "not judged" in out and "onnx.parity: no onnx/" in out
    assert "profy export" in (rep / "summary.md").read_text()
