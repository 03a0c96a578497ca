"""Profy models: encoders, fusion gate and ``UnifiedAttentionModel`` (needs torch).

    from profy.config import ModelConfig
    from profy.models import UnifiedAttentionModel

    model = UnifiedAttentionModel(ModelConfig(), "multimodal")
    out = model(sensor=s, sensor_mask=sm, logmel=m, audio_mask=am, quality=q)
    out.logits, out.probs, out.modality_weights  # (B, 2) each; class 1 = pro
"""

from profy.models._encoders import (
    AudioCNN2d,
    AudioEncoder,
    Conv1dResampler,
    KeyFrontEnd,
    SensorEncoder,
)
from profy.models._fusion import (
    FusionGate,
    GateOutput,
    clamped_gate_weights,
    modality_dropout,
    snr_temperature,
)
from profy.models._layers import TCN, MaskedAttentionPool, downsample_mask, pad_time
from profy.models._unified import ModelOutput, UnifiedAttentionModel

__all__ = [
    "TCN",
    "AudioCNN2d",
    "AudioEncoder",
    "Conv1dResampler",
    "FusionGate",
    "GateOutput",
    "KeyFrontEnd",
    "MaskedAttentionPool",
    "ModelOutput",
    "SensorEncoder",
    "UnifiedAttentionModel",
    "clamped_gate_weights",
    "downsample_mask",
    "modality_dropout",
    "pad_time",
    "snr_temperature",
]
