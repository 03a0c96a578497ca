"""ONNX parity: dynamo export with a symbolic batch and time axis, then onnxruntime vs eager.

Each export runs in a fresh subprocess: a second dynamo export in one process can come
out with the time axis fixed to the example length. The subprocess saves the weights it
exported (safetensors-free: a plain ``state_dict`` read back with ``weights_only=True``)
so the parent compares against exactly that model. Tolerance: max abs error <= 1e-4 on
logits, probs and modality weights, at T in {64, 200} and B in {1, 5}, after exporting
at T=128, B=2 (opset 18).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnx", reason="onnx not installed (pip install onnx onnxscript)")
pytest.importorskip("onnxscript", reason="onnxscript not installed (needed by dynamo export)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")

import onnx  # noqa: E402

from profy.config import ModelConfig  # noqa: E402
from profy.models import UnifiedAttentionModel  # noqa: E402

pytestmark = pytest.mark.slow

OUTPUTS = ["logits", "probs", "modality_weights"]
TIME_AXIS = {"sensor": 1, "sensor_mask": 1, "logmel": 2, "audio_mask": 1}

_EXPORT_SCRIPT = textwrap.dedent("""
    import json, sys, time, torch
    from profy.config import ModelConfig
    from profy.models import UnifiedAttentionModel

    mode, out_dir, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    torch.manual_seed(0)
    model = UnifiedAttentionModel(ModelConfig(**overrides), mode)
    if model.gate is not None:  # its last layer starts at zero: make the gate do something
        torch.nn.init.normal_(model.gate.mlp[-1].weight, std=0.5)
        torch.nn.init.normal_(model.gate.mlp[-1].bias, std=0.5)
    model.eval()
    B, T = 2, 128
    batch, frames = torch.export.Dim("B"), torch.export.Dim("T")
    kwargs, shapes = {}, {}
    valid = torch.ones(B, T, dtype=torch.bool)
    if mode != "audio":
        kwargs.update(sensor=torch.randn(B, T, 88), sensor_mask=valid)
        shapes.update(sensor={0: batch, 1: frames}, sensor_mask={0: batch, 1: frames})
    if mode != "sensor":
        kwargs.update(logmel=torch.randn(B, 128, T), audio_mask=valid.clone())
        shapes.update(logmel={0: batch, 2: frames}, audio_mask={0: batch, 1: frames})
    if mode == "multimodal":
        kwargs["quality"] = torch.tensor([[30.0, 0.9, 0.3, -20.0, 0.0]] * B)
        shapes["quality"] = {0: batch}
    start = time.perf_counter()
    program = torch.onnx.export(model, args=(), kwargs=kwargs, dynamo=True,
                                dynamic_shapes=shapes, opset_version=18,
                                output_names=["logits", "probs", "modality_weights"])
    program.save(f"{out_dir}/model.onnx")
    torch.save(model.state_dict(), f"{out_dir}/weights.pt")
    print(f"EXPORT_SECONDS {time.perf_counter() - start:.1f}")
""")


def _inputs(mode: str, batch: int, frames: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(frames // 3, frames + 1, (batch,), generator=g)
    mask = torch.arange(frames)[None, :] < lengths[:, None]  # (B, T)
    kw: dict[str, torch.Tensor] = {}
    if mode != "audio":
        kw.update(sensor=torch.randn(batch, frames, 88, generator=g), sensor_mask=mask)
    if mode != "sensor":
        holes = torch.rand(batch, frames, generator=g) > 0.2
        kw.update(logmel=torch.randn(batch, 128, frames, generator=g), audio_mask=mask & holes)
    if mode == "multimodal":
        u = torch.rand(batch, 5, generator=g)
        kw["quality"] = torch.stack([u[:, 0] * 70 - 10, u[:, 1], u[:, 2], -60 * u[:, 3],
                                     0.02 * u[:, 4]], dim=-1)
    return kw


# (mode, ModelConfig overrides): the demo model in the two release modes, and the
# paper's BiLSTM head (LSTM export is its own code path in the exporter)
CASES = [("multimodal", {}), ("sensor", {}), ("multimodal", {"head": "bilstm"})]


@pytest.fixture(scope="module", params=CASES, ids=["multimodal", "sensor", "multimodal-bilstm"])
def exported(request, tmp_path_factory) -> tuple[str, Path, UnifiedAttentionModel]:
    mode, overrides = request.param
    out_dir = tmp_path_factory.mktemp(f"onnx_{mode}")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _EXPORT_SCRIPT, mode, str(out_dir), json.dumps(overrides)],
        capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-4000:]
    print(f"{mode} {overrides}: export subprocess {time.perf_counter() - start:.1f}s; "
          + next(line for line in proc.stdout.splitlines() if line.startswith("EXPORT_")))
    model = UnifiedAttentionModel(ModelConfig(**overrides), mode)
    model.load_state_dict(torch.load(out_dir / "weights.pt", weights_only=True))
    return mode, out_dir / "model.onnx", model.eval()


def test_graph_has_symbolic_batch_and_time(exported):
    mode, path, _ = exported
    graph = onnx.load(str(path)).graph
    expected = {"multimodal": {"sensor", "sensor_mask", "logmel", "audio_mask", "quality"},
                "sensor": {"sensor", "sensor_mask"}}[mode]
    assert {i.name for i in graph.input} == expected
    for inp in graph.input:
        dims = inp.type.tensor_type.shape.dim
        assert dims[0].dim_param and not dims[0].HasField("dim_value"), inp.name
        if inp.name in TIME_AXIS:  # the exporter must not have "fixed" T to 128
            time_dim = dims[TIME_AXIS[inp.name]]
            assert time_dim.dim_param and not time_dim.HasField("dim_value"), inp.name
    assert [o.name for o in graph.output] == OUTPUTS


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("frames", [64, 200])
def test_onnxruntime_matches_eager(exported, batch, frames):
    mode, path, model = exported
    kw = _inputs(mode, batch, frames, seed=batch * 1000 + frames)
    with torch.no_grad():
        want = model(**kw)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(OUTPUTS, {i.name: kw[i.name].numpy() for i in session.get_inputs()})
    for name, g, w in zip(OUTPUTS, got, want, strict=True):
        err = float((torch.from_numpy(g) - w).abs().max())
        assert err <= 1e-4, f"{mode} {name} B={batch} T={frames}: max abs error {err:.2e}"
