"""``UnifiedAttentionModel``: one class for the sensor, audio and multimodal modes.

Data flow (T input frames at 50 fps, L = T_pad / fusion_stride fused steps)::

    sensor (B, T, 88)  -> SensorEncoder ----------------------------> s (B, L, H)
    logmel (B, 128, T) -> audio_cnn2d -> TCN -> Conv1d resampler ----> a (B, L, H)
    gate(pool(s), pool(a), quality)                                 -> w (B, 2)
    fused = w_s * s + w_a * a  (B, L, H) -> head (pool -> Linear)   -> logits (B, 2)

A missing modality is ``None``; it is never replaced by fake zeros. In a single-modality
mode the other encoder and the gate are not built, and ``modality_weights`` is the
constant [1, 0] (sensor) or [0, 1] (audio). Everything is ONNX-exportable with a dynamic
batch and time axis (``torch.onnx.export(..., dynamo=True, dynamic_shapes=...)``):
no data-dependent Python control flow, no shape arithmetic that leaves the symbolic world.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from profy.config import ModelConfig, config_hash
from profy.contract.model_io import MODES
from profy.models._encoders import AudioEncoder, SensorEncoder
from profy.models._fusion import FusionGate
from profy.models._layers import MaskedAttentionPool, pad_time
from profy.models._probe import measure_audio_channels

__all__ = ["ModelOutput", "UnifiedAttentionModel"]

_USES = {"sensor": ("sensor",), "audio": ("audio",), "multimodal": ("sensor", "audio")}


class ModelOutput(NamedTuple):
    """Model outputs; class index 1 = pro.

    Attributes:
        logits: ``(B, 2)`` [amateur, pro] logits (train with cross-entropy on these).
        probs: ``(B, 2)`` softmax of ``logits``.
        modality_weights: ``(B, 2)`` [sensor, audio] fusion weights actually used.
    """

    logits: Tensor
    probs: Tensor
    modality_weights: Tensor


class _Head(nn.Module):
    """Classifier over the fused sequence: ["bilstm" ->] masked attention pool -> Linear.

    The BiLSTM runs over the whole padded sequence (``pack_padded_sequence`` does not
    export); invalid steps hold exact zeros, so padding affects it only through its
    length, never through the values the caller left there.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.lstm = nn.LSTM(cfg.hidden, cfg.hidden, num_layers=cfg.head_layers,
                            batch_first=True, bidirectional=True,
                            dropout=cfg.dropout if cfg.head_layers > 1 else 0.0) \
            if cfg.head == "bilstm" else None
        width = 2 * cfg.hidden if self.lstm is not None else cfg.hidden
        self.pool = MaskedAttentionPool(width)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(width, 2)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Args: x ``(B, L, H)`` (zero at invalid steps), mask ``(B, L)``. Returns ``(B, 2)``."""
        if self.lstm is not None:
            x, _ = self.lstm(x)  # (B, L, 2H)
        return self.out(self.drop(self.pool(x, mask)))  # (B, 2)


class UnifiedAttentionModel(nn.Module):
    """Pro/amateur classifier over sensor frames, log-mel audio, or both.

    Args:
        cfg (ModelConfig): sizes and switches (``ModelConfig()`` = demo size,
            ``ModelConfig.preset("paper")`` = ~4.2M parameters).
        mode (str): ``"sensor"``, ``"audio"`` or ``"multimodal"``.

    Raises:
        ValueError: for an unknown ``mode``.

    Example:
        >>> model = UnifiedAttentionModel(ModelConfig(), "multimodal").eval()
        >>> valid = torch.ones(2, 97, dtype=torch.bool)
        >>> out = model(sensor=torch.randn(2, 97, 88), sensor_mask=valid,
        ...             logmel=torch.randn(2, 128, 97), audio_mask=valid,
        ...             quality=torch.tensor([[30.0, 0.9, 0.2, -20.0, 0.0]] * 2))
        >>> out.logits.shape, out.modality_weights.shape
        (torch.Size([2, 2]), torch.Size([2, 2]))
    """

    def __init__(self, cfg: ModelConfig, mode: str) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        self.cfg = cfg
        self.mode = mode
        uses = _USES[mode]
        self.sensor_encoder = SensorEncoder(cfg) if "sensor" in uses else None
        self.audio_encoder = AudioEncoder(cfg) if "audio" in uses else None
        self.gate = FusionGate(cfg) if mode == "multimodal" else None
        self.head = _Head(cfg)
        # Pad T once to a multiple of every stride so each stage divides exactly and the
        # two streams stay frame-aligned (both strides are powers of two).
        self.time_multiple = max(cfg.fusion_stride,
                                 cfg.audio_time_stride if "audio" in uses else 1)

    # ------------------------------------------------------------------ inputs
    def _check(self, name: str, x: Tensor | None, mask: Tensor | None, used: bool,
               channels: int, channel_dim: int) -> None:
        if not used:
            if x is not None or mask is not None:
                raise ValueError(f"mode {self.mode!r} does not use {name}; pass {name}=None "
                                 f"and {name.replace('logmel', 'audio')}_mask=None")
            return
        if x is None:
            raise ValueError(f"mode {self.mode!r} needs {name}, got None")
        if x.dim() != 3 or x.shape[channel_dim] != channels:
            want = f"(B, T, {channels})" if name == "sensor" else f"(B, {channels}, T)"
            raise ValueError(f"{name} must have shape {want}; got {tuple(x.shape)}")
        mask_name = "sensor_mask" if name == "sensor" else "audio_mask"
        if mask is None:
            if self.cfg.use_masks:
                raise ValueError(f"mode {self.mode!r} needs {mask_name} (use_masks=True)")
            return
        time_dim = 1 if name == "sensor" else 2
        if mask.dtype != torch.bool or tuple(mask.shape) != (x.shape[0], x.shape[time_dim]):
            raise ValueError(f"{mask_name} must be a bool (B, T) tensor matching {name}; "
                             f"got {mask.dtype} {tuple(mask.shape)}")

    def _mask(self, x: Tensor, mask: Tensor | None, time_dim: int) -> Tensor:
        """The mask in force, padded with False to ``time_multiple`` frames: (B, T_pad)."""
        if mask is None or not self.cfg.use_masks:
            # legacy zero-padding semantics: every caller frame counts as valid
            mask = torch.ones_like(x.select(3 - time_dim, 0), dtype=torch.bool)  # (B, T)
        return pad_time(mask, self.time_multiple, dim=1, value=False)

    def prepare_sensor(self, sensor: Tensor, sensor_mask: Tensor | None
                       ) -> tuple[Tensor, Tensor]:
        """The padded sensor and mask in force that ``forward`` hands the sensor encoder."""
        mask = self._mask(sensor, sensor_mask, time_dim=1)  # (B, T_pad)
        return pad_time(sensor, self.time_multiple, dim=1), mask

    # ----------------------------------------------------------------- forward
    def forward(self, sensor: Tensor | None = None, sensor_mask: Tensor | None = None,
                logmel: Tensor | None = None, audio_mask: Tensor | None = None,
                quality: Tensor | None = None) -> ModelOutput:
        """Classify a batch of takes.

        Args:
            sensor (Tensor, optional): ``(B, T, 88)`` normalized key depths (sensor and
                multimodal modes; else None).
            sensor_mask (Tensor, optional): ``(B, T)`` bool, True = valid frame.
            logmel (Tensor, optional): ``(B, 128, T)`` normalized log-mel (audio and
                multimodal modes; else None).
            audio_mask (Tensor, optional): ``(B, T)`` bool, True = valid (non-silent) frame.
            quality (Tensor, optional): ``(B, 5)`` raw audio-quality vector in
                ``QUALITY_FIELDS`` order; required in multimodal mode, ignored otherwise.

        Returns:
            ModelOutput: ``logits (B, 2)``, ``probs (B, 2)``, ``modality_weights (B, 2)``.

        Raises:
            ValueError: a modality the mode needs is missing, one it does not use is
                given, a required mask is missing (``use_masks=True``), shapes disagree,
                or the two streams have different T.
        """
        uses = _USES[self.mode]
        cfg = self.cfg
        self._check("sensor", sensor, sensor_mask, "sensor" in uses, cfg.n_keys, 2)
        self._check("logmel", logmel, audio_mask, "audio" in uses, cfg.n_mels_in, 1)
        if self.mode == "multimodal":
            assert sensor is not None and logmel is not None
            if sensor.shape[1] != logmel.shape[2] or sensor.shape[0] != logmel.shape[0]:
                raise ValueError(
                    f"sensor (B, T, 88) and logmel (B, 128, T) must share B and T; got "
                    f"{tuple(sensor.shape)} and {tuple(logmel.shape)}")
            if quality is None:
                raise ValueError("mode 'multimodal' needs quality (B, 5) for the fusion gate")
            if quality.dim() != 2 or quality.shape[1] != cfg.quality_dim:
                raise ValueError(f"quality must have shape (B, {cfg.quality_dim}); "
                                 f"got {tuple(quality.shape)}")

        streams: list[tuple[Tensor, Tensor]] = []
        if self.sensor_encoder is not None:
            assert sensor is not None
            sensor, s_mask = self.prepare_sensor(sensor, sensor_mask)  # (B, T_pad, 88)
            streams.append(self.sensor_encoder(sensor, s_mask))  # (B, L, H), (B, L)
        if self.audio_encoder is not None:
            assert logmel is not None
            a_mask = self._mask(logmel, audio_mask, time_dim=2)  # (B, T_pad)
            logmel = pad_time(logmel, self.time_multiple, dim=2)  # (B, 128, T_pad)
            streams.append(self.audio_encoder(logmel, a_mask))  # (B, L, H), (B, L)

        if self.gate is None:
            (x, mask), = streams
            ones = torch.ones_like(x[:, 0, 0])  # (B,)
            pair = [ones, torch.zeros_like(ones)]
            weights = torch.stack(pair if self.mode == "sensor" else pair[::-1], dim=-1)
        else:
            assert quality is not None
            (s, s_mask), (a, a_mask) = streams
            weights = self.gate(s, s_mask, a, a_mask, quality).weights  # (B, 2)
            w_s, w_a = weights[:, 0:1], weights[:, 1:2]  # (B, 1) each
            x = w_s[:, :, None] * s + w_a[:, :, None] * a  # (B, L, H); streams are 0 off-mask
            # a stream with zero weight (dropped) contributes no valid steps to the head
            mask = (s_mask & (w_s > 0)) | (a_mask & (w_a > 0))  # (B, L)
        logits = self.head(x, mask)  # (B, 2)
        return ModelOutput(logits, torch.softmax(logits, dim=-1), weights)

    # ----------------------------------------------------------------- summary
    def summary(self) -> dict[str, Any]:
        """Plain-dict description for logs, checkpoints, ONNX metadata and gates.

        Returns:
            dict: ``mode``, ``n_parameters``, parameters per part, ``n_mels_in``,
            ``audio_channels_used`` (config value), ``audio_channels_reaching_encoder``
            (MEASURED on this model by :func:`~profy.models._probe.measure_audio_channels`:
            the input mel channels that change what enters ``audio_cnn2d``'s first Conv2d;
            0 in sensor mode) with the probe's record in ``audio_channels_measurement``,
            ``use_tcn``, ``use_masks``, ``min_sensor_weight``,
            ``modality_dropout_p``, ``sensor_frontend`` (None in audio mode), ``head``,
            ``hidden``, strides, ``config_hash``.
        """
        cfg = self.cfg
        probe = measure_audio_channels(self)

        def count(module: nn.Module | None) -> int:
            return 0 if module is None else sum(p.numel() for p in module.parameters())

        return {
            "mode": self.mode,
            "n_parameters": count(self),
            "n_parameters_by_part": {"sensor_encoder": count(self.sensor_encoder),
                                     "audio_encoder": count(self.audio_encoder),
                                     "gate": count(self.gate), "head": count(self.head)},
            "n_mels_in": cfg.n_mels_in,
            "audio_channels_used": cfg.audio_channels_used,
            "audio_channels_reaching_encoder": probe["channels"],
            "audio_channels_measurement": probe,
            "use_tcn": cfg.use_tcn and self.audio_encoder is not None,
            "use_masks": cfg.use_masks,
            "sensor_frontend": cfg.sensor_frontend if self.sensor_encoder is not None else None,
            "min_sensor_weight": cfg.min_sensor_weight,
            "modality_dropout_p": cfg.modality_dropout_p,
            "head": cfg.head,
            "hidden": cfg.hidden,
            "fusion_stride": cfg.fusion_stride,
            "audio_time_stride": cfg.audio_time_stride,
            "config_hash": config_hash(cfg),
        }
