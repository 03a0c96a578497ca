"""Torch-free loading of a run's cached features as the RAW inputs the ONNX models take.

The feature cache (``profy.features.FeatureCache``) stores one safetensors file per take,
already cropped/padded to the configured frame count T at extraction; its metadata holds
the key, the inputs' hashes, the feature-config hash and a sha256 of the tensor bytes.
Training (``profy.training._data.load_corpus``) verifies each entry, stacks the takes in
sorted ``sample_id`` order and casts ``logmel``/``sensor``/``quality`` to float32 and the
masks to bool; :func:`load_batch` does exactly the same with numpy, so the arrays fed to
onnxruntime are the arrays the checkpoint saw (normalization lives inside the ONNX graph).

Shapes (N takes): ``sensor`` float32 ``(N, T, 88)``, ``sensor_mask`` bool ``(N, T)``,
``logmel`` float32 ``(N, n_mels, T)``, ``audio_mask`` bool ``(N, T)``, ``quality``
float32 ``(N, 5)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from guardrails.errors import ArtifactError, BadInputError
from profy.contract.hashing import payload_sha256
from profy.contract.model_io import CACHE_FORMAT, INPUT_LAYOUT, input_dtype

__all__ = ["CachedFeatures", "FeatureBatch", "batch_sha256", "payload_sha256"]


def batch_sha256(batch: FeatureBatch) -> str:
    """Content hash of a replay set: its take ids and every input array (the data hash)."""
    digest = hashlib.sha256("\n".join(batch.sample_ids).encode())
    digest.update(payload_sha256(batch.arrays).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class FeatureBatch:
    """Stacked RAW inputs of a set of takes, sorted by ``sample_id`` (training order).

    Attributes:
        sample_ids: the takes, sorted.
        arrays: every input of ``profy.contract.model_io.INPUT_LAYOUT`` -> array (shapes in
            the module docstring).
    """

    sample_ids: tuple[str, ...]
    arrays: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.sample_ids)

    def replace(self, **arrays: np.ndarray) -> FeatureBatch:
        """A copy with some arrays swapped (perturbations); shapes and dtypes kept."""
        new = dict(self.arrays)
        for name, value in arrays.items():
            if value.shape != self.arrays[name].shape:
                raise ValueError(f"{name}: shape {value.shape} != {self.arrays[name].shape}")
            new[name] = value.astype(input_dtype(name), copy=False)
        return FeatureBatch(self.sample_ids, new)

    def inputs_for(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """The arrays an ONNX session takes (its input names)."""
        return {n: self.arrays[n] for n in names}


class CachedFeatures:
    """A run's ``features/feature_index.parquet`` and the cache entries it points at.

    Args:
        index_path: ``RUN/features/feature_index.parquet``.
        cache_dir: the cache folder. (Default: the one recorded in the index metadata)

    Raises:
        ArtifactError: the index is missing, unreadable or lacks its metadata.
    """

    def __init__(self, index_path: str | Path, *, cache_dir: str | Path | None = None) -> None:
        self.index_path = Path(index_path)
        if not self.index_path.is_file():
            raise ArtifactError(self.index_path, "feature index is missing")
        try:
            table = pq.read_table(self.index_path)
        except (OSError, pa.ArrowException) as exc:
            raise ArtifactError(self.index_path, f"not a readable Parquet file ({exc})") from None
        meta = table.schema.metadata or {}
        if b"feature_config_hash" not in meta or (cache_dir is None and b"cache_dir" not in meta):
            raise ArtifactError(self.index_path, "not a feature index (metadata missing)")
        missing = {"sample_id", "cache_key", "audio_sha256", "sensor_sha256"} \
            - set(table.column_names)
        if missing:
            raise ArtifactError(self.index_path, f"lacks column(s) {sorted(missing)}")
        self.feature_config_hash = meta[b"feature_config_hash"].decode()
        self.cache_dir = Path(cache_dir) if cache_dir else Path(meta[b"cache_dir"].decode())
        self._rows = {r["sample_id"]: r for r in table.to_pylist()}

    @property
    def sample_ids(self) -> list[str]:
        """Every take in the index, sorted."""
        return sorted(self._rows)

    def entry_path(self, sample_id: str) -> Path:
        """The safetensors entry of one take (``cache/<key[:2]>/<key>.safetensors``)."""
        key = self._rows[sample_id]["cache_key"]
        return self.cache_dir / key[:2] / f"{key}.safetensors"

    def take(self, sample_id: str) -> dict[str, np.ndarray]:
        """The verified arrays of one take.

        Raises:
            BadInputError: the take is not in the index.
            ArtifactError: its entry is missing, unreadable, or fails its key/hash checks.
        """
        from safetensors import SafetensorError
        from safetensors.numpy import load

        row = self._rows.get(sample_id)
        if row is None:
            raise BadInputError(self.index_path, f"take {sample_id!r} is not in the index")
        path = self.entry_path(sample_id)
        if not path.is_file():
            raise ArtifactError(path, f"cached features of take {sample_id} are missing; "
                                      "rerun `profy features`")
        try:
            raw = path.read_bytes()
            arrays = load(raw)
            meta = _safetensors_metadata(raw)
        except (OSError, ValueError, SafetensorError) as exc:
            raise ArtifactError(path, f"not a readable safetensors entry ({exc})") from None
        expected = {"key": row["cache_key"], "format": CACHE_FORMAT,
                    "audio_sha256": row["audio_sha256"], "sensor_sha256": row["sensor_sha256"],
                    "feature_config_hash": self.feature_config_hash}
        bad = [k for k, v in expected.items() if meta.get(k) != v]
        if bad or meta.get("payload_sha256") != payload_sha256(arrays):
            raise ArtifactError(path, f"cached features of take {sample_id} do not match the "
                                      f"index or their checksum ({', '.join(bad) or 'payload'})")
        missing = [n for n in INPUT_LAYOUT if n not in arrays]
        if missing:
            raise ArtifactError(path, f"entry lacks {missing}")
        return arrays

    def load_batch(self, sample_ids: Sequence[str]) -> FeatureBatch:
        """Stack the takes (sorted by id, as training does) into RAW model inputs.

        Raises:
            BadInputError: no take, or a take not in the index.
            ArtifactError: an entry is bad, or takes disagree in shape.
        """
        ids = tuple(sorted(sample_ids))
        if not ids:
            raise BadInputError(self.index_path, "no take to load")
        parts: dict[str, list[np.ndarray]] = {n: [] for n in INPUT_LAYOUT}
        for sample_id in ids:
            arrays = self.take(sample_id)
            for name in INPUT_LAYOUT:
                parts[name].append(arrays[name])
        try:
            stacked = {n: np.stack(v).astype(input_dtype(n), copy=False)
                       for n, v in parts.items()}
        except ValueError as exc:
            raise ArtifactError(self.index_path, f"takes have different feature shapes: {exc}"
                                ) from None
        return FeatureBatch(ids, stacked)


def _safetensors_metadata(raw: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors buffer (8-byte little-endian header length, JSON)."""
    import json

    if len(raw) < 8:
        raise ValueError("file shorter than its header")
    n = int.from_bytes(raw[:8], "little")
    if n > len(raw) - 8:
        raise ValueError("header length beyond the end of the file")
    header = json.loads(raw[8:8 + n])
    meta = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()}
