"""End-to-end replays on a real tiny run with real ONNX exports and real onnxruntime.

One module fixture copies the session's exported tiny mm-audiofix run (``onnx_run_ro``:
``profy.export`` models of fold 0) into a runs folder and tags its fold-0 multimodal and
sensor-only models ``mm-audiofix`` and ``sensor-v1``. Tests that break something work on
a private copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from guardrails.cli import main
from guardrails.replay._history import read_history

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tagged(onnx_run_ro, tmp_path_factory):
    """``(runs, run, fold)``: the shared exported tiny run (fold 0 of every mode, session
    fixture shared with the ONNX tests) in a runs folder, fold 0 tagged ``sensor-v1``
    (sensor) and ``mm-audiofix`` (multimodal). With one tagged fold, fold 0 is the
    baseline's best tagged sensor-only fold."""
    from profy.training import register_tag

    runs = tmp_path_factory.mktemp("replay") / "runs"
    run = runs / onnx_run_ro.name
    shutil.copytree(onnx_run_ro, run)
    register_tag(runs / "tags.json", "sensor-v1", run, mode="sensor", folds=(0,))
    register_tag(runs / "tags.json", "mm-audiofix", run, mode="multimodal", folds=(0,))
    return runs, run, 0


def _private(tagged, tmp_path) -> tuple[Path, Path]:
    """A copy of the tagged runs folder whose registry points at the copy."""
    runs, run, _ = tagged
    dst = tmp_path / "runs"
    shutil.copytree(runs, dst, ignore=shutil.ignore_patterns("replay_*", "guardrails"))
    reg = json.loads((dst / "tags.json").read_text())
    for entry in reg["tags"].values():
        entry["run"] = str(dst / run.name)
    (dst / "tags.json").write_text(json.dumps(reg))
    return dst, dst / run.name


def _verdict(report: Path) -> dict:
    return {c["name"]: c for c in json.loads((report / "verdict.json").read_text())["checks"]}


def test_smoke_and_benchmark_pass_and_history_grows(tagged, tmp_path):
    runs, run, fold = tagged
    hist, rep = tmp_path / "history.parquet", tmp_path / "rep"
    args = [str(runs), "--history", str(hist), "--report-dir", str(rep), "--quiet"]
    assert main(["replay", "--smoke", *args, "--junit", str(tmp_path / "j.xml")]) == 0
    checks = _verdict(rep)
    drift = checks["replay.smoke.drift"]
    assert drift["status"] == "pass" and drift["observed"]["agreement"] == 1.0
    assert drift["observed"]["max_prob_drift"] <= 1e-3
    assert checks["replay.smoke.vs_baseline"]["details"]["fold"] == fold
    assert (tmp_path / "j.xml").is_file()
    assert read_history(hist).num_rows == 1
    assert main(["replay", "--benchmark", *args]) == 0
    first = _verdict(rep)["replay.benchmark.reference"]  # nothing compared yet: a skip
    assert first["status"] == "skip" and "no reference to compare" in first["message"]
    assert main(["replay", "--benchmark", *args]) == 0
    assert "reproduces its reference" in _verdict(rep)["replay.benchmark.reference"]["message"]
    table = read_history(hist)
    assert table.num_rows == 3
    assert table.column("kind").to_pylist() == ["smoke", "benchmark", "benchmark"]
    assert len(set(table.column("data_sha256").to_pylist()[1:])) == 1

    ref_file = tmp_path / "replay_reference" / "mm-audiofix.json"
    ref = json.loads(ref_file.read_text())
    (fold_ref,) = ref["folds"].values()
    fold_ref["latency_ms"] /= 50.0  # a reference 50x faster: today's latency regressed
    fold_ref["prob_pro"][0] += 0.01  # and one take's probability moved
    ref_file.write_text(json.dumps(ref))
    assert main(["replay", "--benchmark", *args]) == 1
    msg = _verdict(rep)["replay.benchmark.reference"]["message"]
    assert "x the reference" in msg and "P(pro) drifts by 1.00e-02" in msg
    assert main(["replay", "--benchmark", *args, "--rebase"]) == 0
    assert read_history(hist).column("verdict").to_pylist()[-2:] == ["fail", "pass"]


def test_robustness_levels_agree_with_smoke_and_report_the_gate(tagged, tmp_path):
    runs, run, fold = tagged
    hist, rep = tmp_path / "history.parquet", tmp_path / "rep"
    args = [str(runs), "--history", str(hist), "--report-dir", str(rep), "--quiet"]
    assert main(["replay", "--smoke", *args]) == 0
    smoke = _verdict(rep)["replay.smoke.vs_baseline"]["observed"]
    code = main(["replay", "--robustness", *args])
    checks = _verdict(rep)
    levels = json.loads(read_history(hist).column("metrics_json")[1].as_py())["levels"]
    assert set(levels) == {"clean", "snr_30db", "snr_20db", "snr_10db", "snr_0db",
                           "audio_dropout", "keys_10pct", "keys_25pct"}
    # the clean level is the smoke replay; the sensor-only ONNX reproduces training
    assert levels["clean"]["macro_f1"] == pytest.approx(smoke["multimodal_f1"])
    assert levels["clean"]["sensor_only_f1"] == pytest.approx(smoke["sensor_only_f1"])
    assert levels["audio_dropout"]["audio_share"] < levels["clean"]["audio_share"]
    assert levels["snr_30db"]["sensor_only_f1"] == levels["clean"]["sensor_only_f1"]
    failed = [n for n, c in checks.items() if c["status"] == "fail"]
    assert code == (1 if failed else 0)
    for name in ("clean", "snr_20db"):
        row, c = levels[name], checks[f"replay.robustness[{name}]"]
        assert (c["status"] == "pass") == (row["macro_f1"] >= row["sensor_only_f1"])
        if c["status"] == "fail":
            assert "multimodal falls below sensor-only" in c["message"]
    # audio dropout: a structural property (audio weight 0 on an empty mask), not a replay
    assert "replay.robustness[audio_dropout]" not in checks
    assert checks["replay.robustness.audio_dropout"]["message"].startswith("structural:")
    gate = checks["replay.robustness.gate"]
    assert "gate audio share: clean" in gate["message"]


def _scale_onnx(path: Path, factor: float) -> None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.ndim == 2:  # linear/attention weights
            init.CopyFrom(numpy_helper.from_array(arr * np.float32(factor), init.name))
    onnx.save(model, str(path))


def test_perturbed_model_fails_with_the_reason(tagged, tmp_path):
    runs, run = _private(tagged, tmp_path)
    _scale_onnx(run / "onnx" / f"multimodal_fold{tagged[2]}.onnx", 1.5)
    rep = tmp_path / "rep"
    assert main(["replay", "--smoke", str(runs), "--report-dir", str(rep), "--quiet"]) == 1
    drift = _verdict(rep)["replay.smoke.drift"]
    assert drift["status"] == "fail" and "P(pro) drifts by" in drift["message"]
    assert read_history(runs / "replay_history.parquet").column("verdict").to_pylist() == [
        "fail"]


def _private_cache(run: Path, tmp_path: Path):
    """Point the copy's feature index at a private copy of the cache; returns the reader."""
    from guardrails.replay._features import CachedFeatures

    index = run / "features" / "feature_index.parquet"
    table = pq.read_table(index)
    cache = tmp_path / "cache"
    shutil.copytree(table.schema.metadata[b"cache_dir"].decode(), cache)
    meta = {**table.schema.metadata, b"cache_dir": str(cache).encode()}
    pq.write_table(table.replace_schema_metadata(meta), index)
    return CachedFeatures(index)


def test_perturbed_cached_features_fail_with_the_reason(tagged, tmp_path):
    from safetensors.numpy import load, save

    from guardrails.replay._features import _safetensors_metadata, payload_sha256
    from guardrails.replay._setup import held_out_takes

    runs, run = _private(tagged, tmp_path)
    feats = _private_cache(run, tmp_path)
    takes = sorted(held_out_takes(run, tagged[2]))
    for sid in takes:  # rewritten consistently: valid checksum, other features
        path = feats.entry_path(sid)
        raw = path.read_bytes()
        arrays, meta = load(raw), _safetensors_metadata(raw)
        # +6 dB on every log-mel cell (the model is nearly blind to sensor scale and offset:
        # its sensor features are per-take relative, so a sensor change would not show)
        arrays["logmel"] = arrays["logmel"] + np.float32(6.0)
        meta["payload_sha256"] = payload_sha256(arrays)
        path.write_bytes(save(arrays, metadata=meta))
    rep = tmp_path / "rep"
    assert main(["replay", "--smoke", str(runs), "--report-dir", str(rep), "--quiet"]) == 1
    assert "replay drifts from mm-audiofix" in _verdict(rep)["replay.smoke.drift"]["message"]

    entry = feats.entry_path(takes[0])
    data = bytearray(entry.read_bytes())
    data[-5] ^= 0x40  # a flipped bit in the cache: named, never replayed
    entry.write_bytes(bytes(data))
    assert main(["replay", "--smoke", str(runs), "--report-dir", str(rep), "--quiet"]) == 1
    (check,) = _verdict(rep).values()
    assert str(entry) in check["message"] and "checksum" in check["message"]


def test_bad_input_is_exit_2(tagged, tmp_path, capsys):
    runs, run = _private(tagged, tmp_path)
    rep = ["--report-dir", str(tmp_path / "rep"), "--quiet"]
    assert main(["replay", "--smoke", str(runs), "--tag", "nope", *rep]) == 2
    assert "unknown tag 'nope'" in capsys.readouterr().err
    assert main(["replay", "--smoke", str(tmp_path), *rep]) == 2
    assert "tags.json" in capsys.readouterr().err
    ckpt = run / "checkpoints" / f"sensor_fold{tagged[2]}.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:-1] + b"\x00")
    assert main(["replay", "--robustness", str(runs), *rep]) == 2
    assert "changed since it was tagged" in capsys.readouterr().err


def test_two_concurrent_replays_both_land(tagged, tmp_path):
    runs, _, _ = tagged
    hist = tmp_path / "history.parquet"
    cmd = [sys.executable, "-m", "guardrails.cli", "replay", "--smoke", str(runs), "--history",
           str(hist), "--quiet"]
    procs = [subprocess.Popen([*cmd, "--report-dir", str(tmp_path / f"r{i}")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for i in range(2)]
    outs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert read_history(hist).num_rows == 2


def test_registered_replays_skip_without_tags_and_run_with_them(tagged, tiny_run_ro, tmp_path):
    from guardrails._context import RunContext
    from guardrails._criteria import load_criteria
    from guardrails._registry import run_checks

    crit = load_criteria()  # the release gate: the smoke replay is required evidence
    found = {r.name: r for r in run_checks(RunContext(tiny_run_ro, report_dir=tmp_path / "a"),
                                           crit, categories=["replay"])}
    assert set(found) == {"replay.smoke", "replay.benchmark", "replay.robustness"}
    hint = f"no onnx/ in {tiny_run_ro}: run `profy export {tiny_run_ro}`"
    assert found["replay.smoke"].status == "fail"
    assert found["replay.smoke"].message == f"missing evidence: {hint}"
    for name in ("replay.benchmark", "replay.robustness"):
        assert found[name].skipped and found[name].message == f"skipped: {hint}"
    runs, run = _private(tagged, tmp_path)
    ran = run_checks(RunContext(run, report_dir=tmp_path / "b"), crit, names=["replay.smoke"])
    assert [r.status for r in ran] == ["pass", "pass"]
    assert read_history(runs / "replay_history.parquet").num_rows == 1


def test_ci_lanes_give_the_same_verdict_as_one_check_after_another(tagged, tmp_path):
    from guardrails._registry import REGISTRY

    runs, run = _private(tagged, tmp_path)
    verdicts = {}
    for jobs in (1, 2):
        rep = tmp_path / f"rep{jobs}"
        code = main(["ci", str(run), "--report-dir", str(rep), "--jobs", str(jobs), "--quiet"])
        verdicts[jobs] = (code, _verdict(rep))
    (code1, one), (code2, two) = verdicts[1], verdicts[2]
    assert code1 == code2 and list(one) == list(two)
    assert any(REGISTRY[n].lane == "inference" and c["status"] != "skip" for n, c in two.items()
               if n in REGISTRY), "the tagged run must exercise the inference lane"
    for name, check in one.items():
        if name == "replay.benchmark.reference":  # the first ci recorded it, the second compares
            assert (check["status"], two[name]["status"]) == ("skip", "pass")
            continue
        assert two[name]["status"] == check["status"], name
        spec = REGISTRY.get(name.split("[")[0]) or REGISTRY[name.rsplit(".", 1)[0]]
        if spec.lane != "timed":  # timed checks observe seconds, which differ run to run
            assert two[name]["observed"] == check["observed"], name
    assert read_history(runs / "replay_history.parquet").num_rows == 6  # 3 replays x 2 runs


def test_ci_history_option_routes_replay_rows_away_from_the_registry(tagged, tmp_path):
    runs, run = _private(tagged, tmp_path)
    history = tmp_path / "reports" / "replay_history.parquet"  # e.g. runs/ mounted read-only
    code = main(["ci", str(run), "--report-dir", str(tmp_path / "rep"), "--quiet",
                 "--history", str(history)])
    replays = {n: c["status"] for n, c in _verdict(tmp_path / "rep").items()
               if n.startswith("replay.")}
    # only the first benchmark's reference skips (nothing to compare yet, recorded now)
    skipped = [n for n, s in replays.items() if s == "skip"]
    assert code in (0, 1) and replays and skipped == ["replay.benchmark.reference"], replays
    assert read_history(history).num_rows == 3  # smoke, benchmark, robustness
    assert not (runs / "replay_history.parquet").exists()
