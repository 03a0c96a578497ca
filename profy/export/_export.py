"""Export one trained model (mode, fold) of a run folder to ONNX, with references.

``torch.onnx.export(..., dynamo=True)`` with ``Dim("B")``/``Dim("T")`` on every input,
opset 20. Two traps of that exporter are guarded here: it may silently fix an axis it
cannot keep dynamic (so the saved graph's input dims are asserted symbolic), and a
second export in one process can come out with a fixed time axis (so
:func:`profy.export.export_models` runs each export in a fresh spawned process).
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from profy.contract.layout import (
    CHECKPOINTS_DIR,
    CONFIG_HASH_FILE,
    ONNX_DIR,
    checkpoint_name,
    onnx_name,
)
from profy.contract.model_io import TIME_AXIS, input_names, inputs_for, output_names

__all__ = ["OPSET", "ExportResult", "export_in_process"]

OPSET = 20


def _translations() -> dict:
    """aten ops the exporter should write as one ONNX op instead of its decomposition.

    ``aten.gelu`` (exact, erf form): ONNX ``Gelu`` (opset 20) instead of the five-node
    ``x * 0.5 * (1 + erf(x / sqrt 2))`` chain, which ONNX Runtime does not fuse in the
    order torch writes it; five passes over the audio CNN's largest tensors become one.
    """
    import torch
    from onnxscript import opset20 as op

    def gelu(self, approximate: str = "none"):
        return op.Gelu(self, approximate=approximate)

    return {torch.ops.aten.gelu.default: gelu}


@dataclass(frozen=True)
class ExportResult:
    """What one export wrote and how long it took."""

    mode: str
    fold: int
    onnx_path: str
    references_path: str
    seconds: float
    size_bytes: int
    sha256: str
    max_abs_error: float  # ORT vs eager over every reference case

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _symbolic_dims(proto: Any, names: tuple[str, ...]) -> dict[str, list[str | int]]:
    """Each graph input's dims (symbol name or int); raises if B or T came out fixed."""
    from profy.errors import ProfyError

    dims: dict[str, list[str | int]] = {}
    for inp in proto.graph.input:
        shape = inp.type.tensor_type.shape.dim
        dims[inp.name] = [d.dim_param if d.dim_param else int(d.dim_value) for d in shape]
    if tuple(dims) != names:
        raise ProfyError(f"exported inputs {list(dims)} differ from {list(names)}")
    for name, d in dims.items():
        for axis in (0, TIME_AXIS.get(name)):
            if axis is not None and not isinstance(d[axis], str):
                raise ProfyError(f"the exporter fixed axis {axis} of input {name!r} to {d[axis]} "
                                 f"(dims {d}); an op in the model is not shape-dynamic")
    return dims


def export_in_process(run_dir: str | Path, mode: str, fold: int, *, out_dir: str | Path | None
                      = None, tag: str | None = None, threads: int = 1) -> ExportResult:
    """Export ``mode``/``fold`` of ``run_dir`` in THIS process (call it in a fresh one).

    Writes ``<out_dir>/<mode>_fold<K>.onnx`` and ``.npz`` (default ``RUN/onnx``); if the
    exporter fails, its full output is left in ``<mode>_fold<K>.export.log`` instead.

    Raises:
        MissingInputError: checkpoint, normalization artifact or splits missing.
        ExportError: ``torch.onnx.export`` failed (one line: model, final error, log path).
        ProfyError: the checkpoint's config differs from the run's, or the exported graph
            lost a dynamic axis, or ORT disagrees with eager on the references (the .onnx
            and .npz just written are then removed).
    """
    import hashlib

    import onnx
    import torch

    import profy
    from profy.config import config_hash
    from profy.contract.atomic import atomic_write_bytes
    from profy.contract.hashing import file_sha256
    from profy.errors import ExportError, MissingInputError, ProfyError
    from profy.export._capture import captured_output, final_error
    from profy.export._graph import NormalizedModel
    from profy.export._references import MIN_FRAMES, held_out_ids, load_raw
    from profy.features import NormStats
    from profy.training import load_checkpoint

    started = time.perf_counter()
    torch.set_num_threads(threads)
    _quiet_exporter()
    run_dir = Path(run_dir).resolve()
    out_dir = Path(out_dir) if out_dir is not None else run_dir / ONNX_DIR
    ckpt_path = run_dir / CHECKPOINTS_DIR / checkpoint_name(mode, fold)
    ckpt = load_checkpoint(ckpt_path)
    if ckpt.mode != mode or ckpt.fold != fold:
        raise ProfyError(f"{ckpt_path}: holds mode={ckpt.mode} fold={ckpt.fold}")
    cfg_hash = config_hash(ckpt.config)
    run_hash_file = run_dir / CONFIG_HASH_FILE
    if run_hash_file.is_file() and run_hash_file.read_text().strip() != cfg_hash:
        raise ProfyError(f"{ckpt_path}: config hash {cfg_hash} differs from the run's "
                         f"{run_hash_file.read_text().strip()} ({run_hash_file})")
    norm_rel = f"norm_stats/fold_{fold}.json"
    if not (run_dir / norm_rel).is_file():
        raise MissingInputError(run_dir / norm_rel, "normalization artifact is missing")
    feats = ckpt.config.features
    stats = NormStats.from_json(run_dir / norm_rel, n_mels=feats.n_mels)
    wrapper = NormalizedModel(ckpt.build_model(), stats,
                              feature_config_hash=config_hash(feats),
                              normalization=feats.normalization).eval()
    names, outs = input_names(mode), output_names(mode)

    raw = load_raw(run_dir, held_out_ids(run_dir, fold), names)
    example = tuple(torch.from_numpy(raw[n][:2]) for n in names)  # B=2, T=frames
    B = torch.export.Dim("B", min=1, max=4096)
    T = torch.export.Dim("T", min=MIN_FRAMES, max=1 << 16)
    axes = {name: {axis: {"B": B, "T": T}[d] for axis, d in enumerate(dims) if d in ("B", "T")}
            for name, (dims, _) in inputs_for(mode).items()}
    log_path = (out_dir / onnx_name(mode, fold)).with_suffix(".export.log")
    try:
        with captured_output(log_path), _dynamic_rnn_decompositions(), \
                torch.inference_mode(False), torch.no_grad():
            program = torch.onnx.export(wrapper, example, dynamo=True, opset_version=OPSET,
                                        input_names=list(names), output_names=list(outs),
                                        dynamic_shapes=(tuple(axes[n] for n in names),),
                                        custom_translation_table=_translations(),
                                        optimize=True, verbose=False)
    except Exception as exc:
        raise ExportError(f"exporting {mode} fold {fold} of {run_dir} failed: "
                          f"{final_error(exc)} (full exporter output: {log_path})") from exc
    log_path.unlink()  # only a failure's output is worth keeping
    proto = program.model_proto
    dims = _symbolic_dims(proto, names)
    shapes = {n: [str(d) for d in dims[n]] for n in names}
    meta = {
        "tag": tag or "", "mode": mode, "fold": str(fold), "config_hash": cfg_hash,
        "feature_config_hash": config_hash(feats), "norm_path": norm_rel,
        "norm_sha256": file_sha256(run_dir / norm_rel), "normalization": feats.normalization,
        "sample_rate": str(feats.sample_rate), "n_mels": str(feats.n_mels),
        "frames": str(feats.frames), "hop_length": str(feats.hop_length),
        "input_names": ",".join(names), "output_names": ",".join(outs),
        "input_shapes": json.dumps(shapes, sort_keys=True), "class_labels": "amateur,pro",
        "checkpoint": f"{CHECKPOINTS_DIR}/{ckpt_path.name}",
        "checkpoint_sha256": file_sha256(ckpt_path),
        "producer": f"profy {profy.__version__}, torch {torch.__version__}, "
                    f"onnx {onnx.__version__}",
        "opset": str(OPSET), "references": onnx_name(mode, fold).replace(".onnx", ".npz"),
    }
    del proto.metadata_props[:]
    for key in sorted(meta):
        proto.metadata_props.add(key=key, value=meta[key])
    proto.producer_name, proto.producer_version = "profy", profy.__version__
    onnx.checker.check_model(proto, full_check=True)
    onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    data = proto.SerializeToString(deterministic=True)
    onnx_path = atomic_write_bytes(out_dir / onnx_name(mode, fold), data)
    try:
        ref_path, err = _references_and_parity(wrapper, raw, example, onnx_path, names, outs)
    except BaseException:
        # a model that failed its self-check must not look exported
        onnx_path.unlink(missing_ok=True)
        onnx_path.with_suffix(".npz").unlink(missing_ok=True)
        raise
    return ExportResult(mode=mode, fold=fold, onnx_path=str(onnx_path),
                        references_path=str(ref_path),
                        seconds=round(time.perf_counter() - started, 2), size_bytes=len(data),
                        sha256=hashlib.sha256(data).hexdigest(), max_abs_error=err)


def _references_and_parity(wrapper: Any, raw: dict[str, Any], example: tuple[Any, ...],
                           onnx_path: Path, names: tuple[str, ...], outs: tuple[str, ...]
                           ) -> tuple[Path, float]:
    """Write the reference cases (eager outputs) beside ``onnx_path`` and check ORT on them.

    Raises:
        ProfyError: ORT differs from eager beyond the parity tolerance.
    """
    import numpy as np
    import torch

    from profy.errors import ProfyError
    from profy.export._references import build_cases, write_references

    def eager(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            values = wrapper(*(torch.from_numpy(inputs[n]) for n in names))
        return {n: v.numpy() for n, v in zip(outs, values, strict=True)}

    cases = build_cases(raw, export_length=int(example[0].shape[1 if names[0] != "logmel"
                                                                  else 2]))
    ref_path = write_references(onnx_path.with_suffix(".npz"), cases, eager)
    err, within = _ort_parity(onnx_path, ref_path, names, outs)
    if not within:
        raise ProfyError(f"{onnx_path}: onnxruntime differs from eager by {err:.3g} (beyond "
                         f"{PARITY_ATOL} + {PARITY_RTOL} * |eager|)")
    return ref_path, err


def _dynamic_rnn_decompositions() -> contextlib.AbstractContextManager[None]:
    """Keep torch's ``while_loop`` LSTM decomposition in force for the WHOLE export.

    torch.onnx registers it only around graph capture (step 1/3). Step 2 re-traces the
    graph to decompose it, and the kept ``aten.lstm`` node's shapes are then recomputed by
    the default decomposition, a Python loop over the time axis (torch.export turns mkldnn
    off), unrolled at the example length. On a derived length such as the fused
    ``T_pad / fusion_stride`` the unrolled steps come out ``Min(L, T_pad // 560)`` long
    instead of 1, and a 2-layer BiLSTM (the paper head) fails at ``torch.stack``
    (pytorch/pytorch#193192). The graph keeps ONNX's native LSTM op either way.
    """
    try:
        from torch.export._patches import register_lstm_while_loop_decomposition
    except ImportError:  # a torch without it also lacks step 1's patch: nothing to extend
        return contextlib.nullcontext()
    return register_lstm_while_loop_decomposition()


def _quiet_exporter() -> None:
    """Silence the exporter's optional-op notices (torchvision) and axis-rename warnings."""
    import logging
    import warnings

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*axis name.*will not be used",
                            category=UserWarning)


# The self-check uses the default tolerance rule of guardrails' onnx.parity check, so an
# export that passes here passes there: float32 sums batched differently by ORT and torch
# differ by ~1e-5 relative on logits of a few units.
PARITY_ATOL, PARITY_RTOL = 1e-4, 1e-3


def _ort_parity(onnx_path: Path, ref_path: Path, names: tuple[str, ...],
                outs: tuple[str, ...]) -> tuple[float, bool]:
    """Max |ORT - eager| over every reference case, and whether every element lies within
    ``PARITY_ATOL + PARITY_RTOL * |eager|`` (a self-check before reporting success)."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.log_severity_level = 1, 3
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    worst, within = 0.0, True
    with np.load(ref_path) as ref:
        for case in ref["__cases__"].tolist():
            got = sess.run(list(outs), {n: ref[f"{case}.{n}"] for n in names})
            for name, value in zip(outs, got, strict=True):
                want = ref[f"{case}.{name}"]
                diff = np.abs(value.astype(np.float64) - want)
                worst = max(worst, float(np.max(diff)))
                within &= bool(np.all(diff <= PARITY_ATOL + PARITY_RTOL * np.abs(want)))
    return worst, within
