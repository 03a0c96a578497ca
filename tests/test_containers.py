"""Container and CI files: static checks that can fail, and drift against the real CLIs.

The same tools run in `make lint` (lint-containers); here each one is also fed a broken
copy, so a check that silently passes everything would be caught. All offline.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "containers" / "compose.yaml"
CRONJOB = ROOT / "containers" / "k8s" / "smoke-replay-cronjob.yaml"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():  # the dev extra declares them: a missing tool is a failure
        pytest.fail(f"{name} not installed next to {sys.executable}: pip install -e '.[dev]'")
    return str(path)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, cwd=ROOT)


def _hadolint(path: Path) -> subprocess.CompletedProcess:
    return _run(_tool("hadolint"), "--no-color", str(path))


def _schema(builtin: str, *paths: Path) -> subprocess.CompletedProcess:
    return _run(_tool("check-jsonschema"), "--builtin-schema", builtin, *map(str, paths))


def _kube(path: Path) -> subprocess.CompletedProcess:
    return _run(_tool("kubernetes-validate"), "--strict", "--quiet", str(path))


def _broken_copy(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text()
    assert old in text, f"{old!r} not in {source.name}: update the test"
    target = tmp_path / source.name
    target.write_text(text.replace(old, new, 1))
    return target


# ---------------------------------------------------------------- hadolint

def test_hadolint_passes_on_the_dockerfile():
    result = _hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("old,new,rule", [
    ('ENTRYPOINT ["guardrails"]', "ENTRYPOINT guardrails", "DL3025"),  # shell form eats exit codes
    ("USER 10001:10001", "USER profy", "DL3066"),
    ("apt-get install --yes --no-install-recommends", "apt-get install --yes", "DL3015"),
])
def test_hadolint_fails_on_a_broken_dockerfile(tmp_path, old, new, rule):
    result = _hadolint(_broken_copy(tmp_path, DOCKERFILE, old, new))
    assert result.returncode != 0
    assert rule in result.stdout


# ---------------------------------------------------------------- workflows, compose, k8s

def test_workflows_match_the_github_schema():
    assert {p.name for p in WORKFLOWS} >= {"release-gate.yml", "smoke-replay.yml"}
    for builtin in ("vendor.github-workflows", "custom.github-workflows-require-timeout"):
        result = _schema(builtin, *WORKFLOWS)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("old,new,builtin", [
    ("    runs-on: ubuntu-24.04\n", "", "vendor.github-workflows"),
    ("  pull_request:\n", "  pull_request: 5\n", "vendor.github-workflows"),
    ("    timeout-minutes: 30\n", "", "custom.github-workflows-require-timeout"),
])
def test_schema_check_fails_on_a_broken_workflow(tmp_path, old, new, builtin):
    broken = _broken_copy(tmp_path, ROOT / ".github/workflows/release-gate.yml", old, new)
    result = _schema(builtin, broken)
    assert result.returncode != 0, result.stdout


def test_compose_file_matches_the_compose_spec():
    result = _schema("vendor.compose-spec", COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_fails_on_a_broken_compose_file(tmp_path):
    broken = _broken_copy(tmp_path, COMPOSE, "    shm_size: 2gb", "    shm_sise: 2gb")
    result = _schema("vendor.compose-spec", broken)
    assert result.returncode != 0, result.stdout


def test_cronjob_manifest_is_valid_kubernetes():
    result = _kube(CRONJOB)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("old,new", [
    ("              args:\n", "              arguments:\n"),        # unknown field (strict)
    ("  concurrencyPolicy: Forbid", "  concurrencyPolicy: 3"),      # wrong type
])
def test_kubernetes_validate_fails_on_a_broken_manifest(tmp_path, old, new):
    result = _kube(_broken_copy(tmp_path, CRONJOB, old, new))
    assert result.returncode != 0, result.stdout


# ---------------------------------------------------------------- Dockerfile content

def _stages(text: str) -> dict[str, str]:
    parts = re.split(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_dockerfile_targets_are_non_root_exec_form_and_torch_free():
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11\.\d+-slim-bookworm$", text, re.M)
    stages = _stages(text)
    assert {"train", "guardrails", "guardrails-spark"} <= set(stages)
    for name, entry in [("train", "profy"), ("guardrails", "guardrails"),
                        ("guardrails-spark", "guardrails")]:
        body = stages[name]
        users = re.findall(r"^USER\s+(\S+)", body, re.M)
        assert users and users[-1] == "10001:10001", (name, users)
        assert f'ENTRYPOINT ["{entry}"]' in body, name
        assert "VOLUME" in body
    # the slim image installs the guardrails extra only; torch never reaches it
    assert '"guardrails"' in stages["build-guardrails"]
    assert "train" not in stages["build-guardrails"]
    for body in stages.values():  # no CA, pip config or credentials copied into a layer
        assert not re.search(r"^(COPY|ADD).*(\.crt|\.pem|pip\.conf|netrc)", body, re.M)


def test_dockerignore_keeps_the_context_small():
    lines = (ROOT / ".dockerignore").read_text().split()
    assert "**" in lines  # everything out, then the few inputs back in
    assert {"!pyproject.toml", "!profy/", "!guardrails/"} <= set(lines)


def test_constraints_hold_the_pyproject_torch_pins():
    pins = (ROOT / "containers" / "constraints.txt").read_text()
    project = (ROOT / "pyproject.toml").read_text()
    for name in ("torch", "torchaudio"):
        version = re.search(rf'"{name}==([^"]+)"', project).group(1)
        assert f"{name}=={version}\n" in pins


def test_image_test_script_parses():
    result = _run("bash", "-n", str(ROOT / "tests" / "containers" / "image_test.sh"))
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- drift against the CLIs

def _parses(prog: str, argv: list[str]) -> None:
    """argv must parse with the real parser (a job whose flags drifted fails here)."""
    if prog == "profy":
        from profy.cli import build_parser
    else:
        from guardrails.cli import build_parser
    parser = build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    if argv[0] not in subcommands:
        pytest.skip(f"`{prog} {argv[0]}` is not implemented yet")
    parser.parse_args(argv)  # SystemExit (exit 2) on an unknown or missing flag


def _compose_commands() -> list[tuple[str, str, list[str]]]:
    spec = yaml.safe_load(COMPOSE.read_text())
    out = []
    for name, service in spec["services"].items():
        prog = "profy" if service["build"]["target"] == "train" else "guardrails"
        argv = [re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", a) for a in service["command"]]
        out.append((name, prog, argv))
    return out


@pytest.mark.parametrize("name,prog,argv", _compose_commands(), ids=lambda v: str(v)[:20])
def test_compose_job_commands_parse(name, prog, argv):
    _parses(prog, argv)


def test_cronjob_args_parse():
    spec = list(yaml.safe_load_all(CRONJOB.read_text()))[-1]
    container = spec["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    argv = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in container["args"]]
    _parses("guardrails", argv)


def _workflow_guardrails_calls() -> list[list[str]]:
    calls = []
    for path in WORKFLOWS:
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job["steps"]:
                script = step.get("run", "").replace("\\\n", " ")
                for match in re.finditer(r"profy-guardrails:\w+ ((?:ci|replay) [^\n|]*)", script):
                    words = shlex.split(match.group(1).split("||")[0])
                    calls.append([w.replace("$RUN_NAME", "experiment_x") for w in words])
    return calls


def test_workflows_call_guardrails_with_flags_it_has():
    calls = _workflow_guardrails_calls()
    assert [c[0] for c in calls] == ["ci", "replay"]
    for argv in calls:  # ci first: replay may still skip as not implemented
        _parses("guardrails", argv)


def _workflow_profy_calls() -> list[list[str]]:
    calls = []
    for path in WORKFLOWS:
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job["steps"]:
                script = step.get("run", "").replace("\\\n", " ")
                for line in script.splitlines():
                    if line.strip().startswith("profy "):
                        calls.append(shlex.split(line.strip())[1:])
    return calls


def test_workflows_call_profy_with_flags_it_has():
    """Static: every `profy` line of a workflow parses. Their ORDER (and whether each one
    succeeds on a real run) is what tests/test_workflows.py checks by running them."""
    calls = _workflow_profy_calls()
    assert [c[0] for c in calls] == ["synth", "train", "tag", "tag", "export", "export"]
    for argv in calls:
        _parses("profy", argv)


# ---------------------------------------------------------------- benchmark summary

def test_summarize_writes_a_table_of_figures(tmp_path):
    import json

    results = tmp_path / "results"
    results.mkdir()
    (results / "x.json").write_text(json.dumps({
        "benchmark": "x", "measured_at": "2026-11-24T10:00:00+00:00",
        "machine": {"cpu_model": "TestCPU", "cpu_count": 2, "python": "3.11.7",
                    "load_average_1m_at_end": 0.5},
        "cold": {"median_s": 2.0, "min_s": 1.5, "max_s": 3.0, "repeats": 3},
        "cached_speedup": 12.5, "targets": {"cold_max_s": 60},
        "models": [{"mode": "audio", "fold": 0, "batch1": {"speedup": 3.0, "ort_ms": 1.5}},
                   {"batch1": {"speedup": 2.0}}]}))
    out = tmp_path / "README.md"
    result = _run(sys.executable, str(ROOT / "benchmarks" / "summarize.py"),
                  "--results", str(results), "--out", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "| x | `cold` | 2 s median (1.5-3 s, n=3) |" in text
    assert "| x | `cached_speedup` | 12.50x |" in text
    assert "| x | `models[audio fold 0].batch1.speedup` | 3.00x |" in text  # lists: by name
    assert "| x | `models[audio fold 0].batch1.ort_ms` | 1.5 ms |" in text
    assert "| x | `models[1].batch1.speedup` | 2.00x |" in text  # ... else by index
    assert "cold_max_s" not in text  # targets are not measurements
    assert "M1: TestCPU x2" in text
    empty = _run(sys.executable, str(ROOT / "benchmarks" / "summarize.py"),
                 "--results", str(tmp_path / "none"), "--out", str(out))
    assert empty.returncode == 2
