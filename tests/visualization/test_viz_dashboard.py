"""The dashboard notebook runs headless (nbclient) on a real tiny run and draws its figures."""

import os
import shutil
import time

import pytest

from profy.errors import MissingInputError
from profy.visualization.dashboard import gate_log_summary, latest_run, notebook_path


def test_latest_run_picks_the_newest_finished_run(tiny_run_ro, tmp_path):
    runs = tmp_path / "runs"
    old, new = runs / "experiment_20200101_000000", runs / "experiment_20300101_000000"
    shutil.copytree(tiny_run_ro, old)
    shutil.copytree(tiny_run_ro, new)
    os.utime(old / "complete_results.json", (1, 1))
    (runs / "experiment_20990101_000000").mkdir()  # interrupted: no results, skipped
    assert latest_run(runs) == new.resolve()
    assert latest_run(old) == old.resolve()  # a run folder itself
    with pytest.raises(MissingInputError, match="no finished run folder"):
        latest_run(runs / "experiment_20990101_000000")
    with pytest.raises(MissingInputError, match="runs folder not found"):
        latest_run(tmp_path / "absent")


def test_gate_log_summary_means(tiny_run_ro):
    import pyarrow.parquet as pq

    frame = pq.read_table(tiny_run_ro / "gate_log.parquet").to_pandas()
    summary = gate_log_summary(tiny_run_ro)
    assert summary["takes"].sum() == len(frame)
    (fold, epoch), row = next(iter(summary.iterrows()))
    part = frame[(frame["fold"] == fold) & (frame["epoch"] == epoch)]
    assert row["sensor_weight"] == pytest.approx(part["sensor_weight"].mean())
    assert row["sensor_weight_min"] == pytest.approx(part["sensor_weight"].min())


def test_dashboard_notebook_executes_and_draws(tiny_run_ro, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run_ro, runs / tiny_run_ro.name)
    monkeypatch.setenv("PROFY_RUNS", str(runs))
    monkeypatch.delenv("PROFY_RUN", raising=False)
    nb = nbformat.read(notebook_path(), as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored clean
    start = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 3  # fold variance, weight distribution, gate vs quality
    text = " ".join(str(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert str((runs / tiny_run_ro.name).resolve()) in text  # it found the run
    assert "not gated yet" in text
    html = " ".join(str(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert "multimodal" in html and "sensor_weight_min" in html
    assert time.perf_counter() - start < 300
