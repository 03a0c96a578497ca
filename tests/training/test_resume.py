"""Interrupt + resume (a real killed `profy train` subprocess), --only-fold jobs sharing one
run folder, and `profy collect`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from profy.cli import main
from profy.config import config_hash, load_profile
from profy.errors import ConfigError, MissingInputError
from profy.training import claim_run_dir, collect, resume, train

REPO = Path(__file__).resolve().parents[2]
MODES = "sensor,multimodal"


def _argv(corpus, out, cache, epochs=2, modes=MODES):
    return ["train", "--config", "mm-audiofix", "--data", str(corpus), "--out", str(out),
            "--cache", str(cache), "--modes", modes, "--epochs", str(epochs), "--workers", "1"]


def _start_and_interrupt(argv, runs: Path, sig: int, timeout: float = 300.0):
    """Start `python -m profy.cli` and send ``sig`` once a shard's result.json appears."""
    proc = subprocess.Popen([sys.executable, "-m", "profy.cli", *argv], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while not list(runs.glob("experiment_*/folds/*/result.json")):
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"train ended before the first shard ({proc.returncode}): "
                            f"{err.decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("no shard finished in time")
            time.sleep(0.02)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (run_dir,) = runs.glob("experiment_*")
    return proc.returncode, err.decode(), run_dir


def _assert_nothing_partial(run_dir: Path) -> None:
    """Every file under its real name is complete (temp files are allowed, hidden)."""
    for path in run_dir.rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix == ".parquet":
            pq.read_table(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())


def _finished(run_dir: Path) -> dict[str, tuple[str, int]]:
    return {p.parent.name: (p.read_text(), p.stat().st_mtime_ns)
            for p in run_dir.glob("folds/*/result.json")}


@pytest.fixture(scope="module")
def uninterrupted(tiny_corpus_ro, tmp_path_factory):
    """The same config and seed as the CLI, trained in one go, in-process."""
    base = tmp_path_factory.mktemp("whole")
    cfg = load_profile("mm-audiofix", [f"train.modes=[{MODES}]", "train.epochs=2"])
    return train(cfg, tiny_corpus_ro, base / "runs", cache_dir=base / "cache", workers=1)


def test_killed_run_resumes_to_the_uninterrupted_results(tiny_corpus_ro, tmp_path,
                                                         uninterrupted):
    runs = tmp_path / "runs"
    rc, err, run_dir = _start_and_interrupt(_argv(tiny_corpus_ro, runs, tmp_path / "cache"),
                                            runs, signal.SIGKILL)
    assert rc == -signal.SIGKILL, err
    _assert_nothing_partial(run_dir)
    before = _finished(run_dir)
    assert 1 <= len(before) < 6  # killed mid-run: some shards done, some not
    assert not (run_dir / "complete_results.json").exists()
    # what a kill -9 during an atomic write leaves behind: a hidden temp file
    (run_dir / "folds" / ".predictions.parquet.x1y2.tmp").write_bytes(b"PAR1 partial")
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    (run_dir / "checkpoints" / ".audio_fold9.safetensors.zz.tmp").write_bytes(b"\0" * 10)

    result = resume(run_dir)

    assert not list(run_dir.rglob("*.tmp"))
    after = _finished(run_dir)
    assert len(after) == 6
    for name, (text, mtime) in before.items():  # finished shards were not redone
        assert after[name] == (text, mtime), name
    assert "SKIP mode=" in (run_dir / "training.log").read_text()
    want = uninterrupted.results
    assert result.results["run"]["config_hash"] == want["run"]["config_hash"]
    got_json = json.loads((run_dir / "complete_results.json").read_text())
    want_json = json.loads((uninterrupted.run_dir / "complete_results.json").read_text())
    assert got_json["modes"] == want_json["modes"]
    for name in ("predictions.parquet", "modality_weights.parquet", "epochs.parquet"):
        got = pd.read_parquet(run_dir / name)
        exp = pd.read_parquet(uninterrupted.run_dir / name)
        if "seconds" in got:
            got, exp = got.drop(columns="seconds"), exp.drop(columns="seconds")
        pd.testing.assert_frame_equal(got, exp)


def test_ctrl_c_exits_130_without_temp_files_and_cli_resume_finishes(tiny_corpus_ro, tmp_path,
                                                                    capsys):
    runs = tmp_path / "runs"
    argv = _argv(tiny_corpus_ro, runs, tmp_path / "cache", epochs=1, modes="sensor")
    rc, err, run_dir = _start_and_interrupt(argv, runs, signal.SIGINT)
    if rc == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert rc == 130, err
    assert "interrupted" in err
    assert not list(run_dir.rglob("*.tmp"))  # atomic writes clean up on Ctrl-C
    _assert_nothing_partial(run_dir)
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert (run_dir / "complete_results.json").is_file()
    assert len(list(run_dir.glob("folds/*/result.json"))) == 3


def test_resume_refuses_an_edited_or_incomplete_run(uninterrupted, tmp_path, capsys):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(uninterrupted.run_dir, run_dir)
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 2", "epochs: 3"))
    with pytest.raises(ConfigError, match="config_hash"):
        resume(run_dir)
    assert main(["train", "--resume", str(run_dir)]) == 2
    assert "config_hash" in capsys.readouterr().err
    shutil.copy(uninterrupted.run_dir / "config.yaml", config)
    (run_dir / "splits.parquet").unlink()
    with pytest.raises(MissingInputError, match="splits"):
        resume(run_dir)
    assert main(["train", "--resume", str(tmp_path / "nope")]) == 2
    assert main(["train", "--resume", str(run_dir), "--epochs", "3"]) == 2
    assert "--epochs" in capsys.readouterr().err


def test_only_fold_jobs_share_a_run_folder_and_collect_merges_them(tiny_corpus_ro, tmp_path,
                                                                   capsys):
    shared, cache = tmp_path / "shared", tmp_path / "cache"

    def job(fold, *extra):
        return main(["train", "--config", "mm-audiofix", "--data", str(tiny_corpus_ro),
                     "--run-dir", str(shared), "--cache", str(cache), "--modes", "sensor",
                     "--epochs", "1", "--workers", "1", "--only-fold", str(fold), *extra])

    assert job(1) == 0
    assert (shared / "folds/sensor_fold1/result.json").is_file()
    assert not (shared / "folds/sensor_fold0").exists()
    assert not (shared / "complete_results.json").exists()
    capsys.readouterr()
    assert main(["collect", str(shared)]) == 2
    err = capsys.readouterr().err
    assert "missing: sensor fold 0, sensor fold 2" in err
    assert job(0, "--epochs", "2") == 2  # another config hash: refused, nothing written
    assert "config hash" in capsys.readouterr().err
    assert not (shared / "folds/sensor_fold0").exists()
    assert job(0) == 0 and job(2) == 0
    assert main(["collect", str(shared)]) == 0
    assert (shared / "complete_results.json").is_file()
    assert "COLLECT jobs=3" in (shared / "training.log").read_text()

    cfg = load_profile("mm-audiofix", ["train.modes=[sensor]", "train.epochs=1"])
    whole = train(cfg, tiny_corpus_ro, tmp_path / "runs", cache_dir=cache, workers=1)
    got = json.loads((shared / "complete_results.json").read_text())
    assert got["modes"] == whole.results["modes"]
    assert got["run"]["config_hash"] == config_hash(cfg)
    pd.testing.assert_frame_equal(pd.read_parquet(shared / "predictions.parquet"),
                                  pd.read_parquet(whole.run_dir / "predictions.parquet"))

    # other splits in the same folder are refused
    splits = pq.read_table(shared / "splits.parquet").to_pandas()
    other = splits.assign(fold=(splits["fold"] + 1) % 3)
    with pytest.raises(ConfigError, match="splits differ"):
        claim_run_dir(cfg, shared, other)
    # a shard from another config is named as mismatched
    result = shared / "folds/sensor_fold2/result.json"
    obj = json.loads(result.read_text())
    result.write_text(json.dumps({**obj, "config_hash": "f" * 64}))
    with pytest.raises(ConfigError, match="mismatched: sensor fold 2"):
        collect(shared)
    os.remove(result)
    with pytest.raises(ConfigError, match="missing: sensor fold 2"):
        collect(shared)


def test_a_shard_finished_but_never_logged_gets_its_fold_line_on_the_retry(tiny_corpus_ro,
                                                                          tmp_path):
    """A job killed between finishing a shard and logging it: the retry SKIPs the shard
    and logs its FOLD line from the shard, once (gate.best_checkpoint reads that line)."""
    shared = tmp_path / "shared"
    argv = ["train", "--config", "mm-audiofix", "--data", str(tiny_corpus_ro), "--run-dir",
            str(shared), "--cache", str(tmp_path / "cache"), "--modes", "sensor", "--epochs",
            "1", "--workers", "1", "--only-fold", "1"]
    assert main(argv) == 0
    log = shared / "logs" / "training_fold1.log"
    fold_lines = [ln for ln in log.read_text().splitlines() if ln.startswith("FOLD ")]
    assert len(fold_lines) == 1
    log.write_text(log.read_text().replace(fold_lines[0] + "\n", ""))  # the kill's loss

    assert main(argv) == 0
    lines = log.read_text().splitlines()
    assert any(ln.startswith("SKIP mode=sensor fold=1 ") for ln in lines)
    (again,) = [ln for ln in lines if ln.startswith("FOLD ")]
    assert again == fold_lines[0] + " source=shard"  # the same figures, from result.json
    assert main(argv) == 0  # a line already there is not repeated
    assert sum(ln.startswith("FOLD ") for ln in log.read_text().splitlines()) == 1
