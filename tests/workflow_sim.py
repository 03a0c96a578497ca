"""Run a GitHub Actions workflow's jobs and ``run:`` steps on this machine, in order (tests).

What a hosted runner would do, narrowed to what can run offline:

- jobs in ``needs`` order; a job whose need failed is skipped. Every job of every workflow
  shares ONE workspace folder, which stands for the artifact store too: an
  ``actions/upload-artifact`` step records its name (its paths must exist when
  ``if-no-files-found: error``), and ``actions/download-artifact`` or ``gh run download
  --name N`` succeed only for a name uploaded earlier. Other ``uses:`` steps do nothing
  (their outputs are empty), except ``docker/build-push-action``, which registers its
  ``tags`` as an image whose entry point is the ``ENTRYPOINT`` of its ``target`` stage.
- each step's ``if:`` is evaluated (``success() &&`` implied, as on GitHub); ``${{ }}``
  expressions in ``if``, ``env`` and ``run`` are evaluated with the contexts ``github``,
  ``inputs`` (the ``workflow_dispatch`` defaults, or test values), ``env``, ``steps``,
  ``needs`` and ``hashFiles()``. Unlike GitHub, an undeclared input, an unknown step id or
  job name, and an unknown context or function are errors, so a misspelled one fails.
- a ``run:`` script runs as ``bash --noprofile --norc -eo pipefail`` with
  ``GITHUB_OUTPUT``/``GITHUB_STEP_SUMMARY`` files; ``profy`` and ``guardrails`` are the
  venv's console scripts; stand-ins replace what needs the network or a daemon:
  ``python -m pip install`` (the venv already holds the extras), ``gh`` (``run list``
  prints a run id, ``run download`` checks the artifact name), and ``docker``/``podman``
  ``run [opts] IMAGE ARGS`` (:mod:`workflow_container`): the image's entry point on the
  host, every argument under a ``-v`` mount's container path rewritten to its host path,
  a clean environment (``-e`` only), torch made unimportable for a ``guardrails`` image
  (the slim image has none), and a read-only mount (``:ro``) that changed fails the step.

Expressions are evaluated by :mod:`workflow_expr`.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from workflow_expr import ExpressionError, Obj, equal, evaluate, render, substitute, truthy

__all__ = ["Simulator", "StepResult", "WorkflowRun"]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CONTAINER = Path(__file__).with_name("workflow_container.py")


# ---------------------------------------------------------------- results

@dataclass
class StepResult:
    """One step as the simulation saw it."""

    workflow: str
    job: str
    name: str
    id: str | None
    kind: str  # "run", "uses" or "skipped"
    returncode: int = 0
    outputs: dict[str, str] = field(default_factory=dict)
    log: str = ""
    seconds: float = 0.0
    script: str = ""

    @property
    def failed(self) -> bool:
        return self.returncode != 0


@dataclass
class WorkflowRun:
    """Every step of one workflow, in the order they ran (skipped ones included)."""

    name: str
    steps: list[StepResult] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name)

    @property
    def failed_steps(self) -> list[StepResult]:
        return [s for s in self.steps if s.failed]

    def describe(self) -> str:
        """A readable account of every step (for assertion messages)."""
        lines = [f"workflow {self.name}:"]
        for s in self.steps:
            lines.append(f"  [{s.job}] {s.name}: {s.kind} rc={s.returncode} ({s.seconds:.0f} s)")
            if s.failed:
                lines.append("    " + s.log[-3000:].replace("\n", "\n    "))
        return "\n".join(lines)


# ---------------------------------------------------------------- the runner

def _step_name(step: dict[str, Any]) -> str:
    return str(step.get("name") or step.get("uses") or step.get("run", "").split("\n")[0])


def _stage_entrypoint(dockerfile: Path, target: str) -> str:
    stages = re.split(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", dockerfile.read_text(), flags=re.M)
    body = dict(zip(stages[1::2], stages[2::2], strict=True)).get(target)
    if body is None:
        raise ExpressionError(f"{dockerfile} has no stage {target!r}")
    m = re.search(r"^ENTRYPOINT\s+(\[.*\])\s*$", body, re.M)
    if not m:
        raise ExpressionError(f"stage {target!r} of {dockerfile} has no exec-form ENTRYPOINT")
    return json.loads(m.group(1))[0]


class Simulator:
    """Runs workflow files in one workspace (see the module docstring).

    Args:
        workspace: the runner's workspace folder (``$GITHUB_WORKSPACE``, ``$PWD``).
        inputs: per workflow file name, ``workflow_dispatch`` inputs over the defaults.
        step_timeout_s: cap on one step (the job's ``timeout-minutes`` also applies).
    """

    def __init__(self, workspace: Path, *, inputs: dict[str, dict[str, str]] | None = None,
                 step_timeout_s: float = 1800) -> None:
        self.workspace = Path(workspace).resolve()
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.inputs = inputs or {}
        self.step_timeout_s = step_timeout_s
        self.artifacts: set[str] = set()
        self.shims = Path(tempfile.mkdtemp(prefix="workflow-shims-"))
        self._write_shims()

    # ------------------------------------------------------------ stand-ins
    def _write_shims(self) -> None:
        me, py = CONTAINER.resolve(), Path(sys.executable)
        shims = {
            "python": f'if [ "${{1:-}} ${{2:-}} ${{3:-}}" = "-m pip install" ]; then\n'
                      f'  echo "pip install skipped: the test venv holds the extras"; exit 0\nfi\n'
                      f'exec "{py}" "$@"\n',
            "gh": 'case "${1:-} ${2:-}" in\n'
                  '  "run list") echo 1 ;;\n'
                  '  "run download")\n'
                  '    name=$(printf "%s\\n" "$@" | grep -A1 -x -- --name | tail -1)\n'
                  '    case ",$WORKFLOW_ARTIFACTS," in *",$name,"*) exit 0 ;; esac\n'
                  '    echo "gh stand-in: no artifact $name was uploaded" >&2; exit 1 ;;\n'
                  '  *) echo "gh stand-in: gh $* is not simulated" >&2; exit 3 ;;\n'
                  'esac\n',
            "docker": f'exec "{py}" "{me}" docker "$@"\n',
            "podman": f'exec "{py}" "{me}" podman "$@"\n',
        }
        for name, body in shims.items():
            path = self.shims / name
            path.write_text("#!/usr/bin/env bash\nset -u\n" + body)
            path.chmod(0o755)
        no_torch = self.shims / "no_torch"
        for mod in ("torch", "torchaudio"):
            (no_torch / mod).mkdir(parents=True, exist_ok=True)
            (no_torch / mod / "__init__.py").write_text(
                f"raise ImportError('{mod} is not installed in the guardrails image')\n")

    # ------------------------------------------------------------ expressions
    def _functions(self, job_failed: list[bool]) -> dict[str, Any]:
        def hash_files(*patterns: str) -> str:
            files = sorted({Path(p) for pat in patterns
                            for p in glob.glob(str(self.workspace / pat), recursive=True)
                            if Path(p).is_file()})
            if not files:
                return ""
            digest = hashlib.sha256()
            for f in files:
                digest.update(hashlib.sha256(f.read_bytes()).digest())
            return digest.hexdigest()

        return {"always": lambda: True, "success": lambda: not job_failed[0],
                "failure": lambda: job_failed[0], "cancelled": lambda: False,
                "hashFiles": hash_files,
                "contains": lambda a, b: (render(b).lower() in render(a).lower())
                if not isinstance(a, list) else any(equal(x, b) for x in a),
                "startsWith": lambda a, b: render(a).lower().startswith(render(b).lower()),
                "endsWith": lambda a, b: render(a).lower().endswith(render(b).lower()),
                "format": lambda f, *a: re.sub(r"\{(\d+)\}", lambda m: render(a[int(m[1])]),
                                               render(f))}

    @staticmethod
    def _condition(cond: Any) -> str:
        text = str(cond).strip()
        m = re.fullmatch(r"\$\{\{(.*)\}\}", text, flags=re.S)
        text = m.group(1).strip() if m else text
        if not re.search(r"\b(success|failure|always|cancelled)\s*\(", text):
            text = f"success() && ({text})"
        return text

    # ------------------------------------------------------------ running
    def run_workflow(self, path: Path) -> WorkflowRun:
        """Run every job of ``path`` in ``needs`` order; the steps' results, in order."""
        spec = yaml.safe_load(Path(path).read_text())
        on = spec.get("on", spec.get(True)) or {}
        declared = ((on.get("workflow_dispatch") or {}) if isinstance(on, dict) else {}
                    ).get("inputs") or {}
        inputs = {k: str((v or {}).get("default", "")) for k, v in declared.items()}
        extra = self.inputs.get(Path(path).name, {})
        unknown = set(extra) - set(inputs)
        if unknown:
            raise ExpressionError(f"{path}: no workflow_dispatch input(s) {sorted(unknown)}")
        inputs |= extra
        run = WorkflowRun(str(spec.get("name") or Path(path).name))
        github = Obj({"token": "test-token", "ref": "refs/heads/main", "ref_name": "main",
                      "run_id": "1", "run_number": "1", "repository": "test/profy",
                      "event_name": "workflow_dispatch", "workspace": str(self.workspace),
                      "sha": "0" * 40, "server_url": "https://github.invalid"},
                     strict=True, what="github")
        base = {"github": github, "inputs": Obj(inputs, strict=True, what="inputs"),
                "vars": Obj(strict=True, what="vars"), "secrets": Obj(strict=True, what="secrets")}
        wf_env = {k: substitute(v, {**base, "env": Obj()}) for k, v in
                  (spec.get("env") or {}).items()}
        jobs = spec["jobs"]
        for name in self._job_order(jobs):
            run.jobs[name] = self._run_job(run, name, jobs[name], base, wf_env)
        return run

    @staticmethod
    def _job_order(jobs: dict[str, Any]) -> list[str]:
        order: list[str] = []

        def visit(name: str, seen: tuple[str, ...] = ()) -> None:
            if name in order:
                return
            if name in seen or name not in jobs:
                raise ExpressionError(f"job {name!r}: unknown or cyclic needs")
            needs = jobs[name].get("needs") or []
            for need in [needs] if isinstance(needs, str) else needs:
                visit(need, (*seen, name))
            order.append(name)

        for name in jobs:
            visit(name)
        return order

    def _run_job(self, run: WorkflowRun, name: str, job: dict[str, Any], base: dict[str, Any],
                 wf_env: dict[str, str]) -> dict[str, Any]:
        needs_list = job.get("needs") or []
        needs_list = [needs_list] if isinstance(needs_list, str) else needs_list
        needs = Obj({n: Obj({"outputs": Obj(run.jobs[n]["outputs"]),
                             "result": run.jobs[n]["result"]}) for n in needs_list},
                    strict=True, what="needs")
        if any(run.jobs[n]["result"] != "success" for n in needs_list):
            for step in job.get("steps", []):
                run.steps.append(StepResult(run.name, name, _step_name(step), step.get("id"),
                                            "skipped"))
            return {"result": "skipped", "outputs": {}}
        ids = {s["id"] for s in job.get("steps", []) if "id" in s}
        steps = Obj({i: Obj({"outputs": Obj(), "outcome": None, "conclusion": None})
                     for i in ids}, strict=True, what="steps")
        failed = [False]
        funcs = self._functions(failed)
        ctx = {**base, "needs": needs, "steps": steps,
               "job": Obj({"status": "success"}), "runner": Obj({"os": "Linux",
                                                                  "temp": str(self.shims)})}
        env = dict(wf_env)
        env |= {k: substitute(v, {**ctx, "env": Obj(env)}, funcs)
                for k, v in (job.get("env") or {}).items()}
        images: dict[str, str] = {}
        timeout = min(self.step_timeout_s, 60 * float(job.get("timeout-minutes", 360)))
        started = time.perf_counter()
        for step in job.get("steps", []):
            result = self._run_step(run.name, name, step, ctx, env, funcs, images, failed,
                                    timeout - (time.perf_counter() - started))
            run.steps.append(result)
            if result.id:
                outcome = "skipped" if result.kind == "skipped" else (
                    "failure" if result.failed else "success")
                steps[result.id] = Obj({"outputs": Obj(result.outputs), "outcome": outcome,
                                        "conclusion": outcome})
            if result.failed and not step.get("continue-on-error"):
                failed[0] = True
        outputs = {k: substitute(v, {**ctx, "env": Obj(env)}, funcs)
                   for k, v in (job.get("outputs") or {}).items()}
        return {"result": "failure" if failed[0] else "success", "outputs": outputs}

    def _run_step(self, wf: str, job: str, step: dict[str, Any], ctx: dict[str, Any],
                  env: dict[str, str], funcs: dict[str, Any], images: dict[str, str],
                  failed: list[bool], time_left: float) -> StepResult:
        name = _step_name(step)
        cond = self._condition(step["if"]) if "if" in step else "success()"
        if not truthy(evaluate(cond, {**ctx, "env": Obj(env)}, funcs)):
            return StepResult(wf, job, name, step.get("id"), "skipped")
        step_env = dict(env)
        step_env |= {k: substitute(v, {**ctx, "env": Obj(step_env)}, funcs)
                     for k, v in (step.get("env") or {}).items()}
        full = {**ctx, "env": Obj(step_env)}
        if "uses" in step:
            return self._uses(wf, job, name, step, full, funcs, images)
        script = substitute(step["run"], full, funcs)
        return self._bash(wf, job, name, step.get("id"), script, step_env, images,
                          max(1.0, time_left))

    def _uses(self, wf: str, job: str, name: str, step: dict[str, Any], ctx: dict[str, Any],
              funcs: dict[str, Any], images: dict[str, str]) -> StepResult:
        action = str(step["uses"]).split("@")[0]
        args = {k: substitute(v, ctx, funcs) for k, v in (step.get("with") or {}).items()}
        result = StepResult(wf, job, name, step.get("id"), "uses")
        if action == "docker/build-push-action":
            dockerfile = ROOT / args.get("context", ".") / args.get("file", "Dockerfile")
            entry = _stage_entrypoint(dockerfile, args["target"])
            for tag in re.split(r"[,\s]+", args.get("tags", "").strip()):
                images[tag] = entry
        elif action == "actions/upload-artifact":
            paths = [p for p in args.get("path", "").split("\n") if p.strip()]
            missing = [p for p in paths if not glob.glob(str(self.workspace / p.strip()))]
            if missing and args.get("if-no-files-found", "warn") == "error":
                result.returncode, result.log = 1, f"no files found for {missing}"
            elif len(missing) < len(paths):
                self.artifacts.add(args["name"])
        elif action == "actions/download-artifact" and args.get("name") not in self.artifacts:
            result.returncode = 1
            result.log = f"artifact {args.get('name')!r} was not uploaded by an earlier job"
        return result

    def _bash(self, wf: str, job: str, name: str, step_id: str | None, script: str,
              step_env: dict[str, str], images: dict[str, str], timeout: float) -> StepResult:
        tmp = Path(tempfile.mkdtemp(prefix="step-", dir=self.shims))
        out_file, summary = tmp / "output", tmp / "summary"
        out_file.touch()
        summary.touch()
        (tmp / "script.sh").write_text(script)
        env = {"PATH": f"{self.shims}:{BIN}:/usr/local/bin:/usr/bin:/bin",
               "HOME": os.environ.get("HOME", str(tmp)), "LANG": "C.UTF-8", "CI": "true",
               "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(self.workspace),
               "GITHUB_REPOSITORY": "test/profy", "GITHUB_OUTPUT": str(out_file),
               "GITHUB_STEP_SUMMARY": str(summary), "RUNNER_TEMP": str(tmp),
               "WORKFLOW_IMAGES": json.dumps(images),
               "WORKFLOW_ARTIFACTS": ",".join(sorted(self.artifacts)),
               "WORKFLOW_NO_TORCH": str(self.shims / "no_torch"), **step_env}
        started = time.perf_counter()
        try:
            proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail",
                                   str(tmp / "script.sh")], cwd=self.workspace, env=env,
                                  capture_output=True, text=True, timeout=timeout)
            code, log = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            code, log = 124, f"step timed out after {timeout:.0f} s\n{exc.stdout or ''}"
        return StepResult(wf, job, name, step_id, "run", code, _outputs(out_file), log,
                          time.perf_counter() - started, script)


def _outputs(path: Path) -> dict[str, str]:
    """``key=value`` lines and ``key<<DELIM`` blocks of a ``$GITHUB_OUTPUT`` file."""
    out: dict[str, str] = {}
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delim = line.split("<<", 1)
            end = lines.index(delim, i + 1)
            out[key] = "\n".join(lines[i + 1:end])
            i = end + 1
            continue
        if "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
        i += 1
    return out
