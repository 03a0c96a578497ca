"""``--engine spark``: the same GX suites through GX's Spark data source (pyspark, local
mode) reach the same verdicts, rule by rule, as the pandas engine."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import mutations as mut
import pytest
from conftest import failed_rules

pytestmark = [pytest.mark.spark, pytest.mark.slow]
pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("no Java runtime for Spark", allow_module_level=True)

CHECKS = ("data.audio_stats", "data.norm_stats", "data.splits", "audit.predictions",
          "audit.modality_weights", "audit.integrity")


@pytest.fixture(scope="module", autouse=True)
def _stop_spark_after_module():
    yield
    from guardrails.checks._gx import stop_spark

    stop_spark()


def test_spark_and_pandas_agree_on_a_broken_run(tiny_run, run_selected):
    mut.short_take(tiny_run, frames=100)
    mut.leak_heldout_take(tiny_run, fold=2)
    mut.player_on_both_sides(tiny_run, fold=1)
    mut.probability_out_of_range(tiny_run)
    mut.weights_not_summing(tiny_run)
    mut.drop_prediction(tiny_run, mode="sensor")
    pandas = run_selected(tiny_run, *CHECKS, engine="pandas")
    spark = run_selected(tiny_run, *CHECKS, engine="spark")
    expected = {
        "data.audio_stats": {"nonzero_frames.min"},
        "data.norm_stats": {"fold2.fit.no_heldout_takes", "fold2.fit.train_takes_only"},
        "data.splits": {"player.one_role_per_fold"},
        "audit.predictions": {"probability.range"},
        "audit.modality_weights": {"weights.sum_to_one"},
        "audit.integrity": {"heldout.predicted.sensor"},
    }
    assert {n: failed_rules(r) for n, r in pandas.items()} == expected
    assert {n: failed_rules(r) for n, r in spark.items()} == expected
    for name in CHECKS:  # same evidence, not only the same verdict
        counts = {e: [(r["rule"], r["unexpected_count"]) for r in res.details["rules"]]
                  for e, res in (("pandas", pandas[name]), ("spark", spark[name]))}
        assert counts["pandas"] == counts["spark"], name


def test_audit_cli_with_spark_engine(tiny_run_ro, tmp_path):
    script = tmp_path / "run.py"  # a script, not `python -c` (pyspark's doctest trap)
    script.write_text("import sys\nfrom guardrails.cli import main\n"
                      "code = main(sys.argv[1:])\n"
                      "print('TORCH', 'torch' in sys.modules)\nsys.exit(code)\n")
    proc = subprocess.run([sys.executable, str(script), "audit", "--engine", "spark", "--quiet",
                           str(tiny_run_ro / "predictions.parquet"), "--report-dir",
                           str(tmp_path / "r")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "TORCH False" in proc.stdout
    verdict = json.loads((tmp_path / "r" / "verdict.json").read_text())
    assert verdict["extra"]["engine"] == "spark" and verdict["verdict"] == "pass"
    assert (tmp_path / "r" / "gx" / "audit.predictions.json").is_file()
