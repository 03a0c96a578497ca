"""Torch-free access to a run's ONNX models and their reference cases (onnx + onnxruntime).

``RUN/onnx/<mode>_fold<K>.onnx`` with ``metadata_props`` written by ``profy export`` and
``<mode>_fold<K>.npz`` beside it: cases named in ``__cases__``, each input/output under
``<case>.<name>``. A missing, truncated or corrupt file raises
:class:`~guardrails.errors.ArtifactError` naming it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from guardrails.errors import ArtifactError
from profy.contract.layout import ONNX_DIR

__all__ = ["OnnxArtifact", "audio_channels_reaching", "find_models", "session", "time_runs"]

CASES_KEY = "__cases__"
PROBE_FRAMES = 128  # probe window: from the take's first valid audio frame (export T >= 16)
PROBE_STEP = 5.0  # raw log-mel units added to the one probed channel
PROBE_CONTROLS = 3  # unchanged copies of the probe take at the batch's end (noise floor)


def find_models(run_dir: Path) -> list[Path]:
    """The run's ``onnx/*.onnx`` files, sorted."""
    return sorted((Path(run_dir) / ONNX_DIR).glob("*.onnx"))


def session(path: Path, *, threads: int = 1) -> Any:
    """An onnxruntime CPU session with fixed intra-op threads (inter-op 1, sequential)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT has its own exception types for a bad file
        raise ArtifactError(path, f"onnxruntime cannot load the model ({exc})") from None


def time_runs(sess: Any, feeds: dict[str, np.ndarray], *, repeats: int, warmup: int = 2
              ) -> np.ndarray:
    """Wall times (ms) of ``repeats`` runs of ``sess`` on ``feeds`` after ``warmup`` runs."""
    for _ in range(warmup):
        sess.run(None, feeds)
    times = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times[i] = (time.perf_counter() - t0) * 1e3
    return times


@dataclass
class OnnxArtifact:
    """One exported model file, loaded and structurally checked.

    Raises (on construction):
        ArtifactError: missing file, not parseable (truncated/corrupt), or
            ``onnx.checker`` (full check) rejects it.
    """

    path: Path
    proto: Any = field(init=False, repr=False)
    metadata: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        import onnx

        self.path = Path(self.path)
        if not self.path.is_file():
            raise ArtifactError(self.path, "ONNX model is missing (run `profy export RUN`)")
        try:
            self.proto = onnx.load_model(str(self.path))
        except Exception as exc:  # protobuf DecodeError and friends
            raise ArtifactError(self.path, f"not a readable ONNX model, corrupt or truncated "
                                           f"({type(exc).__name__}: {exc})") from None
        if not self.proto.graph.node:
            raise ArtifactError(self.path, "ONNX model has an empty graph (truncated?)")
        try:
            onnx.checker.check_model(self.proto, full_check=True)
        except Exception as exc:
            raise ArtifactError(self.path, f"onnx.checker rejects the model ({exc})") from None
        self.metadata = {p.key: p.value for p in self.proto.metadata_props}

    @property
    def name(self) -> str:
        return self.path.stem

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def signature(self) -> dict[str, dict[str, Any]]:
        """``{"inputs"|"outputs": {name: {"dims": [...], "dtype": str}}}`` of the graph."""
        import onnx

        def describe(values: Any) -> dict[str, Any]:
            out = {}
            for v in values:
                t = v.type.tensor_type
                out[v.name] = {"dims": [d.dim_param or int(d.dim_value) for d in t.shape.dim],
                               "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name}
            return out

        return {"inputs": describe(self.proto.graph.input),
                "outputs": describe(self.proto.graph.output)}

    def meta_list(self, key: str) -> list[str]:
        """A comma-separated metadata entry as a list (``[]`` when absent)."""
        value = self.metadata.get(key, "")
        return [v for v in value.split(",") if v]

    def references(self) -> dict[str, dict[str, np.ndarray]]:
        """``{case: {name: array}}`` from the ``.npz`` beside the model.

        Raises:
            ArtifactError: the file is missing, unreadable, lacks a case's arrays, or holds
                nothing to compare (zero cases, or a case with zero rows): a parity check
                on it would compare nothing, so it must not pass.
        """
        ref = self.path.with_suffix(".npz")
        if not ref.is_file():
            raise ArtifactError(ref, "reference inputs/outputs are missing (re-export)")
        names = self.meta_list("input_names") + self.meta_list("output_names")
        try:
            with np.load(ref, allow_pickle=False) as data:
                cases = [str(c) for c in data[CASES_KEY].tolist()]
                out = {c: {n: data[f"{c}.{n}"] for n in names} for c in cases}
        except KeyError as exc:
            raise ArtifactError(ref, f"reference file lacks {exc}") from None
        except Exception as exc:  # zipfile/format errors of a damaged file
            raise ArtifactError(ref, f"not a readable .npz ({type(exc).__name__}: {exc})"
                                ) from None
        if not out:
            raise ArtifactError(ref, f"holds zero reference cases ({CASES_KEY} is empty): "
                                     f"nothing to compare {self.path.name} with (re-export)")
        empty = [c for c, arrays in out.items()
                 if any(a.ndim == 0 or a.shape[0] == 0 for a in arrays.values())]
        if empty:
            raise ArtifactError(ref, f"reference case(s) {empty} hold zero rows: nothing to "
                                     f"compare {self.path.name} with (re-export)")
        return out


def audio_channels_reaching(art: OnnxArtifact) -> dict[str, Any]:
    """Measure on the exported graph how many mel channels reach its audio path.

    One batch through onnxruntime: row 0 is a real reference take (the one with the most
    valid audio frames; :data:`PROBE_FRAMES` frames from its first valid audio frame),
    row ``c + 1`` the same with :data:`PROBE_STEP` added to mel channel ``c`` only, and
    :data:`PROBE_CONTROLS` unchanged copies last. A channel reaches the model when its
    row's ``logits`` move away from row 0's by more than 4x the largest move of an
    unchanged copy (the batch's own numerical noise; zero when onnxruntime computes every
    row alike): a reshape or slice that drops channels inside the graph leaves their rows
    equal to row 0, whatever the metadata says.

    Returns:
        dict: ``channels`` (reaching), ``n_mels`` (the graph's logmel width), ``dropped``
        (the channel indices that did not change the output), ``case``, ``method``.

    Raises:
        ArtifactError: the model has no ``logmel`` input, or its references are unusable.
    """
    names = art.meta_list("input_names")
    if "logmel" not in names:
        raise ArtifactError(art.path, f"no logmel input to probe (inputs {names})")
    refs = art.references()
    case = "val" if "val" in refs else next(iter(refs))
    arrays = refs[case]
    valid = arrays["audio_mask"].sum(axis=1)
    row = int(np.argmax(valid))
    if valid[row] == 0:
        raise ArtifactError(art.path.with_suffix(".npz"), f"reference case {case!r} has no "
                                                          "valid audio frame to probe with")
    start = int(np.argmax(arrays["audio_mask"][row]))  # the first valid audio frame
    stop = min(start + PROBE_FRAMES, arrays["audio_mask"].shape[1])
    start = max(0, stop - PROBE_FRAMES)  # near the end: a full window all the same
    base = {}
    for n in names:  # the take's frames [start, stop) (time: axis 2 of logmel, else 1)
        a = arrays[n][row:row + 1]
        if n == "logmel":
            a = a[:, :, start:stop]
        elif n != "quality":  # quality (B, 5) has no time axis
            a = a[:, start:stop]
        base[n] = a
    n_mels = base["logmel"].shape[1]
    rows = n_mels + 1 + PROBE_CONTROLS
    feeds = {n: np.ascontiguousarray(np.repeat(base[n], rows, axis=0)) for n in names}
    idx = np.arange(n_mels)
    feeds["logmel"][idx + 1, idx, :] += np.float32(PROBE_STEP)
    logits = session(art.path).run(["logits"], feeds)[0].astype(np.float64)
    moved = np.abs(logits[1:] - logits[:1]).max(axis=1)  # (rows - 1,)
    noise = float(moved[n_mels:].max(initial=0.0))  # unchanged copies: the batch's own noise
    changed = moved[:n_mels] > 4.0 * noise
    return {"channels": int(changed.sum()), "n_mels": int(n_mels),
            "dropped": [int(c) for c in np.flatnonzero(~changed)], "case": case,
            "noise": noise, "min_change": float(moved[:n_mels].min()) if n_mels else 0.0,
            "method": f"onnxruntime probe: +{PROBE_STEP} on one mel channel per row of a "
                      "reference take; a channel reaches the model when its logits move by "
                      f"more than 4x the spread of {PROBE_CONTROLS} unchanged copies"}
