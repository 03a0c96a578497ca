"""The lane scheduler: a forked child's value/exception comes back; lanes keep the
criteria order and give the same results as one check after another."""

from __future__ import annotations

import os

import pytest

from guardrails import CheckResult, RunContext, criteria_from_dict, run_checks
from guardrails._lanes import ForkedCall
from guardrails._registry import REGISTRY, register
from guardrails.errors import ArtifactError, CriteriaError, GuardrailsError


def test_forked_call_returns_the_childs_value_computed_in_another_process():
    parent = os.getpid()
    assert ForkedCall(lambda: (os.getpid(), [1, 2.5, "x"]), name="t").result()[1] == [1, 2.5, "x"]
    assert ForkedCall(os.getpid, name="t").result() != parent


@pytest.mark.parametrize("exc", [ArtifactError("/runs/x/predictions.parquet", "truncated"),
                                 CriteriaError("unknown key 'foo'"), ValueError("bad")])
def test_forked_call_raises_the_childs_exception_with_its_type_and_message(exc):
    def boom():
        raise exc

    with pytest.raises(type(exc)) as info:
        ForkedCall(boom, name="t").result()
    assert str(info.value) == str(exc)
    if isinstance(exc, ArtifactError):
        assert info.value.path == exc.path  # rebuilt from its arguments, not its message


def test_forked_call_reports_a_child_that_dies_without_an_answer():
    with pytest.raises(GuardrailsError, match="died without a result.*exit code 7"):
        ForkedCall(lambda: os._exit(7), name="inference").result()


def test_forked_call_reports_a_result_that_is_not_json_instead_of_hanging():
    with pytest.raises(GuardrailsError, match="could not be sent back"):
        ForkedCall(lambda: (lambda: None), name="t").result()


def test_forked_call_cancel_stops_a_running_child():
    import time

    call = ForkedCall(lambda: time.sleep(60), name="t")
    started = time.perf_counter()
    call.cancel()
    assert time.perf_counter() - started < 10
    assert call._process.exitcode is not None and call._process.exitcode != 0


def test_register_refuses_an_unknown_lane():
    with pytest.raises(ValueError, match="lane 'gpu'"):
        register("gate.lane_probe", category="gate", lane="gpu")(lambda ctx: None)


@pytest.fixture
def probes():
    """Three checks, one per lane, each reporting the process it ran in."""
    names = {"tables": "gate.probe_tables", "inference": "onnx.probe_inference",
             "timed": "onnx.probe_timed"}
    for lane, name in names.items():
        category = name.split(".")[0]

        def probe(ctx, *, name=name, category=category):
            return CheckResult(name, category, True, observed=os.getpid())

        register(name, category=category, lane=lane)(probe)
    yield names
    for name in names.values():
        REGISTRY.pop(name, None)


def test_lanes_keep_criteria_order_and_run_inference_in_a_child(probes, tmp_path):
    order = [probes["timed"], probes["tables"], probes["inference"]]
    crit = criteria_from_dict({"version": 1, "checks": {n: {} for n in order}})
    ctx = RunContext(tmp_path)
    serial = run_checks(ctx, crit, jobs=1)
    lanes = run_checks(ctx, crit, jobs=2)
    assert [r.name for r in serial] == [r.name for r in lanes] == order
    pid = {r.name: r.observed for r in lanes}
    assert pid[probes["tables"]] == pid[probes["timed"]] == os.getpid()
    assert pid[probes["inference"]] != os.getpid()
    assert {r.observed for r in serial} == {os.getpid()}
