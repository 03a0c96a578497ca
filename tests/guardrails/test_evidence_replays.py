"""Issue 18 items 1, 2, 4, 10, 11 on real run folders: the replays of ``guardrails ci RUN``
judge RUN's own exported models and name them; required smoke evidence; the first
benchmark compares nothing and says so; the smoke fold is chosen by validation score;
audio dropout is a structural property.

Two copies of the session's exported tiny run sit in one runs folder: ``old`` is the
tagged release (``mm-audiofix``, ``sensor-v1``) whose multimodal ONNX weights are scaled
(replaying it drifts from its training predictions), ``new`` is the candidate.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from guardrails.cli import main
from guardrails.replay._history import read_history

pytestmark = pytest.mark.slow
REPLAYS = ("replay.smoke", "replay.benchmark", "replay.robustness")


def _scale_onnx(path: Path, factor: float) -> None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.ndim == 2:
            init.CopyFrom(numpy_helper.from_array(arr * np.float32(factor), init.name))
    onnx.save(model, str(path))


@pytest.fixture
def two_runs(onnx_run_ro, tmp_path) -> tuple[Path, Path, Path]:
    """``(runs, old, new)``: ``old`` tagged mm-audiofix + sensor-v1 (fold 0) with a
    perturbed multimodal ONNX; ``new`` an untagged candidate with its own exports."""
    from profy.training import register_tag

    runs = tmp_path / "runs"
    old, new = runs / "experiment_20260101_000000", runs / "experiment_20260202_000000"
    for dst in (old, new):
        shutil.copytree(onnx_run_ro, dst, symlinks=True)
    register_tag(runs / "tags.json", "sensor-v1", old, mode="sensor", folds=(0,))
    register_tag(runs / "tags.json", "mm-audiofix", old, mode="multimodal", folds=(0,))
    _scale_onnx(old / "onnx" / "multimodal_fold0.onnx", 1.5)
    return runs, old, new


def _criteria(tmp_path: Path, **checks) -> str:
    path = tmp_path / f"crit_{len(list(tmp_path.glob('crit_*')))}.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "checks": checks}))
    return str(path)


def _verdict(report: Path) -> dict:
    return {c["name"]: c for c in json.loads((report / "verdict.json").read_text())["checks"]}


def _sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_ci_replays_the_candidates_own_models_and_names_them(two_runs, tmp_path):
    runs, old, new = two_runs
    rep = tmp_path / "rep"
    code = main(["ci", str(new), "--criteria", _criteria(tmp_path, **dict.fromkeys(REPLAYS, {})),
                 "--report-dir", str(rep), "--quiet"])
    checks = _verdict(rep)
    replays = {n: c for n, c in checks.items() if n.startswith("replay.")}
    assert {n.split("[")[0] for n in replays} >= {"replay.smoke.drift",
                                                 "replay.benchmark.training",
                                                 "replay.robustness.audio_dropout"}
    mm = new / "onnx" / "multimodal_fold0.onnx"
    for name, check in replays.items():
        details = check["details"]
        assert details["run"] == str(new) and details["candidate"] is True, name
        assert details["onnx_files"][str(mm)] == _sha(mm), name  # the file and its sha256
        assert str(old / "onnx" / "multimodal_fold0.onnx") not in details["onnx_files"], name
    # the old release's ONNX is perturbed: replaying it would drift; the candidate's does not
    assert checks["replay.smoke.drift"]["status"] == "pass", checks["replay.smoke.drift"]
    assert f"{new.name}/onnx/multimodal_fold0.onnx sha256 {_sha(mm)[:12]}" in \
        checks["replay.smoke.vs_baseline"]["message"]
    assert checks["replay.smoke.vs_baseline"]["details"]["baseline"] == "sensor-v1"
    assert code == (1 if any(c["status"] == "fail" for c in checks.values()) else 0)
    rows = read_history(runs / "replay_history.parquet").to_pylist()
    assert sorted(r["kind"] for r in rows) == ["benchmark", "robustness", "smoke"]
    for row in rows:  # the history names them too
        assert row["run_dir"] == str(new) and row["tag"] == new.name
        assert json.loads(row["metrics_json"])["evidence"]["onnx_files"][str(mm)] == _sha(mm)


def test_ci_without_the_candidates_onnx_is_red_though_the_tag_has_one(two_runs, tmp_path):
    runs, old, new = two_runs
    shutil.rmtree(new / "onnx")
    rep = tmp_path / "rep"
    crit = _criteria(tmp_path, **{"replay.smoke": {"required": True}, "replay.benchmark": {}})
    assert main(["ci", str(new), "--criteria", crit, "--report-dir", str(rep), "--quiet"]) == 1
    checks = _verdict(rep)
    smoke = checks["replay.smoke"]
    assert smoke["status"] == "fail"
    assert smoke["message"] == f"missing evidence: no onnx/ in {new}: run `profy export {new}`"
    assert checks["replay.benchmark"]["status"] == "skip"  # not required: listed, not red
    assert not (runs / "replay_history.parquet").exists()  # the old release was not replayed


def test_the_skip_test_honours_the_criterias_registry_and_baseline_tag(two_runs, tmp_path):
    from profy.training import register_tag

    runs, old, new = two_runs
    (runs / "tags.json").unlink()  # nothing beside the run: a registry kept elsewhere
    elsewhere = tmp_path / "registry" / "tags.json"
    register_tag(elsewhere, "sensor-old", old, mode="sensor", folds=(0,))
    rep = tmp_path / "rep"
    crit = _criteria(tmp_path, **{"replay.smoke": {"registry": str(elsewhere),
                                                   "baseline_tag": "sensor-old"}})
    main(["ci", str(new), "--criteria", crit, "--report-dir", str(rep), "--quiet"])
    checks = _verdict(rep)
    assert "replay.smoke" not in checks  # not skipped: it ran
    assert checks["replay.smoke.drift"]["status"] == "pass"
    assert checks["replay.smoke.vs_baseline"]["details"]["baseline"] == "sensor-old"
    # the default registry (beside the run) is absent: the skip names it and the fix
    crit = _criteria(tmp_path, **{"replay.smoke": {"baseline_tag": "sensor-old"}})
    main(["ci", str(new), "--criteria", crit, "--report-dir", str(rep), "--quiet"])
    skipped = _verdict(rep)["replay.smoke"]
    assert skipped["status"] == "skip" and "no tag 'sensor-old'" in skipped["message"]
    assert str(runs / "tags.json") in skipped["message"] and "profy tag" in skipped["message"]


def test_first_benchmark_compares_nothing_and_says_so(two_runs, tmp_path):
    runs, old, new = two_runs
    rep = tmp_path / "rep"
    crit = _criteria(tmp_path, **{"replay.benchmark": {}})
    assert main(["ci", str(new), "--criteria", crit, "--report-dir", str(rep), "--quiet"]) == 0
    ref = _verdict(rep)["replay.benchmark.reference"]
    path = runs / "replay_reference" / f"{new.name}.json"
    assert ref["status"] == "skip" and path.is_file()
    assert ref["message"].startswith(f"no reference to compare: reference recorded now at {path}")
    assert main(["ci", str(new), "--criteria", crit, "--report-dir", str(rep), "--quiet"]) == 0
    assert _verdict(rep)["replay.benchmark.reference"]["status"] == "pass"  # compared now
    required = _criteria(tmp_path, **{"replay.benchmark": {"required": True, "rebase": True}})
    assert main(["ci", str(new), "--criteria", required, "--report-dir", str(rep),
                 "--quiet"]) == 1
    ref = _verdict(rep)["replay.benchmark.reference"]
    assert ref["status"] == "fail"
    assert ref["message"].startswith("missing evidence: no reference to compare: reference "
                                     f"recorded now at {path}")
    # explicit replay of the tag, --rebase: a skip as well, never a pass
    code = main(["replay", "--benchmark", str(runs), "--rebase", "--report-dir", str(rep),
                 "--quiet"])
    ref = _verdict(rep)["replay.benchmark.reference"]
    assert code in (0, 1) and ref["status"] == "skip"
    assert "no reference to compare" in ref["message"] and "--rebase" in ref["message"]


def test_audio_dropout_is_a_structural_property_not_a_passed_replay(two_runs, tmp_path):
    runs, old, new = two_runs
    rep = tmp_path / "rep"
    main(["ci", str(new), "--criteria", _criteria(tmp_path, **{"replay.robustness": {}}),
          "--report-dir", str(rep), "--quiet"])
    checks = _verdict(rep)
    assert "replay.robustness[audio_dropout]" not in checks
    assert {"replay.robustness[clean]", "replay.robustness[snr_20db]"} <= set(checks)
    structural = checks["replay.robustness.audio_dropout"]
    assert structural["status"] == "pass" and structural["details"]["structural"] is True
    assert structural["message"].startswith("structural: audio weight 0 on empty mask, verified")
    assert structural["observed"]["max_audio_weight"] == 0.0
    gate = checks["replay.robustness.gate"]
    assert "audio_dropout" not in gate["expected"]  # not a probe that cannot fail
    crit = _criteria(tmp_path, **{"replay.robustness": {"must_hold": ["clean",
                                                                      "audio_dropout"]}})
    assert main(["ci", str(new), "--criteria", crit, "--report-dir", str(rep), "--quiet"]) == 2


def test_structural_result_fails_when_silent_audio_gets_weight():
    from guardrails.replay.robustness import _structural_result

    row = {"macro_f1": 0.5, "sensor_only_f1": 0.5}
    ok = _structural_result(np.array([[1.0, 0.0], [1.0, 0.0]]), row, "m")
    bad = _structural_result(np.array([[1.0, 0.0], [0.6, 0.4]]), row, "m")
    assert ok.passed and "verified on 2 takes" in ok.message
    assert not bad.passed and bad.observed["takes_with_audio_weight"] == 1
    assert "structural property broken" in bad.message


def test_smoke_fold_is_chosen_by_validation_never_by_held_out_score(tiny_run_ro, tmp_path):
    """The baseline's validation best (fold 2) is its held-out worst: the replay takes 2."""
    from guardrails.replay._setup import open_replay
    from profy.training import register_tag

    runs = tmp_path / "runs"
    run = runs / tiny_run_ro.name
    shutil.copytree(tiny_run_ro, run, symlinks=True)
    register_tag(runs / "tags.json", "sensor-v1", run, mode="sensor", folds=(0, 1, 2))
    register_tag(runs / "tags.json", "mm-audiofix", run, mode="multimodal", folds=(0, 1, 2))
    epochs = pq.read_table(run / "epochs.parquet")
    rows = epochs.to_pylist()
    for r in rows:
        if r["mode"] == "sensor" and r["best"]:
            r["val_macro_f1"] = 0.9 if r["fold"] == 2 else 0.2
    pq.write_table(pa.Table.from_pylist(rows, schema=epochs.schema), run / "epochs.parquet")
    results = json.loads((run / "complete_results.json").read_text())
    for k, row in results["modes"]["sensor"]["folds"].items():
        row["macro_f1"] = 0.0 if k == "2" else 1.0
    (run / "complete_results.json").write_text(json.dumps(results))
    (run / "onnx").mkdir()
    for k in (0, 1, 2):  # the candidate's exports (open_replay does not load them)
        (run / "onnx" / f"multimodal_fold{k}.onnx").write_bytes(b"")
    tagged = open_replay(runs, registry="", tag="mm-audiofix", baseline_tag="sensor-v1")
    assert tagged.fold == 2  # held-out best would be fold 0
    own = open_replay(run, registry="", tag="mm-audiofix", baseline_tag="sensor-v1",
                      candidate=True)
    for rp in (tagged, own):
        assert rp.fold == 2 and rp.selection_f1 == 0.9
        assert "validation" in rp.fold_choice and "held-out scores not consulted" in \
            rp.fold_choice
