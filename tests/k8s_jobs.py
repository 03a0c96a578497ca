"""Run the Kubernetes Jobs of ``containers/k8s/`` as local processes (no cluster).

What Kubernetes does to a pod of these Jobs, done here: the container's ``env`` values are
set (``JOB_COMPLETION_INDEX`` from the index, as the Job controller annotates it),
``$(VAR)`` references in ``args`` are expanded from them (``$$`` escapes, an unknown
``$(VAR)`` stays as written), the image's entrypoint (``profy`` for the train image,
``guardrails`` for the guardrails image, as in the Dockerfile) is put in front, and each
mounted volume's path is replaced by a local folder: one per PersistentVolumeClaim (shared
by every pod, as a ReadWriteMany volume is) and a fresh one per pod for an ``emptyDir``.
Init containers run in order before the pod's container; a non-zero exit stops the pod.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["K8S", "TIMED_CHECKS", "PodCommand", "expand", "indexes", "load_job",
           "metrics_view", "pod_commands", "run_pod", "start", "verdict_statuses"]

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "containers" / "k8s"
BIN = Path(sys.executable).parent
_INDEX_FIELD = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
_ENTRYPOINTS = {"profy-train": "profy", "profy-guardrails": "guardrails"}  # Dockerfile
_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def load_job(name: str) -> dict[str, Any]:
    """The one ``Job`` document of ``containers/k8s/<name>``."""
    docs = [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    jobs = [d for d in docs if d.get("kind") == "Job"]
    assert len(jobs) == 1, f"{name}: expected one Job, found {len(jobs)}"
    return jobs[0]


def indexes(job: Mapping[str, Any]) -> list[int]:
    """Completion indexes of an Indexed Job (``0 .. completions-1``); ``[0]`` otherwise."""
    spec = job["spec"]
    if spec.get("completionMode") == "Indexed":
        return list(range(int(spec["completions"])))
    return [0]


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion of a command or argument."""
    def sub(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _REF.sub(sub, text)


def _env(container: Mapping[str, Any], index: int) -> dict[str, str]:
    env = {"JOB_COMPLETION_INDEX": str(index)}  # the Job controller injects it
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = expand(str(item["value"]), env)
        else:
            path = item["valueFrom"]["fieldRef"]["fieldPath"]
            assert path == _INDEX_FIELD, f"unsupported env source {path}"
            env[item["name"]] = str(index)
    return env


@dataclass(frozen=True)
class PodCommand:
    """One container of one pod, as a local command."""

    container: str
    argv: list[str]
    env: dict[str, str]


def _entrypoint(image: str) -> str:
    repo = image.rsplit("/", 1)[-1].split(":", 1)[0]
    assert repo in _ENTRYPOINTS, f"unknown image {image}"
    return str(BIN / _ENTRYPOINTS[repo])


def _rewrite(arg: str, mounts: Mapping[str, Path]) -> str:
    for mount, local in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
        if arg == mount or arg.startswith(mount + "/"):
            return str(local) + arg[len(mount):]
    return arg


def pod_commands(job: Mapping[str, Any], index: int, claims: Mapping[str, Path],
                 scratch: Path) -> list[PodCommand]:
    """The commands of pod ``index``: init containers in order, then the container.

    Args:
        claims: local folder of each PersistentVolumeClaim name.
        scratch: a folder for this pod's ``emptyDir`` volumes (created).
    """
    pod = job["spec"]["template"]["spec"]
    volumes = {}
    for vol in pod["volumes"]:
        if "persistentVolumeClaim" in vol:
            volumes[vol["name"]] = Path(claims[vol["persistentVolumeClaim"]["claimName"]])
        else:
            assert "emptyDir" in vol, vol
            volumes[vol["name"]] = scratch / vol["name"]
            volumes[vol["name"]].mkdir(parents=True, exist_ok=True)
    commands = []
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        assert "command" not in container, "the image's entrypoint is the command"
        env = _env(container, index)
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
        argv = [_entrypoint(container["image"]),
                *(_rewrite(expand(str(a), env), mounts) for a in container["args"])]
        commands.append(PodCommand(container["name"], argv, env))
    return commands


def _process_env(command: PodCommand) -> dict[str, str]:
    return {**os.environ, **command.env, "PYTHONUNBUFFERED": "1"}


def start(command: PodCommand, log: Path) -> subprocess.Popen:
    """Start one container's command (stdout and stderr to ``log``), no TTY."""
    with log.open("w") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command.argv, stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=_process_env(command),
                                cwd=log.parent)


def run_pod(commands: list[PodCommand], logs: Path, timeout: float = 900) -> int:
    """Run a pod's containers in order; the first non-zero exit code ends it."""
    logs.mkdir(parents=True, exist_ok=True)
    for command in commands:
        proc = start(command, logs / f"{command.container}.log")
        code = proc.wait(timeout=timeout)
        if code != 0:
            return code
    return 0


# What differs between two runs of the same config and seed by design: when and where
# they ran, how long each fold took, and the git state of the checkout.
_RUN_VOLATILE = ("date", "fold_seconds", "run_id", "git_hash", "git_dirty")
# Checks whose status depends on wall-clock timing, not on the run's content.
TIMED_CHECKS = frozenset({"onnx.latency"})


def metrics_view(results: Mapping[str, Any]) -> dict[str, Any]:
    """``complete_results.json`` without its timing, identity and path fields."""
    view = dict(results)
    view["run"] = {k: v for k, v in results["run"].items() if k not in _RUN_VOLATILE}
    return view


def verdict_statuses(verdict: Mapping[str, Any]) -> dict[str, str]:
    """``{check: status}`` of a ``verdict.json``, the timed checks left out."""
    return {c["name"]: c["status"] for c in verdict["checks"] if c["name"] not in TIMED_CHECKS}
