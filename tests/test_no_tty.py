"""Output without a terminal (CI logs, ``| tee``): 80 columns, ids and paths never cut.

Each command runs as users run it in CI: a fresh process, stdout a pipe, ``COLUMNS=80``.
Every take id, path and message the command reports must appear whole on one line, so
it can be copied from the log.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from broken_inputs import DEFECTS

ENV = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True,
                          timeout=600, env=ENV, stdin=subprocess.DEVNULL)


def test_data_inspect_names_every_bad_take_in_full(tiny_corpus):
    from profy.data import build_manifest

    ids = build_manifest(tiny_corpus).table["sample_id"].to_pylist()[:3]
    broken = {}
    for sample_id, name in zip(ids, ("8bit", "one_sample", "csv_late"), strict=True):
        path = DEFECTS[name].apply(tiny_corpus / "playdata" / sample_id)
        broken[sample_id] = (path.relative_to(tiny_corpus).as_posix(), DEFECTS[name].words)
    proc = _run("profy.cli", "data", "inspect", str(tiny_corpus))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert "…" not in proc.stdout
    for sample_id, (rel, words) in broken.items():
        row = [line for line in lines if sample_id in line]  # id, path, problem: one line
        assert len(row) == 1 and rel in row[0] and words in row[0], proc.stdout
    assert str(tiny_corpus) in proc.stdout  # the corpus root in the title, whole


def test_guardrails_ci_verdict_keeps_paths_whole(tiny_run, tmp_path):
    long = tmp_path / ("a-long-folder-name-that-does-not-fit-in-eighty-columns" * 2)
    run = long / tiny_run.name
    shutil.move(str(tiny_run), run)
    (run / "audio_stats.parquet").unlink()
    proc = _run("guardrails.cli", "ci", str(run), "--report-dir", str(tmp_path / "report"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "…" not in proc.stdout
    missing = str(Path(run) / "audio_stats.parquet")
    assert any(missing in line and "FAIL" in line for line in proc.stdout.splitlines()), \
        proc.stdout
