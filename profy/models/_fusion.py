"""Fusion gate: quality-aware, temperature-scaled softmax over [sensor, audio] with a floor.

The exact rule, for one example with pooled stream features ``s``, ``a`` (each ``(H,)``)
and quality vector ``q`` (``QUALITY_FIELDS`` order, raw units)::

    z       = MLP([s, a, clip((q - c) / k, -5, 5)])          # 2 gate logits
    tau     = clip(1 + (snr_ref - q.snr_db) / snr_scale, 1, tau_max)
    p_a     = min(softmax(z / tau)_a, softmax(z)_a)          # tempered audio trust
    w_s     = m + (1 - m) * (1 - p_a)                        # m = min_sensor_weight
    w_a     =     (1 - m) * p_a

so ``w_s + w_a = 1``, both lie in [0, 1] and ``w_s >= m`` for any input, and the clamp is
differentiable almost everywhere. Lower SNR -> higher tau -> the gate is flattened where
it leans to audio, so it can no longer act confidently on audio: the audio share's ceiling
``(1 - m) * sigmoid(|z_a - z_s| / tau)`` falls toward ``(1 - m) / 2`` (0.325 at m = 0.35).
Flattening a gate that leans to the *sensor* would raise the audio share instead, which
is why ``p_a`` takes the smaller of the tempered and untempered values: for fixed logits
the audio share never rises as the SNR falls (tested), it only falls or stays.
``c`` and ``k`` are fixed buffers (typical centre and spread of each quality field), so
the raw vector from the feature layer can be passed as is.

Two overrides, both applied after the formula: a row whose audio has no valid frame gets
``[1, 0]`` (nothing to listen to), and in training, modality dropout may set a row to
``[1, 0]`` or ``[0, 1]`` (the only case in which ``w_s < m``: a dropped sensor).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from profy.config import ModelConfig
from profy.models._layers import MaskedAttentionPool

__all__ = [
    "FusionGate",
    "GateOutput",
    "clamped_gate_weights",
    "modality_dropout",
    "snr_temperature",
]

# Centre and spread of each QUALITY_FIELDS entry, used to bring the raw quality vector to
# ~unit scale for the gate MLP: snr_db ~[-10, 60], ratios in [0, 1], loudness in dBFS,
# clipping usually < 1%.
_QUALITY_CENTER = (20.0, 0.5, 0.3, -30.0, 0.0)
_QUALITY_SCALE = (20.0, 0.5, 0.3, 20.0, 0.01)


def snr_temperature(snr_db: Tensor, *, ref: float, scale: float, max_value: float) -> Tensor:
    """Gate temperature from the SNR proxy: ``clip(1 + (ref - snr_db) / scale, 1, max_value)``.

    Args:
        snr_db (Tensor): ``(B,)`` SNR proxy in dB.
        ref (float): SNR at and above which tau = 1.
        scale (float): dB of SNR loss per unit of temperature.
        max_value (float): upper bound of tau.

    Returns:
        Tensor: ``(B,)`` temperatures in ``[1, max_value]``.
    """
    return torch.clamp(1.0 + (ref - snr_db) / scale, min=1.0, max=max_value)


def clamped_gate_weights(logits: Tensor, temperature: Tensor, min_sensor_weight: float) -> Tensor:
    """Temperature-tempered audio trust with the sensor floor (see the module docstring).

    Args:
        logits (Tensor): ``(B, 2)`` gate logits, [sensor, audio].
        temperature (Tensor): ``(B,)``, >= 1.
        min_sensor_weight (float): m in [0, 1].

    Returns:
        Tensor: ``(B, 2)`` weights [sensor, audio]; rows sum to 1, sensor >= m, and the
        audio weight is non-increasing in ``temperature``.
    """
    tempered = torch.softmax(logits / temperature[:, None], dim=-1)[:, 1]  # (B,)
    untempered = torch.softmax(logits, dim=-1)[:, 1]  # (B,)
    audio = (1.0 - min_sensor_weight) * torch.minimum(tempered, untempered)  # (B,)
    return torch.stack([1.0 - audio, audio], dim=-1)


def modality_dropout(weights: Tensor, p: float, generator: torch.Generator | None = None
                     ) -> Tensor:
    """Drop a whole modality per example with probability ``p`` (never both).

    A dropped row becomes ``[1, 0]`` (audio dropped) or ``[0, 1]`` (sensor dropped), each
    with probability 1/2. Acting on the gate weights (not the inputs) keeps the inputs
    honest: no fake zero spectrograms that the encoders would learn to recognise.

    Args:
        weights (Tensor): ``(B, 2)`` gate weights.
        p (float): per-example drop probability.
        generator (torch.Generator, optional): RNG for the draws. (Default: global RNG)

    Returns:
        Tensor: ``(B, 2)``.
    """
    n = weights.shape[0]
    drop = torch.rand(n, generator=generator, device=weights.device) < p  # (B,)
    drop_audio = torch.rand(n, generator=generator, device=weights.device) < 0.5  # (B,)
    keep_sensor = torch.stack([drop_audio, ~drop_audio], dim=-1).to(weights.dtype)  # (B, 2)
    return torch.where(drop[:, None], keep_sensor, weights)


class GateOutput(NamedTuple):
    """What the gate decided for a batch.

    Attributes:
        weights: ``(B, 2)`` [sensor, audio], the weights actually used for fusion.
        temperature: ``(B,)`` tau from the SNR proxy.
        logits: ``(B, 2)`` raw gate logits before temperature and floor.
    """

    weights: Tensor
    temperature: Tensor
    logits: Tensor


class FusionGate(nn.Module):
    """Pools each stream, reads the quality vector, and weighs [sensor, audio].

    The last layer starts at zero, so an untrained gate gives ``p = [1/2, 1/2]`` and
    ``w = [m + (1 - m)/2, (1 - m)/2]`` (0.675/0.325 at the default m): sensor-led, as
    the plan asks, until audio earns more.

    Args:
        cfg (ModelConfig): uses ``hidden``, ``gate_hidden``, ``quality_dim``,
            ``min_sensor_weight``, ``modality_dropout_p``, ``temperature_*``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.pool_sensor = MaskedAttentionPool(cfg.hidden)
        self.pool_audio = MaskedAttentionPool(cfg.hidden)
        self.mlp = nn.Sequential(
            nn.Linear(2 * cfg.hidden + cfg.quality_dim, cfg.gate_hidden),
            nn.GELU(),
            nn.Linear(cfg.gate_hidden, 2),
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)
        known = cfg.quality_dim == len(_QUALITY_CENTER)  # other sizes: passed through as is
        center = _QUALITY_CENTER if known else (0.0,) * cfg.quality_dim
        scale = _QUALITY_SCALE if known else (1.0,) * cfg.quality_dim
        self.register_buffer("quality_center", torch.tensor(center), persistent=False)
        self.register_buffer("quality_scale", torch.tensor(scale), persistent=False)

    def temperature(self, quality: Tensor) -> Tensor:
        """Gate temperature of each example, ``(B, quality_dim) -> (B,)``; column 0 = snr_db."""
        return snr_temperature(quality[:, 0], ref=self.cfg.temperature_snr_ref,
                               scale=self.cfg.temperature_snr_scale,
                               max_value=self.cfg.temperature_max)

    def forward(self, sensor: Tensor, sensor_mask: Tensor, audio: Tensor, audio_mask: Tensor,
                quality: Tensor) -> GateOutput:
        """Weigh the two streams.

        Args:
            sensor (Tensor): ``(B, L, H)`` sensor stream.
            sensor_mask (Tensor): ``(B, L)`` bool.
            audio (Tensor): ``(B, L, H)`` audio stream at the same rate.
            audio_mask (Tensor): ``(B, L)`` bool.
            quality (Tensor): ``(B, quality_dim)`` raw quality vector.

        Returns:
            GateOutput: weights ``(B, 2)``, temperature ``(B,)``, logits ``(B, 2)``.
        """
        q = (quality - self.quality_center) / self.quality_scale  # (B, Q), ~unit scale
        q = torch.clamp(q, -5.0, 5.0)  # an outlier (e.g. heavy clipping) cannot swamp the MLP
        feats = torch.cat([self.pool_sensor(sensor, sensor_mask),
                           self.pool_audio(audio, audio_mask), q], dim=-1)  # (B, 2H+Q)
        logits = self.mlp(feats)  # (B, 2)
        tau = self.temperature(quality)  # (B,)
        weights = clamped_gate_weights(logits, tau, self.cfg.min_sensor_weight)  # (B, 2)
        if self.training and self.cfg.modality_dropout_p > 0:
            weights = modality_dropout(weights, self.cfg.modality_dropout_p)
        # nothing to listen to: all weight on the sensor (also keeps dropout from
        # dropping the sensor of a row whose audio is empty, i.e. never both)
        sensor_only = torch.tensor([1.0, 0.0], dtype=weights.dtype, device=weights.device)
        has_audio = audio_mask.any(dim=-1, keepdim=True)  # (B, 1)
        weights = torch.where(has_audio, weights, sensor_only)
        return GateOutput(weights, tau, logits)
