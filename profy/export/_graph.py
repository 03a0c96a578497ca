"""The exported graph: a trained model behind its fold's normalization.

:class:`NormalizedModel` takes the RAW cached features (what ``FeatureStore`` returns)
and applies exactly what :func:`profy.training.normalize_fold` applied in training —
the same :func:`profy.features.functional.normalize` (global, masked frames -> 0) or
:func:`profy.features.per_sample_zscore` (legacy) — then the model. Its positional
inputs are the ONNX inputs, in :func:`profy.contract.model_io.input_names` order (the
layout both halves read), so one graph serves
onnxruntime users who never saw the normalization artifact.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from profy.contract.model_io import input_names
from profy.features import NormStats, check_config_hash, per_sample_zscore
from profy.features import functional as F

__all__ = ["NormalizedModel"]


class NormalizedModel(nn.Module):
    """Raw features -> fold normalization -> ``UnifiedAttentionModel`` outputs.

    Args:
        model: the trained model (eval mode), its ``mode`` decides the inputs.
        stats: the fold's normalization artifact.
        feature_config_hash: the run's feature-config hash (checked against ``stats``).
        normalization: ``"global"`` or ``"per_sample"`` (legacy log-mel z-score).

    Inputs (positional, :func:`~profy.contract.model_io.input_names` order; dims and dtypes
    in :data:`~profy.contract.model_io.INPUT_LAYOUT`): ``sensor (B, T, 88)`` float32,
    ``sensor_mask (B, T)`` bool, ``logmel (B, n_mels, T)`` float32, ``audio_mask (B, T)``
    bool, ``quality (B, 5)`` float32 — those the mode uses.
    Returns: ``logits (B, 2)``, ``probs (B, 2)`` [+ ``modality_weights (B, 2)``].
    """

    def __init__(self, model: nn.Module, stats: NormStats, *, feature_config_hash: str,
                 normalization: str) -> None:
        super().__init__()
        check_config_hash(stats, feature_config_hash)
        if normalization not in ("global", "per_sample"):
            raise ValueError(f"normalization must be global or per_sample, got {normalization!r}")
        self.model, self.mode, self.normalization = model, model.mode, normalization
        self.names = input_names(self.mode)
        self.register_buffer("sensor_mean", torch.tensor(stats.sensor_mean, dtype=torch.float32))
        self.register_buffer("sensor_std", torch.tensor(stats.sensor_std, dtype=torch.float32))
        self.register_buffer("audio_mean", torch.tensor(stats.audio_mean, dtype=torch.float32))
        self.register_buffer("audio_std", torch.tensor(stats.audio_std, dtype=torch.float32))

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        """Positional raw inputs in ``self.names`` order; see the class docstring."""
        raw = dict(zip(self.names, inputs, strict=True))
        kwargs: dict[str, Tensor] = {}
        if "sensor" in raw:
            kwargs["sensor"] = F.normalize(raw["sensor"], raw["sensor_mask"], self.sensor_mean,
                                           self.sensor_std, channel_dim=-1)
            kwargs["sensor_mask"] = raw["sensor_mask"]
        if "logmel" in raw:
            if self.normalization == "per_sample":
                kwargs["logmel"] = per_sample_zscore(raw["logmel"])  # LEGACY, as in training
            else:
                kwargs["logmel"] = F.normalize(raw["logmel"], raw["audio_mask"],
                                               self.audio_mean, self.audio_std, channel_dim=-2)
            kwargs["audio_mask"] = raw["audio_mask"]
        if "quality" in raw:
            kwargs["quality"] = raw["quality"]
        out = self.model(**kwargs)
        if self.mode == "multimodal":
            return out.logits, out.probs, out.modality_weights
        return out.logits, out.probs
