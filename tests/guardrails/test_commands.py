"""The guardrails command package: one verdict skeleton, typed checks, a declared context.

The commands' behaviour on real runs is held by test_guardrails_cli.py and
test_no_tty.py; here: the structure they share (every verdict command is the skeleton
plus hooks, with the same output options), the skeleton's own steps on a fake command,
the target rules moved beside the context, and that checks read only what
``RunContext`` declares.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
from pathlib import Path

import pyarrow as pa
import pytest

from guardrails import RunContext
from guardrails._registry import load_all_checks
from guardrails._result import CheckResult
from guardrails._targets import onnx_target, run_folder
from guardrails.cli import COMMAND_MODULES, build_parser
from guardrails.commands._verdict import Outcome, Target, VerdictCommand, run_verdict
from guardrails.errors import BadInputError
from guardrails.replay._history import series_change_points

VERDICT_COMMANDS = ("ci", "data", "audit", "onnx", "replay", "gate")
SHARED = ("--criteria", "--report-dir", "--junit", "--markdown", "--quiet")
ROOT = Path(__file__).resolve().parents[2]


def _options(command: str) -> set[str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {s for a in sub.choices[command]._actions for s in a.option_strings}


def test_every_command_lives_in_the_commands_package():
    assert all(m.startswith("guardrails.commands.") for m in COMMAND_MODULES)
    assert not list((ROOT / "guardrails").glob("_cmd_*.py"))
    assert {m.rsplit(".", 1)[1] for m in COMMAND_MODULES} >= set(VERDICT_COMMANDS)


@pytest.mark.parametrize("name", VERDICT_COMMANDS)
def test_verdict_commands_are_the_skeleton_with_shared_options(name):
    module = importlib.import_module(f"guardrails.commands.{name}")
    assert isinstance(module.COMMAND, VerdictCommand) and module.COMMAND.name == name
    assert module.add_parser == module.COMMAND.add_parser
    assert set(SHARED) <= _options(name)
    # the module is hooks only: the skeleton's steps are not repeated in it
    source = inspect.getsource(module)
    for step in ("load_criteria(", "report_dir_for(", "emit(", "perf_counter"):
        assert step not in source, f"{name} repeats the skeleton step {step}"


def test_gate_shares_the_output_options_without_engine_or_jobs():
    assert not {"--engine", "--jobs"} & _options("gate")
    assert {"--engine", "--jobs", "--data-docs"} <= _options("ci")


def _fake(tmp_path: Path, results: list[CheckResult], seen: list) -> VerdictCommand:
    def target(args):
        return Target(run_folder(Path(args.run)), Path(args.run).resolve())

    def after(job, out, console):
        seen.append((job.report_dir, [r.name for r in out], console))

    return VerdictCommand("fake", help="", selects="fake", target_arguments=lambda p: None,
                          target=target, run=lambda job: Outcome(results, "fake", {"k": 1}),
                          after=after)


def _args(run: Path, report: Path, **kw) -> argparse.Namespace:
    base = {"run": str(run), "criteria": None, "report_dir": str(report), "junit": None,
            "markdown": None, "quiet": True}
    return argparse.Namespace(**{**base, **kw})


def test_the_skeleton_writes_the_verdict_and_calls_the_after_hook(tmp_path):
    seen: list = []
    failing = [CheckResult("gate.x", "gate", False, message="no")]
    code = run_verdict(_fake(tmp_path, failing, seen), _args(tmp_path, tmp_path / "rep"))
    assert code == 1
    verdict = json.loads((tmp_path / "rep" / "verdict.json").read_text())
    assert verdict["extra"] == {"k": 1} and verdict["run_dir"] == str(tmp_path.resolve())
    assert [c["name"] for c in verdict["checks"]] == ["gate.x"]
    assert seen == [(tmp_path / "rep", ["gate.x"], None)]  # --quiet: no console


def test_the_skeleton_refuses_empty_selections_and_missing_targets(tmp_path):
    with pytest.raises(BadInputError, match="selects no fake checks"):
        run_verdict(_fake(tmp_path, [], []), _args(tmp_path, tmp_path / "rep"))
    with pytest.raises(BadInputError, match="not a run folder"):
        run_verdict(_fake(tmp_path, [], []), _args(tmp_path / "nope", tmp_path / "rep"))


def test_onnx_targets(tmp_path):
    with pytest.raises(BadInputError, match="no such ONNX model"):
        onnx_target(tmp_path / "m.onnx")
    with pytest.raises(BadInputError, match="run has no ONNX models"):
        onnx_target(tmp_path)
    stray = tmp_path / "m.onnx"
    stray.write_bytes(b"")
    with pytest.raises(BadInputError, match="must sit in RUN/onnx/"):
        onnx_target(stray)
    (tmp_path / "onnx").mkdir()
    (tmp_path / "config.yaml").write_text("{}")
    model = tmp_path / "onnx" / "audio_fold0.onnx"
    model.write_bytes(b"")
    assert onnx_target(tmp_path) == (tmp_path, None)
    assert onnx_target(model) == (tmp_path.resolve(), [model.resolve()])


def test_every_registered_check_takes_a_typed_run_context():
    untyped = []
    for name, spec in sorted(load_all_checks().items()):
        first = next(iter(inspect.signature(spec.func).parameters.values()))
        if first.annotation not in ("RunContext", RunContext):
            untyped.append(f"{name}: {first.name}: {first.annotation!r}")
    assert not untyped, untyped


def test_the_context_declares_the_models_and_a_memo(tmp_path):
    ctx = RunContext(tmp_path, onnx_models=[str(tmp_path / "a.onnx")])
    assert ctx.onnx_models == [tmp_path / "a.onnx"] and ctx.memo == {}
    assert RunContext(tmp_path).onnx_models is None
    assert RunContext(tmp_path).memo is not RunContext(tmp_path).memo


def test_gates_keep_derived_frames_in_the_memo(tiny_run_ro, tmp_path):
    from guardrails.gates._evidence import held_out, recomputed_metric

    ctx = RunContext(tiny_run_ro, report_dir=tmp_path)
    frame = held_out(ctx)
    recomputed_metric(ctx, "audio", "per_class.pro.recall")
    assert ctx.memo["gates"]["held_out"] is frame is held_out(ctx)
    assert ("audio", "per_class.pro.recall") in ctx.memo["gates"]["recomputed"]
    assert not [k for k in vars(ctx) if k.startswith("_gates")]


def test_change_points_per_series():
    import datetime as dt

    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = [{"timestamp": t0 + dt.timedelta(hours=i), "kind": "smoke", "tag": "mm",
             "macro_f1": 0.8 if i < 4 else 0.7} for i in range(8)]
    rows += [{"timestamp": t0 + dt.timedelta(hours=i), "kind": "benchmark", "tag": "mm",
              "macro_f1": 0.8} for i in range(3)]
    points = series_change_points(pa.Table.from_pylist(rows[::-1]), metric="macro_f1",
                                  window=3, k=3.0, min_sigma=0.01)
    smoke = points[("smoke", "mm")]
    assert smoke.flagged and smoke.index == 4 and smoke.before == pytest.approx(0.8)
    assert points[("benchmark", "mm")] is None  # fewer than 2 x window replays
