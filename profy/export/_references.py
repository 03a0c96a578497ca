"""Reference inputs and outputs saved beside each ONNX model, computed with PyTorch eager.

The ``.npz`` holds named cases; the first (``val``: real held-out takes of the fold) is
stored under the bare ONNX input/output names, every case (``val`` included) under
``<case>.<name>``, and ``__cases__`` lists the case names. Cases:

- ``val``: up to 8 held-out (test, then val) takes of the fold, full length T;
- ``batch1``: the first of them alone (B = 1);
- ``batch_many``: 16 rows (held-out takes repeated, each row rolled in time so rows differ);
- ``silent``: held-out takes with an all-False audio mask (audio modes only);
- ``shortest``: the held-out take with the fewest valid frames, cropped to them;
- ``odd_length``: the ``val`` takes cropped to an odd length never used at export.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from profy.contract.atomic import atomic_write_bytes
from profy.contract.layout import FEATURE_INDEX_FILE, FEATURES_DIR, SPLITS_FILE
from profy.contract.model_io import TIME_AXIS, input_dtype

__all__ = ["CASES_KEY", "MIN_FRAMES", "build_cases", "held_out_ids", "load_raw",
           "write_references"]

CASES_KEY = "__cases__"
# Shortest time axis an exported model declares (Dim("T", min=...)) and so the shortest
# reference case: a case below it would test a length the model says it does not take.
MIN_FRAMES = 16


def held_out_ids(run_dir: Path, fold: int, *, limit: int = 8) -> list[str]:
    """Up to ``limit`` takes held out from fold ``fold``'s training (test first, then val)."""
    splits = pd.read_parquet(run_dir / SPLITS_FILE)
    rows = splits[(splits["fold"] == fold) & splits["role"].isin(["test", "val"])]
    rows = rows.assign(order=(rows["role"] != "test").astype(int)).sort_values(
        ["order", "sample_id"])
    return rows["sample_id"].tolist()[:limit]


def load_raw(run_dir: Path, sample_ids: list[str], names: tuple[str, ...]
             ) -> dict[str, np.ndarray]:
    """Stack the RAW cached features of ``sample_ids`` under the ONNX input ``names``.

    Returns:
        dict: ``sensor (N, T, 88)`` float32, masks ``(N, T)`` bool, ``logmel (N, n_mels, T)``
        float32, ``quality (N, 5)`` float32 (only ``names``).
    """
    from profy.features import FeatureStore

    store = FeatureStore(run_dir / FEATURES_DIR / FEATURE_INDEX_FILE)
    takes = [store[s] for s in sample_ids]
    return {n: np.ascontiguousarray(np.stack([t[n] for t in takes]).astype(input_dtype(n)))
            for n in names}


def _crop(arrays: dict[str, np.ndarray], length: int) -> dict[str, np.ndarray]:
    """The first ``length`` frames of every input with a time axis (the others as they are)."""
    out = {}
    for name, a in arrays.items():
        if name in TIME_AXIS:
            out[name] = np.ascontiguousarray(a[(slice(None),) * TIME_AXIS[name]
                                               + (slice(None, length),)])
        else:
            out[name] = a
    return out


def build_cases(raw: dict[str, np.ndarray], *, export_length: int, many: int = 16
                ) -> dict[str, dict[str, np.ndarray]]:
    """The named input cases built from held-out takes ``raw`` (see the module docstring)."""
    n, t = raw["sensor_mask" if "sensor_mask" in raw else "audio_mask"].shape
    cases: dict[str, dict[str, np.ndarray]] = {"val": raw,
                                               "batch1": {k: v[:1] for k, v in raw.items()}}
    reps = -(-many // n)
    tiled = {k: np.concatenate([v] * reps)[:many] for k, v in raw.items()}
    for i in range(many):  # roll each repeat so the rows of the big batch differ
        shift = (i // n) * 7
        for k, axis in TIME_AXIS.items():
            if k in tiled:  # one row: its time axis is one less than the batch's
                tiled[k][i] = np.roll(tiled[k][i], shift, axis=axis - 1)
    cases["batch_many"] = tiled
    if "audio_mask" in raw:
        cases["silent"] = {k: (np.zeros_like(v) if k == "audio_mask" else v)
                           for k, v in raw.items()}
    mask = raw["sensor_mask"] if "sensor_mask" in raw else raw["audio_mask"]
    valid = mask.sum(axis=1)
    i = int(np.argmin(valid))
    short = max(int(valid[i]), MIN_FRAMES)
    cases["shortest"] = _crop({k: v[i:i + 1] for k, v in raw.items()}, short)
    odd = min(t, export_length) - 37  # odd, not a stride multiple, never the export length
    cases["odd_length"] = _crop(raw, odd if odd % 2 else odd - 1)
    return cases


def write_references(path: Path, cases: dict[str, dict[str, np.ndarray]],
                     run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]) -> Path:
    """Run ``run`` (PyTorch eager) on every case and save inputs + outputs atomically."""
    payload: dict[str, np.ndarray] = {}
    for j, (case, inputs) in enumerate(cases.items()):
        outputs = run(inputs)
        for name, value in {**inputs, **outputs}.items():
            payload[f"{case}.{name}"] = value
            if j == 0:
                payload[name] = value
    payload[CASES_KEY] = np.array(list(cases), dtype=np.str_)
    buf = io.BytesIO()
    np.savez_compressed(buf, **payload)
    return atomic_write_bytes(path, buf.getvalue())
