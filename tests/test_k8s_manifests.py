"""The Kubernetes Jobs of containers/k8s/: schema-valid, and in step with the CLIs and images.

Validation uses kubernetes-validate's bundled schemas (offline, ``--strict``: unknown fields
are errors), at the newest bundled release and at 1.29, the oldest one the Jobs are for
(``backoffLimitPerIndex`` on by default); ``make lint`` runs the same two commands. The
commands every pod runs are built as Kubernetes would (tests/k8s_jobs.py) and parsed by the
real ``profy`` and ``guardrails`` parsers, so a renamed flag fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from k8s_jobs import K8S, ROOT, expand, indexes, load_job, pod_commands

BIN = Path(sys.executable).parent
MANIFESTS = sorted(K8S.glob("*.yaml"))
JOBS = ["features-shard-job.yaml", "features-index-job.yaml", "train-cv-job.yaml",
        "train-cv-gpu-job.yaml", "collect-gate-job.yaml"]
CLAIMS = {"profy-data": Path("/L/data"), "profy-runs": Path("/L/runs"),
          "profy-cache": Path("/L/cache")}


def _validate(*paths: Path, version: str | None = None) -> subprocess.CompletedProcess:
    tool = BIN / "kubernetes-validate"
    if not tool.exists():
        pytest.fail(f"kubernetes-validate not installed next to {sys.executable}")
    cmd = [str(tool), "--strict", "--quiet", *(["-k", version] if version else []),
           *map(str, paths)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)


def _pod(job: dict) -> dict:
    return job["spec"]["template"]["spec"]


def _commands(name: str, index: int, tmp_path: Path):
    return pod_commands(load_job(name), index, CLAIMS, tmp_path / f"{name}-{index}")


# ---------------------------------------------------------------- schemas

def test_every_job_manifest_is_there():
    assert {p.name for p in MANIFESTS} >= {*JOBS, "volumes.yaml"}


@pytest.mark.parametrize("version", [None, "1.29.0"])
def test_manifests_are_valid_kubernetes(version):
    result = _validate(*MANIFESTS, version=version)
    assert result.returncode == 0, result.stdout + result.stderr


def test_makefile_lints_the_manifests_at_both_versions():
    text = (ROOT / "Makefile").read_text()
    assert "kubernetes-validate --strict --quiet containers/k8s/*.yaml" in text
    assert "kubernetes-validate --strict --quiet -k 1.29.0 containers/k8s/*.yaml" in text


@pytest.mark.parametrize("old,new", [
    ("  backoffLimitPerIndex: 2", "  backoffLimitPerIndx: 2"),        # unknown field (strict)
    ("          values: [2]", "          values: [two]"),             # exit codes are ints
    ("  completionMode: Indexed", "  completionMode: 3"),              # wrong type
])
def test_validation_fails_on_a_broken_job(tmp_path, old, new):
    text = (K8S / "train-cv-job.yaml").read_text()
    assert old in text, f"{old!r} not in train-cv-job.yaml: update the test"
    broken = tmp_path / "train-cv-job.yaml"
    broken.write_text(text.replace(old, new, 1))
    result = _validate(broken)
    assert result.returncode != 0, result.stdout


# ---------------------------------------------------------------- Job semantics

def test_train_job_is_one_indexed_pod_per_fold_of_its_profile():
    from profy.config import load_profile

    job = load_job("train-cv-job.yaml")
    spec = job["spec"]
    (container,) = _pod(job)["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == load_profile(env["PROFILE"]).train.n_folds
    assert spec["parallelism"] == spec["completions"]
    assert spec["backoffLimitPerIndex"] >= 1 and spec["maxFailedIndexes"] == 0
    assert "backoffLimit" not in spec  # per index only: one fold cannot burn the others'


@pytest.mark.parametrize("name", ["features-shard-job.yaml", "train-cv-job.yaml",
                                  "train-cv-gpu-job.yaml"])
def test_bad_input_is_not_retried_and_evictions_are_not_counted(name):
    job = load_job(name)
    rules = job["spec"]["podFailurePolicy"]["rules"]
    (container,) = _pod(job)["containers"]
    fail = [r for r in rules if r["action"] == "FailIndex"]
    assert fail and fail[0]["onExitCodes"] == {"containerName": container["name"],
                                               "operator": "In", "values": [2]}
    assert rules.index(fail[0]) == 0  # first match wins
    ignore = [r for r in rules if r["action"] == "Ignore"]
    assert ignore[0]["onPodConditions"] == [{"type": "DisruptionTarget", "status": "True"}]
    assert _pod(job)["restartPolicy"] == "Never"


def test_a_failing_gate_is_never_retried_into_a_pass():
    spec = load_job("collect-gate-job.yaml")["spec"]
    assert spec["backoffLimit"] == 0
    assert [r["action"] for r in spec["podFailurePolicy"]["rules"]] == ["Ignore"]


def _dockerfile_user() -> str:
    text = (ROOT / "Dockerfile").read_text()
    return re.findall(r"^USER\s+(\S+)", text, re.M)[-1]


@pytest.mark.parametrize("name", JOBS)
def test_pods_run_as_the_images_non_root_user_on_shared_volumes(name):
    job = load_job(name)
    pod = _pod(job)
    uid, gid = (int(x) for x in _dockerfile_user().split(":"))
    ctx = pod["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["fsGroup"]) == (uid, gid, gid)
    assert pod["automountServiceAccountToken"] is False
    for c in [*pod.get("initContainers", []), *pod["containers"]]:
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert re.fullmatch(r"\S+/profy-(train|guardrails):\S+", c["image"]), c["image"]
        assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
              if "persistentVolumeClaim" in v}
    declared = {d["metadata"]["name"]: d["spec"]["accessModes"]
                for d in yaml.safe_load_all((K8S / "volumes.yaml").read_text())}
    assert claims and claims <= set(declared)
    assert all(declared[c] == ["ReadWriteMany"] for c in claims)


def test_gate_runs_on_the_torch_free_image_after_collect_and_export():
    pod = _pod(load_job("collect-gate-job.yaml"))
    assert [c["name"] for c in pod["initContainers"]] == ["collect", "export"]
    assert all("profy-train" in c["image"] for c in pod["initContainers"])
    (gate,) = pod["containers"]
    assert "profy-guardrails" in gate["image"]


def test_collect_gate_and_train_jobs_name_the_same_run():
    def run_name(name: str) -> set[str]:
        pod = _pod(load_job(name))
        return {e["value"] for c in [*pod.get("initContainers", []), *pod["containers"]]
                for e in c["env"] if e["name"] == "RUN_NAME"}

    assert run_name("train-cv-job.yaml") == run_name("train-cv-gpu-job.yaml") \
        == run_name("collect-gate-job.yaml")
    assert len(run_name("collect-gate-job.yaml")) == 1


def test_gpu_job_is_the_cpu_job_plus_the_documented_differences():
    cpu, gpu = load_job("train-cv-job.yaml"), load_job("train-cv-gpu-job.yaml")
    cpu["metadata"]["name"] = "profy-train-cv-gpu"
    for labels in (cpu["metadata"]["labels"], cpu["spec"]["template"]["metadata"]["labels"]):
        labels["app.kubernetes.io/component"] = "train-cv-gpu"
    pod = _pod(cpu)
    pod["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists",
                           "effect": "NoSchedule"}]
    container = pod["containers"][0]
    container["args"] += ["--device", "cuda"]
    container["resources"]["limits"]["nvidia.com/gpu"] = 1
    assert gpu == cpu


# ---------------------------------------------------------------- the pods' commands

def test_expand_follows_kubernetes_rules():
    env = {"A": "x", "B": "$(A)"}
    assert expand("$(A)/$(B)", env) == "x/$(A)"  # no recursive expansion
    assert expand("$$(A)", env) == "$(A)"          # $$ escapes
    assert expand("$(MISSING)", env) == "$(MISSING)"


def test_train_pods_run_each_fold_once_into_one_run_dir(tmp_path):
    from profy.cli import build_parser

    job = load_job("train-cv-job.yaml")
    folds, run_dirs = [], set()
    for index in indexes(job):
        (cmd,) = _commands("train-cv-job.yaml", index, tmp_path)
        assert Path(cmd.argv[0]).name == "profy"
        args = build_parser().parse_args(cmd.argv[1:])
        assert args.command == "train" and args.resume is None
        folds.append(args.only_fold)
        run_dirs.add(args.run_dir)
        assert args.data == CLAIMS["profy-data"]
        assert args.cache == CLAIMS["profy-cache"] / "features"
    assert folds == list(range(job["spec"]["completions"]))
    (run_dir,) = run_dirs
    assert run_dir.parent == CLAIMS["profy-runs"]


def test_gpu_pods_train_on_cuda(tmp_path):
    from profy.cli import build_parser

    (cmd,) = _commands("train-cv-gpu-job.yaml", 1, tmp_path)
    args = build_parser().parse_args(cmd.argv[1:])
    assert (args.device, args.only_fold) == ("cuda", 1)


def test_feature_shard_pods_cover_every_shard_once(tmp_path):
    from profy.cli import build_parser
    from profy.features._shard import parse_shard

    job = load_job("features-shard-job.yaml")
    shards = []
    for index in indexes(job):
        (cmd,) = _commands("features-shard-job.yaml", index, tmp_path)
        args = build_parser().parse_args(cmd.argv[1:])
        assert args.command == "features" and args.root == CLAIMS["profy-data"]
        assert args.cache == CLAIMS["profy-cache"] / "features"
        shards.append(parse_shard(args.shard))
    n = job["spec"]["completions"]
    assert [(s.index, s.count) for s in shards] == [(k, n) for k in range(n)]
    (final,) = _commands("features-index-job.yaml", 0, tmp_path)
    args = build_parser().parse_args(final.argv[1:])
    assert args.shard is None and args.cache == CLAIMS["profy-cache"] / "features"
    assert args.out.parent == CLAIMS["profy-runs"]


def test_collect_gate_pod_collects_exports_and_gates_the_train_jobs_run(tmp_path):
    from guardrails.cli import build_parser as guardrails_parser
    from profy.cli import build_parser

    (train,) = _commands("train-cv-job.yaml", 0, tmp_path)
    run_dir = build_parser().parse_args(train.argv[1:]).run_dir
    collect, export, gate = _commands("collect-gate-job.yaml", 0, tmp_path)
    assert build_parser().parse_args(collect.argv[1:]).run == run_dir
    assert build_parser().parse_args(export.argv[1:]).run == run_dir
    assert Path(gate.argv[0]).name == "guardrails"
    args = guardrails_parser().parse_args(gate.argv[1:])
    assert Path(args.run) == run_dir
    assert Path(args.report_dir) == run_dir / "guardrails"
