"""Both CI workflows RUN, in order, on a tiny corpus: every step that calls profy or guardrails.

``.github/workflows/release-gate.yml`` (train, tag, export, then ``guardrails ci`` in the
guardrails image) and then ``smoke-replay.yml`` (the nightly smoke replay of the tags the
release gate left) go through :mod:`workflow_sim`: the jobs and their ``run:`` steps in
file order, ``${{ }}`` expressions evaluated with the ``workflow_dispatch`` defaults, the
container steps replaced by the same CLI on the host with the mounts mapped (torch
unimportable for the guardrails image, read-only mounts enforced). The static checks in
test_containers.py only parse command lines; these tests show the commands work in the
order written. A reordered or misspelled step fails here
(``test_a_reordered_or_misspelled_copy_fails`` proves it on broken copies).

The tiny model may well miss the plan's F1 targets: a red verdict (exit 1) is the gate
doing its job, not a broken workflow. What must hold is that every command ran, the gate
could read its input (not exit 2), and the evidence the workflow exists to produce (ONNX
models, tags for the replays) was there: no ``onnx.*`` or ``replay.*`` check skipped or
failed for missing evidence (except :data:`INHERENT_SKIPS`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from workflow_sim import Simulator, WorkflowRun

pytestmark = pytest.mark.slow  # trains, exports 6 models and runs the gate: minutes

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
ORDER = ("release-gate.yml", "smoke-replay.yml")  # the nightly replay needs the gate's run
CLI = re.compile(r"(^|[\s;&|(])(profy|guardrails)\s|profy-guardrails:\w+\s", re.M)
JUDGED = {"Fail on a red gate": ("Gate the run", "exit_code"),
          "Fail on a regression": ("Smoke replay", "exit_code")}


def _cli_steps(path: Path) -> list[str]:
    """Names of the ``run:`` steps of ``path`` that call profy or guardrails."""
    spec = yaml.safe_load(path.read_text())
    return [step["name"] for job in spec["jobs"].values() for step in job["steps"]
            if CLI.search(step.get("run", ""))]


# Skips no workflow can avoid: each release gate trains a NEW run, and a run's first
# benchmark replay records its reference instead of comparing (the verdict lists it as
# skipped). Only with this reason.
INHERENT_SKIPS = {"replay.benchmark.reference": "first benchmark of"}


def _evidence_problems(verdict: dict) -> list[str]:
    """onnx/replay checks of a verdict that were skipped, errored or lacked evidence."""
    bad = []
    for check in verdict["checks"]:
        if check["category"] not in ("onnx", "replay"):
            continue
        if check["status"] == "skip" and INHERENT_SKIPS.get(check["name"], "\0") \
                in check["message"]:
            continue
        missing = check["observed"] == "missing evidence" or "exception" in check["details"] \
            or check["message"].startswith("missing evidence")
        if check["status"] == "skip" or missing:
            bad.append(f"{check['name']}: {check['status']}: {check['message'][:300]}")
    return bad


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> dict[str, object]:
    """Both workflows, once, in one workspace; the gate's verdict kept before the smoke
    replay writes its own into the same reports/ folder."""
    ws = tmp_path_factory.mktemp("workflows") / "workspace"
    sim = Simulator(ws, step_timeout_s=1500)
    runs: dict[str, object] = {"workspace": ws}
    for name in ORDER:
        runs[name] = run = sim.run_workflow(WORKFLOWS / name)
        verdict = ws / "reports" / "verdict.json"
        runs[f"{name}:verdict"] = json.loads(verdict.read_text()) if verdict.is_file() else None
        assert isinstance(run, WorkflowRun)
    return runs


@pytest.mark.parametrize("workflow", ORDER)
def test_every_profy_and_guardrails_step_runs_in_order(ran, workflow):
    run = ran[workflow]
    ran_steps = [s.name for s in run.steps if s.kind == "run"]
    expected = _cli_steps(WORKFLOWS / workflow)
    assert expected, f"{workflow} calls neither profy nor guardrails: update the test"
    assert [s for s in ran_steps if s in expected] == expected, run.describe()
    for step in run.steps:
        if step.name in JUDGED:
            source, key = JUDGED[step.name]
            code = run.step(source).outputs.get(key)
            assert code in ("0", "1"), f"{source} could not judge (exit {code})\n" \
                + run.describe()
            assert step.returncode == int(code), run.describe()  # red iff the verdict is
        else:
            assert not step.failed, run.describe()
    verdict = ran[f"{workflow}:verdict"]
    assert verdict is not None, f"{workflow} wrote no reports/verdict.json\n{run.describe()}"
    assert not _evidence_problems(verdict), "\n".join(_evidence_problems(verdict))


def test_the_gate_gated_the_run_the_workflow_trained(ran):
    gate = ran["release-gate.yml"]
    run_name = gate.jobs["run"]["outputs"]["run_name"]
    assert run_name.startswith("experiment_")
    verdict = ran["release-gate.yml:verdict"]
    assert verdict["extra"]["command"] == "ci" and verdict["run_dir"].endswith(run_name)
    names = {c["name"] for c in verdict["checks"]}
    assert {"onnx.parity", "onnx.signature"} <= names
    assert any(n.startswith("replay.smoke") for n in names), sorted(names)
    tags = json.loads((ran["workspace"] / "runs" / "tags.json").read_text())["tags"]
    assert {"mm-audiofix", "sensor-v1"} <= set(tags)
    exported = {p.name for p in (ran["workspace"] / "runs" / run_name / "onnx").glob("*.onnx")}
    assert exported == {f"{m}_fold{k}.onnx" for m in ("multimodal", "sensor") for k in range(3)}
    smoke = ran["smoke-replay.yml:verdict"]
    assert any(c["name"].startswith("replay.smoke") for c in smoke["checks"])
    assert (ran["workspace"] / "history" / "smoke_history.parquet").is_file()


# ---------------------------------------------------------------- broken copies fail

def _swap_steps(spec: dict) -> None:
    """Locate the run folder before the step that trains it."""
    steps = spec["jobs"]["run"]["steps"]
    i = next(k for k, s in enumerate(steps) if s.get("name") == "Train on the synthetic corpus")
    j = next(k for k, s in enumerate(steps) if s.get("name") == "Locate the run folder")
    steps[i], steps[j] = steps[j], steps[i]


def _export_before_tag(spec: dict) -> None:
    """The pre-fix order inside the training step: `profy export --tag` before `profy tag`
    (one epoch, so the broken copy fails fast)."""
    step = next(s for s in spec["jobs"]["run"]["steps"]
                if s.get("name") == "Train on the synthetic corpus")
    lines = step["run"].splitlines()
    tags = [ln for ln in lines if ln.strip().startswith("profy tag ")]
    exports = [ln for ln in lines if ln.strip().startswith("profy export ")]
    assert tags and exports, "the training step changed: update the test"
    rest = [ln for ln in lines if ln not in tags and ln not in exports]
    step["run"] = "\n".join(rest + exports + tags).replace("profy train ",
                                                           "profy train --epochs 1 ")


def _misspelled(spec: dict) -> None:
    step = next(s for s in spec["jobs"]["run"]["steps"]
                if s.get("name") == "Train on the synthetic corpus")
    assert "profy synth " in step["run"]
    step["run"] = step["run"].replace("profy synth ", "profy synthe ")


@pytest.mark.parametrize("edit,failing_step", [
    (_swap_steps, "Locate the run folder"),
    (_export_before_tag, "Train on the synthetic corpus"),
    (_misspelled, "Train on the synthetic corpus"),
], ids=["steps-swapped", "export-before-tag", "misspelled-subcommand"])
def test_a_reordered_or_misspelled_copy_fails(tmp_path, edit, failing_step):
    spec = yaml.safe_load((WORKFLOWS / "release-gate.yml").read_text())
    edit(spec)
    broken = tmp_path / "release-gate.yml"
    broken.write_text(yaml.safe_dump(spec, sort_keys=False))
    run = Simulator(tmp_path / "workspace", step_timeout_s=900).run_workflow(broken)
    assert run.jobs["run"]["result"] == "failure", run.describe()
    assert [s.name for s in run.failed_steps] == [failing_step], run.describe()
    assert run.jobs["gate"]["result"] == "skipped"
    if edit is _export_before_tag:
        assert "no tag registry here to resolve tag 'mm-audiofix'" in \
            run.step(failing_step).log
