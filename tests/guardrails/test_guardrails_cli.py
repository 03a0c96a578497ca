"""The ``guardrails data / audit / ci`` commands, run as a user would (a subprocess), with
exit codes 0/1/2, every output file, and no torch in ``sys.modules`` afterwards."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import mutations as mut
import yaml
from junitparser import JUnitXml

from guardrails.report import load_schema

MY_CHECKS = ("data.audio_stats", "data.norm_stats", "data.splits", "audit.predictions",
             "audit.splits", "audit.modality_weights", "audit.audio_stats", "audit.gate_log",
             "audit.epochs", "audit.manifest", "audit.feature_index", "audit.integrity")
RUNNER = """
import json, sys
from guardrails.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.split(".")[0] == "torch" or m.startswith(
    ("profy.training", "profy.models", "profy.features")))
print("__RESULT__" + json.dumps({"code": code, "heavy": heavy}))
"""


def guardrails(tmp_path: Path, *args: str) -> tuple[int, str, list[str]]:
    """Run ``guardrails ARGS`` in a fresh interpreter; (exit code, output, heavy modules).

    A script file, not ``python -c``: with pyspark installed, ``-c`` can exit early.
    """
    script = tmp_path / "run_guardrails.py"
    script.write_text(RUNNER)
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=600)
    out = proc.stdout + proc.stderr
    marker = [line for line in proc.stdout.splitlines() if line.startswith("__RESULT__")]
    if not marker:  # argparse exits before the marker: usage error
        return proc.returncode, out, []
    result = json.loads(marker[-1][len("__RESULT__"):])
    assert proc.returncode == 0, out  # the runner itself finished
    return result["code"], out, result["heavy"]


def _criteria(tmp_path: Path) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "checks": dict.fromkeys(MY_CHECKS, {})}))
    return path


def test_ci_passes_on_a_real_run_without_torch(tiny_run_ro, tmp_path):
    report = tmp_path / "report"
    code, out, heavy = guardrails(tmp_path, "ci", str(tiny_run_ro), "--criteria",
                                  str(_criteria(tmp_path)), "--report-dir", str(report),
                                  "--junit", str(tmp_path / "ci.xml"),
                                  "--markdown", str(tmp_path / "pr.md"))
    assert code == 0, out
    assert heavy == []
    verdict = json.loads((report / "verdict.json").read_text())
    jsonschema.validate(verdict, load_schema())
    assert verdict["verdict"] == "pass"
    assert sorted(c["name"] for c in verdict["checks"]) == sorted(MY_CHECKS)
    assert verdict["extra"]["command"] == "ci" and verdict["criteria_source"].endswith("mine.yaml")
    cases = [case.name for suite in JUnitXml.fromfile(str(tmp_path / "ci.xml")) for case in suite]
    assert sorted(cases) == sorted(MY_CHECKS)
    assert "PASS" in (tmp_path / "pr.md").read_text() and "verdict: PASS" in out
    assert (report / "gx" / "data.splits.json").is_file()
    assert not (tiny_run_ro / "guardrails").exists()


def test_data_fails_on_leakage_without_torch(tiny_run, tmp_path):
    mut.leak_heldout_take(tiny_run, fold=1)
    code, out, heavy = guardrails(tmp_path, "data", str(tiny_run))
    assert code == 1 and heavy == []
    assert "data.norm_stats" in out and "verdict: FAIL" in out
    verdict = json.loads((tiny_run / "guardrails" / "verdict.json").read_text())  # default dir
    assert [c["status"] for c in verdict["checks"] if c["name"] == "data.norm_stats"] == ["fail"]


def test_audit_files_and_folders(tiny_run, tmp_path):
    bad = mut.truncate(tiny_run, "predictions.parquet", keep=0.6)
    code, out, heavy = guardrails(tmp_path, "audit", str(bad), str(tiny_run / "splits.parquet"),
                                  "--report-dir", str(tmp_path / "r"), "--quiet")
    assert code == 1 and heavy == []
    verdict = json.loads((tmp_path / "r" / "verdict.json").read_text())
    status = {c["name"]: (c["status"], c["message"]) for c in verdict["checks"]}
    assert status["audit.predictions [1:predictions.parquet]"][0] == "fail"
    assert str(bad) in status["audit.predictions [1:predictions.parquet]"][1]
    assert status["audit.splits [2:splits.parquet]"][0] == "pass"


def test_bad_input_exits_2_with_one_line(tiny_run, tmp_path):
    code, out, _ = guardrails(tmp_path, "audit", str(tmp_path / "nope.parquet"))
    assert code == 2 and "nope.parquet" in out and "Traceback" not in out
    (tiny_run / "splits.parquet").unlink()
    code, out, _ = guardrails(tmp_path, "data", str(tiny_run), "--report-dir",
                              str(tmp_path / "r"))
    assert code == 2 and "splits.parquet" in out and "Traceback" not in out
    # in ci the same missing file is a failing check, never a pass
    code, out, _ = guardrails(tmp_path, "ci", str(tiny_run), "--criteria",
                              str(_criteria(tmp_path)), "--report-dir", str(tmp_path / "r2"))
    assert code == 1
    verdict = json.loads((tmp_path / "r2" / "verdict.json").read_text())
    failed = {c["name"]: c["message"] for c in verdict["checks"] if c["status"] == "fail"}
    assert {"data.splits", "data.norm_stats", "audit.splits", "audit.integrity"} == set(failed)
    assert all("splits.parquet" in m for m in failed.values())


def test_unwritable_report_folder_asks_for_report_dir(tiny_run, tmp_path):
    (tiny_run / "guardrails").write_text("a file where the report folder would go")
    code, out, _ = guardrails(tmp_path, "data", str(tiny_run))
    assert code == 2 and "--report-dir" in out and "Traceback" not in out


def test_unknown_criteria_key_exits_2(tiny_run_ro, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nchecks:\n  data.audio_stats: {min_frames: 3}\n")
    code, out, _ = guardrails(tmp_path, "ci", str(tiny_run_ro), "--criteria", str(path),
                              "--report-dir", str(tmp_path / "r"))
    assert code == 2 and "min_frames" in out


def test_checks_command_lists_these_checks_without_torch(tmp_path):
    code, out, heavy = guardrails(tmp_path, "checks", "--json")
    assert code == 0 and heavy == []
    listed = json.loads(out.split("__RESULT__")[0])
    assert set(MY_CHECKS) <= set(listed)
    assert listed["data.audio_stats"]["params"]["min_nonzero_frames"] == 120


def test_console_entry_keeps_exit_codes_output_and_atexit_handlers(tiny_run, tmp_path):
    """``console_main`` leaves with ``os._exit``: nothing printed, no atexit work, no code lost."""
    marker = tmp_path / "atexit-ran"
    script = tmp_path / "console.py"
    script.write_text("import atexit, pathlib, sys\n"
                      f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
                      "from guardrails.cli import console_main\nconsole_main()\n")

    def run(*args: str) -> subprocess.CompletedProcess:
        marker.unlink(missing_ok=True)
        return subprocess.run([sys.executable, str(script), *args], capture_output=True,
                              text=True, timeout=600)

    proc = run("checks", "--json")  # a long stdout through a pipe arrives whole
    assert proc.returncode == 0 and set(MY_CHECKS) <= set(json.loads(proc.stdout))
    assert marker.read_text() == "yes"
    proc = run("audit", str(tmp_path / "nope.parquet"))
    assert proc.returncode == 2 and "nope.parquet" in proc.stderr and marker.exists()
    (tiny_run / "splits.parquet").unlink()
    proc = run("ci", str(tiny_run), "--criteria", str(_criteria(tmp_path)), "--report-dir",
               str(tmp_path / "r"))
    assert proc.returncode == 1 and marker.exists()
    assert json.loads((tmp_path / "r" / "verdict.json").read_text())["exit_code"] == 1


LEGACY_BUGS = ("gate.norm_fit_train_only", "gate.best_checkpoint", "gate.global_normalization",
               "gate.audio_channels", "gate.sensor_weight_clamp")


def test_default_ci_fails_legacy_on_the_plan_guards_and_gate_compares_without_torch(
        tiny_run_ro, tiny_legacy_run_ro, tmp_path):
    """The whole default criteria (every gate) in a fresh process, on both profiles."""
    failed = {}
    for name, run in (("mm", tiny_run_ro), ("legacy", tiny_legacy_run_ro)):
        report = tmp_path / name
        code, out, heavy = guardrails(tmp_path, "ci", str(run), "--report-dir", str(report))
        assert code == 1 and heavy == [], out  # tiny runs miss the F1 targets: red, no torch
        checks = json.loads((report / "verdict.json").read_text())["checks"]
        failed[name] = {c["name"] for c in checks if c["status"] == "fail"}
        # the release gate: no onnx/ in the run is missing evidence, named with its fix
        missing = {c["name"] for c in checks if c["message"].startswith(
            f"missing evidence: no onnx/ in {run}: run `profy export {run}`")}
        assert {"onnx.checker", "onnx.parity", "replay.smoke"} <= missing & failed[name], out
        assert "missing evidence" in (report / "summary.md").read_text()
    assert set(LEGACY_BUGS) <= failed["legacy"], failed["legacy"]
    assert not set(LEGACY_BUGS) & failed["mm"], failed["mm"]
    code, out, heavy = guardrails(tmp_path, "gate", str(tiny_run_ro), "--baseline",
                                  str(tiny_legacy_run_ro), "--report-dir", str(tmp_path / "g"))
    assert code in (0, 1) and heavy == [], out
    assert "baseline.f1_delta" in out and "Traceback" not in out


def test_replay_history_and_schemas_commands_import_no_torch(onnx_run_ro, tmp_path):
    from profy.training import register_tag

    runs = tmp_path / "runs"
    shutil.copytree(onnx_run_ro, runs / onnx_run_ro.name)
    register_tag(runs / "tags.json", "sensor-v1", runs / onnx_run_ro.name, mode="sensor",
                 folds=(0,))
    register_tag(runs / "tags.json", "mm-audiofix", runs / onnx_run_ro.name,
                 mode="multimodal", folds=(0,))
    history = tmp_path / "history.parquet"
    for args in (("replay", "--smoke", str(runs), "--history", str(history), "--report-dir",
                  str(tmp_path / "r1")),
                 ("replay", "--robustness", str(runs), "--history", str(history),
                  "--report-dir", str(tmp_path / "r2")),
                 ("history", str(history)),
                 ("schemas", "--json")):
        code, out, heavy = guardrails(tmp_path, *args)
        assert code in (0, 1) and heavy == [], (args, out)
    assert "Traceback" not in out and history.exists()


def test_data_docs_pages_for_every_suite_and_an_index(tiny_run_ro, tmp_path):
    from guardrails.cli import main

    report = tmp_path / "r"
    assert main(["data", str(tiny_run_ro), "--report-dir", str(report), "--quiet",
                 "--data-docs"]) in (0, 1)
    results = sorted(p.stem for p in (report / "gx").glob("*.json"))
    pages = sorted(p.stem for p in (report / "gx" / "docs").glob("*.html") if p.stem != "index")
    assert results and pages == results  # one GX page per validation result kept
    page = (report / "gx" / "docs" / "data.splits.html").read_text()
    assert "Expectation Validation Result" in page and "data.splits" in page
    index = (report / "gx" / "docs" / "index.html").read_text()
    assert all(f"gx/docs/{name}.html" in index for name in pages)
    verdict = json.loads((report / "verdict.json").read_text())
    assert verdict["files"]["data_docs"] == str(report / "gx" / "docs" / "index.html")
    plain = tmp_path / "plain"  # without the flag (and after it): JSON only
    main(["data", str(tiny_run_ro), "--report-dir", str(plain), "--quiet"])
    assert (plain / "gx").is_dir() and not (plain / "gx" / "docs").exists()
