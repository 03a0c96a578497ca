"""The Kubernetes Jobs give the same answer as one machine, tested without a cluster.

Each Job's pods are built from the manifests exactly as Kubernetes would run them
(tests/k8s_jobs.py: env, ``$(JOB_COMPLETION_INDEX)``, the image's entrypoint, volumes as
local folders shared by every pod) and run as concurrent local processes on the tiny
synthetic corpus; the results are compared with one plain ``profy`` process.
"""

from __future__ import annotations

import json
import re
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from k8s_jobs import (
    indexes,
    load_job,
    metrics_view,
    pod_commands,
    run_pod,
    start,
    verdict_statuses,
)

from profy.contract.layout import (
    AUDIO_STATS_FILE,
    COMPLETE_RESULTS_FILE,
    FEATURE_INDEX_FILE,
    MANIFEST_FILE,
    PREDICTIONS_FILE,
    SHARD_RESULT_FILE,
    shard_dir,
)
from profy.contract.model_io import MODES

BIN = Path(sys.executable).parent
TIMEOUT = 900


def _claims(tmp: Path, corpus: Path) -> dict[str, Path]:
    claims = {"profy-data": corpus, "profy-runs": tmp / "runs", "profy-cache": tmp / "cache"}
    for name in ("profy-runs", "profy-cache"):
        claims[name].mkdir(parents=True)
    return claims


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd,
                          stdin=subprocess.DEVNULL)


def _run_indexed_job(name: str, claims: dict[str, Path], work: Path) -> None:
    """Every index of an Indexed Job at once (parallelism = completions), then wait."""
    job = load_job(name)
    assert job["spec"]["parallelism"] == job["spec"]["completions"]
    procs = {}
    for index in indexes(job):
        (cmd,) = pod_commands(job, index, claims, work / f"pod-{index}")
        procs[index] = (start(cmd, work / f"pod-{index}.log"), work / f"pod-{index}.log")
    for index, (proc, log) in procs.items():
        assert proc.wait(timeout=TIMEOUT) == 0, f"{name} index {index}:\n{log.read_text()}"


def _cache_entries(cache: Path) -> dict[str, tuple[dict, bytes]]:
    """Each entry's parsed header and its tensor bytes. (safetensors writes the header's
    metadata in hash-map order, which varies between processes even on one machine.)"""
    entries = {}
    for path in sorted(cache.glob("??/*.safetensors")):
        raw = path.read_bytes()
        size = struct.unpack("<Q", raw[:8])[0]
        entries[path.name] = (json.loads(raw[8:8 + size]), raw[8 + size:])
    return entries


def _index_metadata(path: Path) -> dict[bytes, bytes]:
    meta = dict(pq.read_schema(path).metadata)
    meta.pop(b"cache_dir")  # where the cache is mounted: the one path the tables record
    return meta


@pytest.mark.slow
def test_feature_shard_job_then_index_job_equal_one_features_run(tiny_corpus_ro, tmp_path):
    claims = _claims(tmp_path / "k8s", tiny_corpus_ro)
    _run_indexed_job("features-shard-job.yaml", claims, tmp_path / "shards")
    # shard pods fill the cache only: no tables anywhere, and every take has its entry
    assert not list((tmp_path / "shards").rglob("*.parquet"))
    assert not list(claims["profy-runs"].rglob("*.parquet"))
    (final,) = pod_commands(load_job("features-index-job.yaml"), 0, claims, tmp_path / "final")
    assert run_pod([final], tmp_path / "final-logs") == 0
    final_log = (tmp_path / "final-logs" / f"{final.container}.log").read_text()

    ref = tmp_path / "ref"
    result = _run([str(BIN / "profy"), "features", str(tiny_corpus_ro), "--out", str(ref),
                   "--cache", str(ref / "cache"), "--workers", "2"], tmp_path)
    assert result.returncode == 0, result.stderr
    n_takes = pq.read_metadata(ref / FEATURE_INDEX_FILE).num_rows
    assert f"cache: {n_takes} hits, 0 misses" in " ".join(final_log.split()), final_log

    out = Path(final.argv[final.argv.index("--out") + 1])
    for name in (AUDIO_STATS_FILE, MANIFEST_FILE):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert pq.read_table(out / FEATURE_INDEX_FILE).equals(pq.read_table(ref / FEATURE_INDEX_FILE))
    assert _index_metadata(out / FEATURE_INDEX_FILE) == _index_metadata(ref / FEATURE_INDEX_FILE)
    sharded, single = _cache_entries(claims["profy-cache"] / "features"), \
        _cache_entries(ref / "cache")
    assert len(single) == n_takes
    assert sharded == single  # same keys, headers and byte-identical tensors


def _wait_for_a_finished_shard(run_dir: Path, fold: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if any((shard_dir(run_dir, m, fold) / SHARD_RESULT_FILE).is_file() for m in MODES):
            return
        assert proc.poll() is None, "the fold job ended before it finished a shard"
        time.sleep(0.005)
    raise AssertionError(f"fold {fold} finished no shard in {TIMEOUT} s")


def _train_reference(corpus: Path, tmp_path: Path) -> Path:
    """One plain `profy train` with the train Job's arguments (--out instead of
    --only-fold/--run-dir), then the collect-gate Job's export and gate on its run."""
    job = load_job("train-cv-job.yaml")
    (cmd,) = pod_commands(job, 0, {"profy-data": corpus, "profy-runs": tmp_path / "unused",
                                   "profy-cache": tmp_path / "ref-cache"}, tmp_path / "scr")
    argv = list(cmd.argv)
    for flag in ("--only-fold", "--run-dir"):
        at = argv.index(flag)
        del argv[at:at + 2]
    result = _run([*argv, "--out", str(tmp_path / "ref-runs")], tmp_path)
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "ref-runs").glob("experiment_*")
    view = tmp_path / "ref-view"  # the gate pod's /runs, its RUN_NAME naming this run
    view.mkdir()
    (view / _run_name()).symlink_to(run, target_is_directory=True)
    gate_pod = pod_commands(load_job("collect-gate-job.yaml"), 0,
                            {"profy-runs": view, "profy-cache": tmp_path / "ref-cache"},
                            tmp_path / "ref-gate")
    assert [c.container for c in gate_pod] == ["collect", "export", "gate"]
    code = run_pod(gate_pod[1:], tmp_path / "ref-gate-logs")  # collect is for fold jobs
    assert code in (0, 1), code  # 1: the gate said fail
    return run


def _run_name() -> str:
    (container,) = load_job("train-cv-job.yaml")["spec"]["template"]["spec"]["containers"]
    return next(e["value"] for e in container["env"] if e["name"] == "RUN_NAME")


@dataclass(frozen=True)
class _Emulated:
    run_dir: Path          # the run folder the Jobs shared
    reference: Path        # one plain `profy train`'s run, exported and gated alike
    gate_code: int         # the collect-gate pod's exit code
    unfinished: list[str]  # modes of the killed fold still untrained at the kill


@pytest.fixture(scope="module")
def emulated(tiny_corpus_ro, tmp_path_factory) -> _Emulated:
    """The train Job (fold 1 killed mid-run and retried), the collect-gate Job, and one
    plain `profy train` + export + gate of the same config and seed."""
    tmp_path = tmp_path_factory.mktemp("k8s_train")
    claims = _claims(tmp_path / "k8s", tiny_corpus_ro)
    job = load_job("train-cv-job.yaml")
    run_dir = claims["profy-runs"] / _run_name()
    pods = {k: pod_commands(job, k, claims, tmp_path / f"pod-{k}")[0] for k in indexes(job)}
    assert len(pods) == 3
    # every fold starts at once on a fresh run folder (no one created it beforehand)
    procs = {k: start(cmd, tmp_path / f"pod-{k}.log") for k, cmd in pods.items()}
    victim = 1
    _wait_for_a_finished_shard(run_dir, victim, procs[victim])
    procs[victim].send_signal(signal.SIGKILL)  # node lost mid-fold: no cleanup runs
    assert procs[victim].wait(timeout=60) == -signal.SIGKILL
    unfinished = [m for m in MODES
                  if not (shard_dir(run_dir, m, victim) / SHARD_RESULT_FILE).is_file()]
    # backoffLimitPerIndex: the same index is started again, while the others still run
    procs[victim] = start(pods[victim], tmp_path / f"pod-{victim}-retry.log")
    for k, proc in procs.items():
        log = tmp_path / (f"pod-{k}-retry.log" if k == victim else f"pod-{k}.log")
        assert proc.wait(timeout=TIMEOUT) == 0, f"index {k}:\n{log.read_text()}"
    gate_pod = pod_commands(load_job("collect-gate-job.yaml"), 0, claims, tmp_path / "gate")
    code = run_pod(gate_pod, tmp_path / "gate-logs")
    assert code in (0, 1), [p.read_text() for p in (tmp_path / "gate-logs").glob("*.log")]
    return _Emulated(run_dir, _train_reference(tiny_corpus_ro, tmp_path), code, unfinished)


@pytest.mark.slow
def test_the_killed_fold_was_killed_mid_run_and_its_retry_kept_the_finished_shard(emulated):
    assert emulated.unfinished, "the kill came too late: fold 1 had finished every mode"
    assert len(emulated.unfinished) < len(MODES)
    retry_log = (emulated.run_dir / "logs" / "training_fold1.log").read_text()
    assert re.search(r"^SKIP mode=\w+ fold=1 ", retry_log, re.M), retry_log


@pytest.mark.slow
def test_fold_jobs_and_collect_give_one_trains_metrics(emulated):
    ours, theirs = (json.loads((d / COMPLETE_RESULTS_FILE).read_text())
                    for d in (emulated.run_dir, emulated.reference))
    assert metrics_view(ours) == metrics_view(theirs)


@pytest.mark.slow
def test_fold_jobs_and_collect_give_one_trains_predictions_byte_for_byte(emulated):
    ours, theirs = (d / PREDICTIONS_FILE for d in (emulated.run_dir, emulated.reference))
    assert ours.read_bytes() == theirs.read_bytes()


@pytest.mark.slow
def test_fold_jobs_and_collect_get_one_trains_gate_verdict(emulated):
    verdicts = [json.loads((d / "guardrails" / "verdict.json").read_text())
                for d in (emulated.run_dir, emulated.reference)]
    assert verdict_statuses(verdicts[0]) == verdict_statuses(verdicts[1])
    assert verdicts[0]["exit_code"] == verdicts[1]["exit_code"] == emulated.gate_code
