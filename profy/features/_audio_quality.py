"""The per-take audio-quality vector the fusion gate reads (pure tensor functions).

SNR proxy, non-silent ratio, spectral flatness, loudness and clipping, in
:class:`AudioQuality` order (``profy.contract.schemas.QUALITY_FIELDS``); computed from
the same power spectrogram and valid-frame mask as the log-mel (:mod:`._audio`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from profy.features._audio import AMIN, frame_energy

__all__ = ["CLIP_THRESHOLD", "LOUDNESS_FLOOR_DB", "SNR_RANGE_DB", "AudioQuality",
           "clipping_ratio", "loudness_db", "quality_vector", "snr_proxy_db",
           "spectral_flatness"]

CLIP_THRESHOLD = 0.999  # |x| at or above this counts as clipped (float full scale is 1.0)
SNR_RANGE_DB = (-10.0, 60.0)  # beyond 60 dB a take is "clean"; below -10 dB it is mostly noise
LOUDNESS_FLOOR_DB = -120.0  # reported for digital silence; far below any microphone's noise


class AudioQuality(NamedTuple):
    """The audio-quality vector's fields, in the order of :func:`quality_vector`'s last dim."""

    snr_db: float
    nonsilent_ratio: float
    spectral_flatness: float
    loudness_db: float
    clipping_ratio: float



def snr_proxy_db(energy: Tensor, valid: Tensor) -> Tensor:
    """SNR proxy: mean energy of valid frames over that of the silent real frames, in dB.

    With no silent frame, the quietest tenth of the real frames (at least one) stands in
    for the noise floor, so a take buried in steady noise still scores low rather than
    "no silence, hence clean". Clamped to :data:`SNR_RANGE_DB`; a take with no valid
    frame gets the lower bound.

    Args:
        energy (Tensor): Frame energy of the real frames, dimension `(..., n_real)`.
        valid (Tensor): Bool mask of dimension `(..., frames)` with ``frames >= n_real``.

    Returns:
        Tensor: SNR in dB of dimension `(...)`.
    """
    n_real = energy.shape[-1]
    valid = valid[..., :n_real]
    silent = ~valid
    n_valid, n_silent = valid.sum(-1), silent.sum(-1)
    signal = (energy * valid).sum(-1) / n_valid.clamp(min=1)
    noise_silent = (energy * silent).sum(-1) / n_silent.clamp(min=1)
    k = max(1, n_real // 10)
    noise_quiet = energy.sort(dim=-1).values[..., :k].mean(-1)
    noise = torch.where(n_silent > 0, noise_silent, noise_quiet)
    snr = 10.0 * torch.log10(signal.clamp(min=AMIN) / noise.clamp(min=AMIN))
    snr = torch.where(n_valid > 0, snr, torch.full_like(snr, SNR_RANGE_DB[0]))
    return snr.clamp(*SNR_RANGE_DB)



def spectral_flatness(power: Tensor, valid: Tensor, *, amin: float = AMIN) -> Tensor:
    """Mean over valid frames of each frame's geometric/arithmetic mean of its power
    spectrum (librosa's ``spectral_flatness`` with ``power=2``); 0 without valid frames.

    Args:
        power (Tensor): Power of the real frames, dimension `(..., freq, n_real)`.
        valid (Tensor): Bool mask of dimension `(..., frames)` with ``frames >= n_real``.
        amin (float, optional): Power floor. (Default: ``1e-10``)

    Returns:
        Tensor: Flatness in ``[0, 1]`` of dimension `(...)`.
    """
    valid = valid[..., :power.shape[-1]]
    p = power.clamp(min=amin)
    flat = torch.exp(torch.log(p).mean(-2)) / p.mean(-2)
    return (flat * valid).sum(-1) / valid.sum(-1).clamp(min=1)



def loudness_db(waveform: Tensor, valid: Tensor, *, hop_length: int) -> Tensor:
    """RMS level in dBFS (``20 log10 rms``, full scale 1.0) of the valid frames' samples.

    Each frame owns the ``hop_length`` samples centred on it. No normalization happens
    before this: the log-mel is relative to each take's peak, so this is where absolute
    level, a real cue, survives.

    Args:
        waveform (Tensor): Mono audio of dimension `(..., time)` at the log-mel's rate.
        valid (Tensor): Bool mask of dimension `(..., frames)`.
        hop_length (int): Samples per frame.

    Returns:
        Tensor: Loudness of dimension `(...)`, at least :data:`LOUDNESS_FLOOR_DB`.
    """
    n_real = min(1 + waveform.shape[-1] // hop_length, valid.shape[-1])
    half = hop_length // 2
    right = max(0, n_real * hop_length - half - waveform.shape[-1])
    x = torch.nn.functional.pad(waveform, (half, right))[..., :n_real * hop_length]
    block = x.reshape(*x.shape[:-1], n_real, hop_length).square().sum(-1)
    v = valid[..., :n_real]
    mean_sq = (block * v).sum(-1) / (v.sum(-1) * hop_length).clamp(min=1)
    floor = 10.0 ** (LOUDNESS_FLOOR_DB / 10.0)
    return 10.0 * torch.log10(mean_sq.clamp(min=floor))



def clipping_ratio(waveform: Tensor, *, threshold: float = CLIP_THRESHOLD) -> Tensor:
    """Fraction of samples with ``|x| >= threshold``, over all channels and time.

    Args:
        waveform (Tensor): Raw audio of dimension `(..., channels, time)` or `(..., time)`,
            before any processing.
        threshold (float, optional): Clipping level. (Default: ``0.999``)

    Returns:
        Tensor: Ratio in ``[0, 1]`` of dimension `(...)` (reduced over the last two dims
        when ``waveform.dim() >= 2``).
    """
    dims = (-2, -1) if waveform.dim() >= 2 else (-1,)
    return (waveform.abs() >= threshold).float().mean(dim=dims)



def quality_vector(power: Tensor, waveform: Tensor, valid: Tensor, clip: Tensor, *,
                   hop_length: int) -> Tensor:
    """Audio-quality vector in :class:`AudioQuality` order.

    Args:
        power (Tensor): Power of the real frames, dimension `(..., freq, n_real)`.
        waveform (Tensor): Mono audio of dimension `(..., time)` at the original scale.
        valid (Tensor): Bool mask of dimension `(..., frames)`.
        clip (Tensor): :func:`clipping_ratio` of the raw input, dimension `(...)`.
        hop_length (int): Samples per frame.

    Returns:
        Tensor: float32 of dimension `(..., 5)`.
    """
    n_real = power.shape[-1]
    ratio = valid[..., :n_real].sum(-1) / n_real
    parts = (snr_proxy_db(frame_energy(power), valid), ratio, spectral_flatness(power, valid),
             loudness_db(waveform, valid, hop_length=hop_length), clip)
    return torch.stack([p.to(torch.float32) for p in parts], dim=-1)

