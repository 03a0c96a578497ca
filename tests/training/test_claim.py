"""The atomic claim of a shared run folder: jobs released at the same instant on a fresh
``--run-dir`` agree on one config, hash and splits, a different config is refused, a stale
claim of a dead job is taken over, and a live one that never finishes times out clearly."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from profy.config import config_hash, load_profile
from profy.contract.layout import (
    CLAIM_DONE_FILE,
    CLAIM_FILE,
    CONFIG_FILE,
    CONFIG_HASH_FILE,
    SPLITS_FILE,
)
from profy.data import make_folds
from profy.errors import ConfigError, MissingInputError
from profy.training import RunFolder
from profy.training._claim import _pid_namespace

REPO = Path(__file__).resolve().parents[2]
IDENTITY = (CONFIG_FILE, CONFIG_HASH_FILE, SPLITS_FILE)


def _takes(n_players: int = 10) -> pd.DataFrame:
    rows = [{"sample_id": f"p{p:02d}_t{t}", "player_id": f"p{p:02d}", "piece": f"piece{t % 2}",
             "label": "pro" if p % 2 else "amateur"} for p in range(n_players) for t in range(3)]
    return pd.DataFrame(rows)


def _job(epochs: int, seed: int = 0):
    cfg = load_profile("mm-audiofix", [f"train.epochs={epochs}", f"train.seed={seed}"])
    return cfg, make_folds(_takes(), n_folds=cfg.train.n_folds, seed=cfg.train.seed)


def _identity_bytes(run_dir: Path) -> tuple[bytes, ...]:
    return tuple((run_dir / name).read_bytes() for name in IDENTITY)


def _worker(rank, epochs, root, rounds, barrier, out) -> None:
    """One job: every round, wait for all, then claim ``root/round_<r>`` at once."""
    cfg, splits = _job(epochs)
    for r in range(rounds):
        run_dir = Path(root) / f"round_{r}"
        barrier.wait()
        try:
            wrote = RunFolder(run_dir).claim(cfg, splits, timeout=30)
            seen = [b.hex() for b in _identity_bytes(run_dir)]
            out.put((r, rank, "ok", wrote, seen))
        except ConfigError as exc:
            out.put((r, rank, "config-error", False, str(exc)))
        except Exception as exc:  # noqa: BLE001 - any other failure is a test failure
            out.put((r, rank, "failed", False, f"{type(exc).__name__}: {exc}"))


def _race(root: Path, epochs_per_job: list[int], rounds: int) -> dict[int, list[tuple]]:
    """Start one process per job, released together every round by a Barrier."""
    ctx = mp.get_context("forkserver")  # fresh processes, forked from one that has imported
    ctx.set_forkserver_preload([__name__, "profy.training"])  # profy (torch) once
    barrier, out = ctx.Barrier(len(epochs_per_job)), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(i, e, str(root), rounds, barrier, out))
             for i, e in enumerate(epochs_per_job)]
    for p in procs:
        p.start()
    got: dict[int, list[tuple]] = {}
    try:
        for _ in range(rounds * len(procs)):
            r, *rest = out.get(timeout=120)
            got.setdefault(r, []).append(tuple(rest))
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    return got


def _assert_all_agree(root: Path, got: dict[int, list[tuple]], n_jobs: int, cfg) -> None:
    for r, reports in sorted(got.items()):
        assert len(reports) == n_jobs
        failed = [rep for rep in reports if rep[1] != "ok"]
        assert not failed, f"round {r}: {failed}"
        assert sum(rep[2] for rep in reports) == 1, f"round {r}: not exactly one claimer"
        assert len({tuple(rep[3]) for rep in reports}) == 1, f"round {r}: jobs saw other bytes"
        run_dir = root / f"round_{r}"
        assert (run_dir / CONFIG_HASH_FILE).read_text().strip() == config_hash(cfg)
        assert (run_dir / CLAIM_DONE_FILE).is_file()
        assert RunFolder(run_dir).saved_config() == cfg


@pytest.mark.parametrize("rounds", [pytest.param(30, id="30-rounds"),
                                    pytest.param(200, id="200-rounds", marks=pytest.mark.slow)])
def test_jobs_released_at_once_never_fail_and_see_one_identity(tmp_path, rounds):
    n_jobs = 4
    got = _race(tmp_path, [2] * n_jobs, rounds)
    assert sorted(got) == list(range(rounds))
    _assert_all_agree(tmp_path, got, n_jobs, _job(2)[0])


def test_two_configs_racing_one_wins_the_other_is_refused(tmp_path):
    rounds, jobs = 10, [2, 3, 2, 3]
    got = _race(tmp_path, jobs, rounds)
    for r, reports in sorted(got.items()):
        run_dir = tmp_path / f"round_{r}"
        stored = (run_dir / CONFIG_HASH_FILE).read_text().strip()
        winner = next(e for e in (2, 3) if config_hash(_job(e)[0]) == stored)
        by_rank = {rank: rep for rank, *rep in reports}
        for rank, epochs in enumerate(jobs):
            status, _, detail = by_rank[rank]
            if epochs == winner:
                assert status == "ok", detail
            else:
                assert status == "config-error", detail
                assert str(run_dir) in detail and "config hash" in detail
        assert sum(rep[1] for rep in by_rank.values()) == 1  # one claimer wrote
        assert RunFolder(run_dir).saved_config() == _job(winner)[0]  # never a mix


def _claim_file(run_dir: Path, **holder) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CLAIM_FILE
    path.write_text(json.dumps({"token": "old", "config_hash": "x" * 64, **holder}))
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_claim_of_a_dead_local_job_is_taken_over_and_its_partial_files_replaced(tmp_path):
    run_dir = tmp_path / "run"
    _claim_file(run_dir, pid=_dead_pid(), host=socket.gethostname(),
                pid_namespace=_pid_namespace(), time=time.time())
    other, _ = _job(5)
    (run_dir / CONFIG_FILE).write_text(other.to_yaml())  # it died after its first write
    cfg, splits = _job(2)
    t0 = time.monotonic()
    assert RunFolder(run_dir).claim(cfg, splits, timeout=5, stale_after=3600) is True
    assert time.monotonic() - t0 < 2  # at once, not after stale_after
    assert RunFolder(run_dir).saved_config() == cfg
    assert json.loads((run_dir / CLAIM_FILE).read_text())["pid"] == os.getpid()
    assert not list(run_dir.glob(f"{CLAIM_FILE}.stale.*"))


@pytest.mark.parametrize("holder", [
    pytest.param({"pid": 1, "host": "node-7", "pid_namespace": "1", "time": 0.0},
                 id="other-host"),
    pytest.param(None, id="empty-claim-file")])
def test_an_old_claim_from_elsewhere_is_stale_a_fresh_one_times_out(tmp_path, holder):
    cfg, splits = _job(2)
    fresh = tmp_path / "fresh"
    if holder is None:
        fresh.mkdir()
        (fresh / CLAIM_FILE).write_bytes(b"")  # killed between create and write
    else:
        _claim_file(fresh, **{**holder, "time": time.time()})
    with pytest.raises(MissingInputError) as info:
        RunFolder(fresh).claim(cfg, splits, timeout=0.5, stale_after=60)
    msg = str(info.value)
    assert msg.startswith(str(fresh)) and str(fresh / CLAIM_FILE) in msg and "0.5 s" in msg
    assert ("node-7" in msg) if holder else ("unreadable" in msg)
    assert not (fresh / CONFIG_FILE).exists()

    old = tmp_path / "old"
    if holder is None:
        old.mkdir()
        (old / CLAIM_FILE).write_bytes(b"")
        os.utime(old / CLAIM_FILE, (time.time() - 600, time.time() - 600))
    else:
        _claim_file(old, **holder)  # time 0: decades old
    assert RunFolder(old).claim(cfg, splits, timeout=5, stale_after=60) is True
    assert RunFolder(old).saved_config() == cfg


def test_a_failed_claimer_releases_the_claim_and_a_legacy_folder_is_verified(tmp_path):
    cfg, splits = _job(2)
    run_dir = tmp_path / "run"
    with pytest.raises(KeyError):  # splits without a column: write_splits fails
        RunFolder(run_dir).claim(cfg, splits.drop(columns="role"))
    assert not (run_dir / CLAIM_FILE).exists() and not (run_dir / CLAIM_DONE_FILE).exists()
    assert RunFolder(run_dir).claim(cfg, splits) is True
    # a folder made before claims existed: config, hash and splits, no claim files
    (run_dir / CLAIM_FILE).unlink()
    (run_dir / CLAIM_DONE_FILE).unlink()
    before = _identity_bytes(run_dir)
    with pytest.raises(ConfigError, match="config hash"):
        RunFolder(run_dir).claim(_job(3)[0], splits)
    assert _identity_bytes(run_dir) == before  # verified, never overwritten
    assert RunFolder(run_dir).claim(cfg, splits) is True
    assert _identity_bytes(run_dir) == before
    other = make_folds(_takes(), n_folds=3, seed=1)
    with pytest.raises(ConfigError, match="splits differ"):
        RunFolder(run_dir).claim(cfg, other)


def test_bad_claim_timeout_in_the_environment_is_a_config_error(tmp_path, monkeypatch):
    cfg, splits = _job(2)
    monkeypatch.setenv("PROFY_CLAIM_TIMEOUT_S", "soon")
    with pytest.raises(ConfigError, match="PROFY_CLAIM_TIMEOUT_S='soon'"):
        RunFolder(tmp_path / "run").claim(cfg, splits)


def _cli(*argv: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "profy.cli", *argv], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def _fold_argv(corpus: Path, run_dir: Path, cache: Path, fold: int) -> list[str]:
    return ["train", "--config", "mm-audiofix", "--data", str(corpus), "--run-dir",
            str(run_dir), "--cache", str(cache), "--modes", "sensor", "--epochs", "1",
            "--workers", "1", "--only-fold", str(fold)]


def test_cli_job_waiting_on_a_claim_that_never_completes_exits_2(tiny_corpus_ro, tmp_path):
    run_dir = tmp_path / "run"
    _claim_file(run_dir, pid=1, host="node-7", pid_namespace="1", time=time.time())
    proc = _cli(*_fold_argv(tiny_corpus_ro, run_dir, tmp_path / "cache", 0),
                env={"PROFY_CLAIM_TIMEOUT_S": "1"})
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    assert str(run_dir / CLAIM_FILE) in err and "node-7" in err
    assert not (run_dir / CONFIG_FILE).exists()
    assert run_dir.is_dir()  # not created by the job: left alone


@pytest.mark.slow
def test_fold_jobs_started_at_once_on_a_fresh_run_dir_equal_one_process(tiny_corpus_ro,
                                                                        tmp_path):
    from profy.training import train

    run_dir, cache = tmp_path / "shared", tmp_path / "cache"
    jobs = [_cli(*_fold_argv(tiny_corpus_ro, run_dir, cache, k)) for k in range(3)]
    outs = [(p.wait(timeout=600), p.communicate()[1]) for p in jobs]
    assert [rc for rc, _ in outs] == [0, 0, 0], [err[-2000:] for _, err in outs]
    collect = _cli("collect", str(run_dir))
    assert collect.wait(timeout=300) == 0, collect.communicate()[1]
    cfg = load_profile("mm-audiofix", ["train.modes=[sensor]", "train.epochs=1"])
    whole = train(cfg, tiny_corpus_ro, tmp_path / "runs", cache_dir=cache, workers=1)
    got = json.loads((run_dir / "complete_results.json").read_text())
    assert got["modes"] == whole.results["modes"]
    pd.testing.assert_frame_equal(pd.read_parquet(run_dir / "predictions.parquet"),
                                  pd.read_parquet(whole.run_dir / "predictions.parquet"))
