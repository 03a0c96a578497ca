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

__all__ = ["OnnxArtifact", "find_models", "session", "time_runs"]

CASES_KEY = "__cases__"


def find_models(run_dir: Path) -> list[Path]:
    """The run's ``onnx/*.onnx`` files, sorted."""
    return sorted((Path(run_dir) / "onnx").glob("*.onnx"))


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
            ArtifactError: the file is missing, unreadable, or lacks a case's arrays.
        """
        ref = self.path.with_suffix(".npz")
        if not ref.is_file():
            raise ArtifactError(ref, "reference inputs/outputs are missing (re-export)")
        names = self.meta_list("input_names") + self.meta_list("output_names")
        try:
            with np.load(ref, allow_pickle=False) as data:
                cases = [str(c) for c in data[CASES_KEY].tolist()]
                return {c: {n: data[f"{c}.{n}"] for n in names} for c in cases}
        except KeyError as exc:
            raise ArtifactError(ref, f"reference file lacks {exc}") from None
        except Exception as exc:  # zipfile/format errors of a damaged file
            raise ArtifactError(ref, f"not a readable .npz ({type(exc).__name__}: {exc})"
                                ) from None
