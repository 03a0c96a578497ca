"""The workflow simulator itself (tests/workflow_sim.py): expressions, stand-ins, order.

Fast: no training. The end-to-end runs of the real workflows are in test_workflows.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_expr import ExpressionError, Obj, evaluate, substitute
from workflow_sim import Simulator

SIM = Path(__file__).with_name("workflow_container.py")


def _ctx(**inputs):
    return {"inputs": Obj(inputs, strict=True, what="inputs"), "env": Obj({"A": "x"}),
            "steps": Obj({"s": Obj({"outputs": Obj({"k": "v"})})}, strict=True, what="steps")}


@pytest.mark.parametrize("expr,want", [
    ("inputs.p || 'mm-audiofix'", "mm-audiofix"),
    ("inputs.q || 'mm-audiofix'", "given"),
    ("inputs.p != ''", False),
    ("inputs.p == ''", True),
    ("steps.s.outputs.k == 'V'", True),          # strings compare case-insensitively
    ("steps.s.outputs.missing == ''", True),     # a missing output is null, null == ''
    ("env.A && !env.B", True),
    ("(env.A == 'y') || (1 < 2)", True),
])
def test_expressions(expr, want):
    assert evaluate(expr, _ctx(p="", q="given")) == want


@pytest.mark.parametrize("expr,unknown", [
    ("inputs.profle", "inputs.profle"), ("steps.nope.outputs.k", "steps.nope"),
    ("github.token", "context 'github'"), ("hashfiles('x')", "hashfiles"),
])
def test_misspelled_names_are_errors(expr, unknown):
    with pytest.raises(ExpressionError, match=unknown.replace("(", r"\(")):
        evaluate(expr, _ctx(profile=""))


def test_substitute_renders_like_github():
    assert substitute("a=${{ inputs.p }} b=${{ env.B }} c=${{ 1 == 1 }}", _ctx(p="1")) \
        == "a=1 b= c=true"


def _workflow(tmp_path: Path, steps: list[dict], name: str = "wf.yml", **extra) -> Path:
    spec = {"name": "t", "on": {"workflow_dispatch": {"inputs": {"who": {"default": "w"}}}},
            "jobs": {"one": {"runs-on": "ubuntu-24.04", "timeout-minutes": 5,
                             "outputs": {"val": "${{ steps.first.outputs.val }}"},
                             "steps": steps},
                     "two": {"needs": "one", "runs-on": "ubuntu-24.04", "timeout-minutes": 5,
                             "steps": [{"name": "use", "env": {"V": "${{ needs.one.outputs.val }}"},
                                        "run": 'echo "$V" > got.txt'}]}}, **extra}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_steps_run_in_order_with_outputs_conditions_and_needs(tmp_path):
    wf = _workflow(tmp_path, [
        {"name": "first", "id": "first",
         "run": 'echo "val=${{ inputs.who }}-1" >> "$GITHUB_OUTPUT"'},
        {"name": "skipped", "if": "${{ inputs.who == '' }}", "run": "exit 1"},
        {"name": "fails", "run": "false"},
        {"name": "after failure", "run": "touch never"},
        {"name": "always", "if": "${{ always() }}", "run": "touch always"},
    ])
    sim = Simulator(tmp_path / "ws")
    run = sim.run_workflow(wf)
    kinds = [(s.name, s.kind, s.returncode) for s in run.steps]
    assert kinds[:5] == [("first", "run", 0), ("skipped", "skipped", 0), ("fails", "run", 1),
                         ("after failure", "skipped", 0), ("always", "run", 0)]
    assert run.jobs["one"] == {"result": "failure", "outputs": {"val": "w-1"}}
    assert run.jobs["two"]["result"] == "skipped" and not (tmp_path / "ws/never").exists()


def test_job_outputs_reach_the_next_job(tmp_path):
    wf = _workflow(tmp_path, [{"name": "first", "id": "first",
                               "run": 'echo "val=${{ inputs.who }}" >> "$GITHUB_OUTPUT"'}])
    run = Simulator(tmp_path / "ws", inputs={"wf.yml": {"who": "me"}}).run_workflow(wf)
    assert run.jobs["two"]["result"] == "success", run.describe()
    assert (tmp_path / "ws" / "got.txt").read_text() == "me\n"
    with pytest.raises(ExpressionError, match="whom"):
        Simulator(tmp_path / "ws2", inputs={"wf.yml": {"whom": "x"}}).run_workflow(wf)


def _container(tmp_path: Path, *args: str, images: dict | None = None
               ) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin",
           "WORKFLOW_IMAGES": json.dumps(images if images is not None else
                                         {"img:t": str(tmp_path / "echo-args")})}
    return subprocess.run([sys.executable, str(SIM), "docker", *args], capture_output=True,
                          text=True, env=env, timeout=60)


def test_container_runs_the_entrypoint_with_mounts_mapped(tmp_path):
    (tmp_path / "echo-args").write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n'
                                        'echo "$HOME" > "$2/home"\n')
    (tmp_path / "echo-args").chmod(0o755)
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    (tmp_path / "rep").mkdir()
    proc = _container(tmp_path, "run", "--rm", "--network", "none", "--read-only",
                      "--tmpfs", "/tmp", "-v", f"{tmp_path}/runs:/runs",
                      "-v", f"{tmp_path}/runs/r1:/runs/r1:ro", "-v", f"{tmp_path}/rep:/reports",
                      "img:t", "ci", "/reports", "/runs/r1/x", "--junit=/reports/j.xml", "/other")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ci", f"{tmp_path}/rep", f"{tmp_path}/runs/r1/x",
                                   f"--junit={tmp_path}/rep/j.xml", "/other"]


def test_container_refuses_what_a_real_engine_would(tmp_path):
    (tmp_path / "echo-args").write_text('#!/usr/bin/env bash\ntouch "$1/written"\n')
    (tmp_path / "echo-args").chmod(0o755)
    (tmp_path / "ro").mkdir()
    unbuilt = _container(tmp_path, "run", "--rm", "other:t", "ci")
    assert unbuilt.returncode == 125 and "Unable to find image 'other:t'" in unbuilt.stderr
    bad_flag = _container(tmp_path, "run", "--rmm", "img:t", "ci")
    assert bad_flag.returncode == 125 and "--rmm" in bad_flag.stderr
    wrote = _container(tmp_path, "run", "-v", f"{tmp_path}/ro:/ro:ro", "img:t", "/ro")
    assert wrote.returncode == 126 and "read-only mount" in wrote.stderr
