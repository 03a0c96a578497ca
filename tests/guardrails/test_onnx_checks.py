"""Torch-free ONNX checks on a real exported run (fixtures: onnx_run_ro / onnx_run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx import numpy_helper

from guardrails.checks.onnx import _errors
from guardrails.cli import main

pytestmark = pytest.mark.slow  # needs the session's exported models

ONNX_CHECKS = ("onnx.checker", "onnx.signature", "onnx.parity", "onnx.latency",
               "onnx.quantization")
FAST = {"onnx.latency": {"repeats": 3, "batch": 8}, "onnx.quantization": {"repeats": 2}}


def test_all_onnx_checks_pass_on_a_fresh_export(onnx_run_ro, run_selected):
    results = run_selected(onnx_run_ro, *ONNX_CHECKS, params=FAST)
    for name in ONNX_CHECKS:
        assert results[name].passed, (name, results[name].message)
    parity = results["onnx.parity"].details["models"]
    assert set(parity) == {"sensor_fold0", "audio_fold0", "multimodal_fold0"}
    for cases in parity.values():
        assert {"val", "batch1", "batch_many", "shortest", "odd_length"} <= set(cases)
        for case in cases.values():
            assert case["class_agreement"] == 1.0
    lat = results["onnx.latency"].details["models"]["multimodal_fold0"]
    assert lat["batch1_p50_ms"] > 0 and lat["throughput_per_s"] > 0
    q = results["onnx.quantization"].details["models"]["multimodal_fold0"]
    assert 0.0 <= q["agreement"] <= 1.0 and q["speedup"] > 0


def test_checks_skip_a_run_without_models(tiny_run_ro, run_selected):
    results = run_selected(tiny_run_ro, *ONNX_CHECKS)
    assert all(r.skipped for r in results.values())


def _rewrite(path: Path, edit) -> None:
    proto = onnx.load(str(path))
    edit(proto)
    path.write_bytes(proto.SerializeToString())


def test_scaled_weights_fail_parity(onnx_run, run_selected):
    def scale(proto):
        for init in proto.graph.initializer:
            arr = numpy_helper.to_array(init)
            if arr.dtype == np.float32 and arr.ndim >= 2:
                init.CopyFrom(numpy_helper.from_array(arr * 1.5, init.name))

    _rewrite(onnx_run / "onnx" / "multimodal_fold0.onnx", scale)
    res = run_selected(onnx_run, "onnx.parity")["onnx.parity"]
    assert not res.passed
    assert "multimodal_fold0" in res.message
    assert res.details["models"]["sensor_fold0"]["val"]["outputs"]["logits"]["within"]


def test_other_config_hash_fails_and_cli_exits_2(onnx_run, run_selected, tmp_path, capsys):
    path = onnx_run / "onnx" / "sensor_fold0.onnx"

    def rehash(proto):
        for p in proto.metadata_props:
            if p.key == "config_hash":
                p.value = "0" * 64

    _rewrite(path, rehash)
    res = run_selected(onnx_run, "onnx.signature")["onnx.signature"]
    assert not res.passed and "config_hash" in res.message and "sensor_fold0" in res.message
    code = main(["onnx", str(path), "--report-dir", str(tmp_path / "r"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert str(path) in err and "config_hash" in err


def test_truncated_model_is_a_clear_error(onnx_run, run_selected, tmp_path, capsys):
    path = onnx_run / "onnx" / "audio_fold0.onnx"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    res = run_selected(onnx_run, "onnx.checker")["onnx.checker"]
    assert not res.passed and "audio_fold0.onnx" in res.message
    code = main(["onnx", str(path), "--report-dir", str(tmp_path / "r"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert str(path) in err and ("truncated" in err or "corrupt" in err)
    assert "Traceback" not in err


def test_missing_model_exits_2(onnx_run, tmp_path, capsys):
    missing = onnx_run / "onnx" / "nope_fold9.onnx"
    assert main(["onnx", str(missing), "--report-dir", str(tmp_path / "r")]) == 2
    assert str(missing) in capsys.readouterr().err


def test_guardrails_onnx_runs_without_torch(onnx_run_ro, tmp_path):
    model = onnx_run_ro / "onnx" / "multimodal_fold0.onnx"
    code = ("import sys\n"
            "from guardrails.cli import main\n"
            f"rc = main(['onnx', {str(model)!r}, '--report-dir', {str(tmp_path / 'r')!r},"
            " '--quiet'])\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "sys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "r" / "verdict.json").is_file()


@pytest.mark.parametrize("scale", [0.0, 1.0])
@given(ref=st.lists(st.floats(-50, 50, width=32), min_size=1, max_size=20),
       noise=st.floats(0, 1e-3))
def test_tolerance_rule_property(scale, ref, noise):
    """An output within atol passes; one shifted by 10*atol beyond rtol*|ref| fails."""
    r = np.array(ref, dtype=np.float32)
    ok = _errors(r + np.float32(noise * 1e-1 * scale), r, atol=1e-4, rtol=1e-3)
    assert ok["within"] and ok["max_abs"] <= 1e-4 + 1e-6
    far = _errors(r + 1e-3 + 1e-3 * np.abs(r) * 2, r, atol=1e-4, rtol=1e-3)
    assert not far["within"]


# ---------------------------------------------------------------- evidence gaps (issue 18.7)

def _rewrite_references(npz: Path, how: str) -> None:
    with np.load(npz, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    if how == "no cases":
        arrays = {"__cases__": np.array([], dtype="<U8")}
    else:  # every case kept, each with zero rows
        arrays = {k: v if k == "__cases__" else v[:0] for k, v in arrays.items()}
    with npz.open("wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize("how", ["no cases", "empty cases"])
def test_references_with_nothing_to_compare_fail_parity(onnx_run, run_selected, tmp_path,
                                                         capsys, how):
    model = onnx_run / "onnx" / "audio_fold0.onnx"
    npz = model.with_suffix(".npz")
    _rewrite_references(npz, how)
    res = run_selected(onnx_run, "onnx.parity")["onnx.parity"]
    assert not res.passed and not res.skipped
    assert str(npz) in res.message and "zero" in res.message
    assert main(["onnx", str(model), "--report-dir", str(tmp_path / "r"), "--quiet",
                 "--skip-quantization"]) == 2
    assert str(npz) in capsys.readouterr().err


@pytest.mark.parametrize("change", ["other weights", "missing"])
def test_checkpoint_sha256_is_checked_against_the_run(onnx_run, run_selected, change):
    model = onnx_run / "onnx" / "sensor_fold0.onnx"
    ckpt = onnx_run / "checkpoints" / "sensor_fold0.safetensors"
    if change == "missing":
        ckpt.unlink()
    else:  # another fold's weights where the exported model's checkpoint was
        ckpt.write_bytes((onnx_run / "checkpoints" / "sensor_fold1.safetensors").read_bytes())
    res = run_selected(onnx_run, "onnx.signature")["onnx.signature"]
    assert not res.passed
    assert str(ckpt) in res.message and str(model) in res.message
    assert ("missing" if change == "missing" else "checkpoint_sha256") in res.message


def test_checkpoint_metadata_must_name_the_models_own_checkpoint(onnx_run, run_selected):
    model = onnx_run / "onnx" / "sensor_fold0.onnx"

    def elsewhere(proto):
        for p in proto.metadata_props:
            if p.key == "checkpoint":
                p.value = "checkpoints/sensor_fold1.safetensors"

    _rewrite(model, elsewhere)
    res = run_selected(onnx_run, "onnx.signature")["onnx.signature"]
    assert not res.passed and "checkpoints/sensor_fold1.safetensors" in res.message


# ---------------------------------------------------------------- measured channels (18.8)

def test_an_exported_graph_that_drops_mel_channels_fails_the_audio_gate(onnx_run,
                                                                         run_selected):
    gate = "gate.audio_channels"
    ok = run_selected(onnx_run, gate)[gate]
    assert ok.passed, ok.message
    assert ok.details["onnx_probe"]["multimodal_fold0"]["channels"] == 128
    assert set(ok.details["onnx_probe"]) == {"audio_fold0", "multimodal_fold0"}
    model = onnx_run / "onnx" / "multimodal_fold0.onnx"

    def drop_upper_half(proto):  # a reshape bug inside the graph; metadata unchanged
        keep = np.ones((1, 128, 1), dtype=np.float32)
        keep[:, 64:] = 0.0
        proto.graph.initializer.append(numpy_helper.from_array(keep, "keep_lower_mels"))
        for node in proto.graph.node:
            for i, name in enumerate(node.input):
                if name == "logmel":
                    node.input[i] = "logmel_kept"
        proto.graph.node.insert(0, onnx.helper.make_node(
            "Mul", ["logmel", "keep_lower_mels"], ["logmel_kept"]))

    _rewrite(model, drop_upper_half)
    res = run_selected(onnx_run, gate)[gate]
    assert not res.passed
    assert f"{model}: only 64 of 128 mel channels" in res.message
    assert res.details["onnx_probe"]["multimodal_fold0"]["dropped"] == list(range(64, 128))
    assert res.details["onnx_probe"]["audio_fold0"]["channels"] == 128
