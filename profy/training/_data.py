"""Model inputs: features loaded once per run, normalized once per fold, batched by index.

:func:`load_corpus` reads every take's cached features from a :class:`FeatureStore` into
stacked tensors (one verified read per take). :func:`normalize_fold` turns them into the
fold's model inputs with that fold's :class:`NormStats`, once, not per epoch, and
:class:`FoldInputs` hands out batches by ``index_select``. The legacy switch
(``features.normalization: per_sample``) z-scores each log-mel over all its values,
padding included, as the pre-plan code did; the sensor is always scaled with the fold's
stats (fitted on the training takes, or on all takes under ``train.norm_fit: all``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import Dataset

from profy.config import FeatureConfig, config_hash
from profy.contract.schemas import LABELS
from profy.errors import FeatureError
from profy.features import (
    FeatureStore,
    NormStats,
    apply_global_norm,
    apply_sensor_norm,
    check_config_hash,
    per_sample_zscore,
)

__all__ = ["CorpusArrays", "FoldInputs", "batch_order", "class_weights", "load_corpus",
           "normalize_fold"]


@dataclass(frozen=True)
class CorpusArrays:
    """Raw (un-normalized) features of a set of takes, stacked in ``sample_ids`` order.

    Attributes:
        sample_ids: the takes, sorted.
        logmel: float32 ``(N, n_mels, T)``.
        audio_mask: bool ``(N, T)``, valid (non-silent) audio frames.
        sensor: float32 ``(N, T, 88)``.
        sensor_mask: bool ``(N, T)``, frames holding sensor rows.
        quality: float32 ``(N, 5)``, raw audio-quality vector (``QUALITY_FIELDS`` order).
        feature_config_hash: the feature config the takes were extracted with.
    """

    sample_ids: tuple[str, ...]
    logmel: Tensor
    audio_mask: Tensor
    sensor: Tensor
    sensor_mask: Tensor
    quality: Tensor
    feature_config_hash: str


def load_corpus(store: FeatureStore, sample_ids: Sequence[str], *,
                features: FeatureConfig) -> CorpusArrays:
    """Read and stack the cached features of ``sample_ids``.

    Raises:
        FeatureError: the store was built with another feature config than ``features``,
            a take is missing, or takes disagree in shape.
    """
    want = config_hash(features)
    if store.feature_config_hash != want:
        raise FeatureError(f"{store.index_path}: features were extracted with config "
                           f"{store.feature_config_hash}, the run's features config is {want}")
    ids = tuple(sorted(sample_ids))
    if not ids:
        raise FeatureError("no take to load")
    parts: dict[str, list[Tensor]] = {k: [] for k in ("logmel", "audio_mask", "sensor",
                                                      "sensor_mask", "quality")}
    for sample_id in ids:
        arrays = store[sample_id]
        for key, items in parts.items():
            items.append(torch.from_numpy(arrays[key]))
    try:
        stacked = {k: torch.stack(v) for k, v in parts.items()}
    except RuntimeError as exc:
        raise FeatureError(f"takes have different feature shapes: {exc}") from None
    return CorpusArrays(
        sample_ids=ids, logmel=stacked["logmel"].float(),
        audio_mask=stacked["audio_mask"].bool(), sensor=stacked["sensor"].float(),
        sensor_mask=stacked["sensor_mask"].bool(), quality=stacked["quality"].float(),
        feature_config_hash=want)


@dataclass(frozen=True)
class FoldInputs(Dataset):
    """Normalized model inputs of a set of takes (a torch ``Dataset`` of dicts).

    Attributes:
        sample_ids: the takes, in row order.
        labels: int64 ``(N,)``, 0 amateur / 1 pro.
        logmel: float32 ``(N, n_mels, T)``, normalized; 0 outside ``audio_mask``
            (global) or z-scored everywhere (legacy per-sample).
        audio_mask, sensor_mask: bool ``(N, T)``.
        sensor: float32 ``(N, T, 88)``, normalized; 0 outside ``sensor_mask``.
        quality: float32 ``(N, 5)``, raw (the gate scales it itself).
    """

    sample_ids: tuple[str, ...]
    labels: Tensor
    logmel: Tensor
    audio_mask: Tensor
    sensor: Tensor
    sensor_mask: Tensor
    quality: Tensor

    def __len__(self) -> int:
        return len(self.sample_ids)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {f.name: getattr(self, f.name)[i] for f in fields(self) if f.name != "sample_ids"}

    def subset(self, rows: Sequence[int] | Tensor) -> FoldInputs:
        """The rows ``rows`` (positions), as a new ``FoldInputs``."""
        idx = torch.as_tensor(rows, dtype=torch.long)
        values = {f.name: getattr(self, f.name).index_select(0, idx.to(self.labels.device))
                  for f in fields(self) if f.name != "sample_ids"}
        return FoldInputs(sample_ids=tuple(self.sample_ids[i] for i in idx.tolist()), **values)

    def to(self, device: torch.device | str) -> FoldInputs:
        """A copy on ``device`` (all tensors at once: a fold fits in memory)."""
        values = {f.name: getattr(self, f.name).to(device)
                  for f in fields(self) if f.name != "sample_ids"}
        return FoldInputs(sample_ids=self.sample_ids, **values)

    def batch(self, rows: Tensor, mode: str) -> dict[str, Tensor | None]:
        """Keyword inputs of ``UnifiedAttentionModel`` for the rows ``rows`` in ``mode``.

        Returns:
            dict: ``sensor (B, T, 88)``, ``sensor_mask (B, T)``, ``logmel (B, n_mels, T)``,
            ``audio_mask (B, T)``, ``quality (B, 5)``; the entries a mode does not use are
            ``None``.
        """
        rows = rows.to(self.labels.device)
        pick = lambda t: t.index_select(0, rows)  # noqa: E731
        uses_sensor, uses_audio = mode in ("sensor", "multimodal"), mode in ("audio", "multimodal")
        return {"sensor": pick(self.sensor) if uses_sensor else None,
                "sensor_mask": pick(self.sensor_mask) if uses_sensor else None,
                "logmel": pick(self.logmel) if uses_audio else None,
                "audio_mask": pick(self.audio_mask) if uses_audio else None,
                "quality": pick(self.quality) if mode == "multimodal" else None}


def normalize_fold(corpus: CorpusArrays, stats: NormStats, labels: pd.Series, *,
                   features: FeatureConfig) -> FoldInputs:
    """Normalize every take of ``corpus`` with one fold's statistics.

    Args:
        corpus: raw stacked features.
        stats: the fold's normalization artifact; its feature-config hash is checked.
        labels: ``sample_id -> "pro" | "amateur"`` for every take in ``corpus``.
        features: the run's feature config (``normalization`` picks global or legacy).

    Raises:
        FeatureError: the stats were fitted with another feature config, or a take has no
            label.
    """
    check_config_hash(stats, corpus.feature_config_hash)
    missing = [s for s in corpus.sample_ids if s not in labels.index]
    if missing:
        raise FeatureError(f"{len(missing)} take(s) have no label, e.g. {missing[:3]}")
    y = torch.tensor([LABELS.index(labels[s]) for s in corpus.sample_ids], dtype=torch.long)
    if features.normalization == "per_sample":
        logmel = per_sample_zscore(corpus.logmel)  # LEGACY: padding and silence included
    else:
        logmel = apply_global_norm(corpus.logmel, corpus.audio_mask, stats,
                                   feature_config_hash=corpus.feature_config_hash)
    sensor = apply_sensor_norm(corpus.sensor, corpus.sensor_mask, stats,
                               feature_config_hash=corpus.feature_config_hash)
    return FoldInputs(sample_ids=corpus.sample_ids, labels=y, logmel=logmel.contiguous(),
                      audio_mask=corpus.audio_mask, sensor=sensor.contiguous(),
                      sensor_mask=corpus.sensor_mask, quality=corpus.quality)


def class_weights(labels: Tensor) -> Tensor:
    """Inverse-frequency weights ``n / (2 * n_c)`` for classes 0 and 1: float32 ``(2,)``.

    Raises:
        FeatureError: a class has no training take (nothing to learn it from).
    """
    counts = torch.bincount(labels.cpu(), minlength=2).double()
    if bool((counts == 0).any()):
        raise FeatureError(f"the training takes hold only one class (counts {counts.tolist()})")
    return (counts.sum() / (2.0 * counts)).float()


def batch_order(labels: Tensor, batch_size: int, *, class_balance: str,
                generator: torch.Generator) -> list[Tensor]:
    """Row indices of one epoch, split into batches.

    ``"sampler"`` draws ``len(labels)`` rows with replacement, each class with equal
    total probability; otherwise a plain permutation. Both come from ``generator`` only.

    Returns:
        list[Tensor]: int64 index tensors of at most ``batch_size`` rows.
    """
    n = labels.shape[0]
    if class_balance == "sampler":
        per_class = torch.bincount(labels.cpu(), minlength=2).double()
        weight = (1.0 / per_class.clamp(min=1))[labels.cpu()]
        order = torch.multinomial(weight, n, replacement=True, generator=generator)
    else:
        order = torch.randperm(n, generator=generator)
    return list(order.split(batch_size))
