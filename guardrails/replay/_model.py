"""Tagged ONNX models run with onnxruntime, and the metrics a replay compares.

A tag (``profy.contract.tags``, torch-free) names a run, a mode and its folds; the release model
of fold K is ``RUN/onnx/<mode>_fold<K>.onnx``. Its graph includes the fold's
normalization, so it takes the RAW cached features (see :mod:`._features`).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from guardrails.errors import ArtifactError, BadInputError
from guardrails.replay._features import FeatureBatch
from profy.contract import layout

__all__ = ["OnnxModel", "Prediction", "default_registry", "resolve"]


def default_registry(run_or_dir: Path) -> Path:
    """``tags.json`` of a runs folder, or of the folder holding a run (profy's default)."""
    run_or_dir = Path(run_or_dir)
    if (run_or_dir / layout.TAGS_FILE).is_file():
        return run_or_dir / layout.TAGS_FILE
    return layout.default_registry(run_or_dir)


def resolve(registry: str | Path, tag: str, *, verify: bool = True):
    """:func:`profy.contract.tags.resolve_tag` with profy's errors turned into ``BadInputError``.

    Returns:
        profy.contract.tags.TagEntry
    """
    from profy.contract.tags import resolve_tag
    from profy.errors import ProfyError

    try:
        return resolve_tag(registry, tag, verify=verify)
    except ProfyError as exc:
        path = getattr(exc, "path", None) or registry
        raise BadInputError(path, getattr(exc, "problem", None) or str(exc)) from None


@dataclass(frozen=True)
class Prediction:
    """One pass over a replay set.

    Attributes:
        probs: float32 ``(N, 2)``; pred: int64 ``(N,)`` (argmax, 1 = pro).
        modality_weights: float32 ``(N, 2)`` [sensor, audio] or ``None`` (unimodal).
        latency_ms: best (minimum) wall time of a batch-1 forward pass over the repeats,
            ms: as ``timeit`` advises, the minimum is the figure least inflated by other
            processes on a shared machine, so it is the one replays compare.
        latency_median_ms: median of the same repeats, ms (reported, not compared).
        batch_ms: wall time of the whole set in one batch, ms.
    """

    probs: np.ndarray
    pred: np.ndarray
    modality_weights: np.ndarray | None
    latency_ms: float
    latency_median_ms: float
    batch_ms: float


class OnnxModel:
    """One ONNX release model in an onnxruntime session (fixed thread count).

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads, fixed so latencies compare across replays. (Default: 1)

    Raises:
        ArtifactError: missing file, or onnxruntime refuses it (truncated, corrupt).
    """

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ArtifactError(self.path, "ONNX model is missing (export it with "
                                           "`profy export RUN --mode M --fold K`)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception types for a bad file
            raise ArtifactError(self.path, f"onnxruntime cannot load it ({exc})") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        for need in ("probs",):
            if need not in self.output_names:
                raise ArtifactError(self.path, f"has no {need!r} output (outputs: "
                                               f"{self.output_names})")
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = dict(meta)
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()

    def forward(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by name for one batch of inputs (the session's input names)."""
        try:
            values = self.session.run(None, {n: inputs[n] for n in self.input_names})
        except Exception as exc:
            raise ArtifactError(self.path, f"inference failed ({exc})") from None
        return dict(zip(self.output_names, values, strict=True))

    def predict(self, batch: FeatureBatch, *, latency_repeats: int = 3) -> Prediction:
        """Run the whole set in one batch, then time batch-1 passes (min and median).

        Args:
            batch: RAW features of the replay set.
            latency_repeats: timed batch-1 passes per take, first take only after a
                warm-up (0 skips latency). (Default: 3)
        """
        missing = [n for n in self.input_names if n not in batch.arrays]
        if missing:
            raise BadInputError(self.path, f"model wants inputs {missing} the replay lacks")
        inputs = batch.inputs_for(self.input_names)
        started = time.perf_counter()
        out = self.forward(inputs)
        batch_ms = (time.perf_counter() - started) * 1e3
        latency = median = float("nan")
        if latency_repeats > 0:
            one = {n: v[:1] for n, v in inputs.items()}
            self.forward(one)  # warm-up: first call allocates
            times = []
            for _ in range(latency_repeats):
                t0 = time.perf_counter()
                self.forward(one)
                times.append((time.perf_counter() - t0) * 1e3)
            latency, median = float(np.min(times)), float(np.median(times))
        probs = np.asarray(out["probs"], dtype=np.float32)
        weights = out.get("modality_weights")
        return Prediction(probs=probs, pred=probs.argmax(axis=1).astype(np.int64),
                          modality_weights=None if weights is None else np.asarray(weights),
                          latency_ms=latency, latency_median_ms=median, batch_ms=batch_ms)
