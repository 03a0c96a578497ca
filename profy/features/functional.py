"""Pure tensor functions for Profy's features: log-mel, masks, quality, sensor, normalization.

Every parameter is explicit and nothing here reads files or touches global state
(randomness comes from a caller's ``torch.Generator``). The ``nn.Module`` wrappers in
:mod:`profy.features.transforms` resolve defaults from :class:`~profy.config.FeatureConfig`
and hold the buffers.

Framing: audio and sensor share one frame rate, ``sample_rate / hop_length`` (50 frames/s
by default). Frame ``i`` of the log-mel is centred on sample ``i * hop_length``
(``center=True``, reflect padding, as torchaudio and librosa), so a clip of ``n`` samples
has ``1 + n // hop_length`` real frames; clips are cut to their first ``frames`` frames or
padded up to it. Padded log-mel frames hold the floor ``-top_db`` (silence, not signal).

Masks: a frame is *valid* iff it is real (not padding) and its energy is within
``silence_db`` dB of the clip's loudest frame (and above an absolute floor, so a
digitally silent clip has no valid frame). Padded frames are never valid. After
normalization every invalid frame is set to 0 (the training mean), so padding and
silence carry no signal, and the mask travels with the features to the model.

Why ``n_fft=1024`` leaves no mel filter empty: at 16 kHz its bins are 15.6 Hz apart.
The Slaney mel scale is linear below 1 kHz, where 128 filters up to 8 kHz put filter
centres 23.4 Hz apart, so each triangle spans 46.8 Hz and always covers at least two
bins. With ``n_fft=256`` (62.5 Hz bins) some low triangles fall between bins and their
rows are all zero (torchaudio warns); see ``tests/features/test_functional.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torchaudio
from torch import Tensor

from profy.features._sensor import N_KEYS, check_sensor_times, frame_sensor

__all__ = [
    "AMIN", "CLIP_THRESHOLD", "LOUDNESS_FLOOR_DB", "N_KEYS", "SNR_RANGE_DB", "AudioQuality",
    "check_sensor_times", "clipping_ratio", "count_nonzero_frames", "downmix", "frame_energy",
    "frame_sensor", "loudness_db", "mel_filterbank", "normalize", "pad_or_trim",
    "per_sample_zscore", "power_spectrogram", "power_to_db", "quality_vector", "silence_mask",
    "snr_proxy_db", "spectral_flatness", "time_mask",
]

AMIN = 1e-10  # power floor before a log, as librosa's power_to_db
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


def downmix(waveform: Tensor) -> Tensor:
    """Average channels to mono (a plain mean keeps the original scale).

    Args:
        waveform (Tensor): Audio of dimension `(..., channels, time)`.

    Returns:
        Tensor: Mono audio of dimension `(..., time)`.
    """
    if waveform.dim() < 2:
        raise ValueError(f"waveform must be (..., channels, time), got shape "
                         f"{tuple(waveform.shape)}")
    n = waveform.shape[-2]
    return torch.matmul(waveform.new_full((n,), 1.0 / n), waveform)  # ~5x faster than mean


def mel_filterbank(*, sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float,
                   mel_scale: str = "slaney") -> Tensor:
    """Area-normalized triangular mel filters (librosa's ``norm='slaney'``), via torchaudio.

    Args:
        sample_rate (int): Sample rate of the audio.
        n_fft (int): FFT size; the filters cover its ``n_fft // 2 + 1`` bins.
        n_mels (int): Number of filters.
        f_min (float): Lowest edge in Hz.
        f_max (float): Highest edge in Hz.
        mel_scale (str, optional): ``"slaney"`` or ``"htk"``. (Default: ``"slaney"``)

    Returns:
        Tensor: Filterbank of dimension `(n_fft // 2 + 1, n_mels)`.
    """
    if mel_scale not in ("slaney", "htk"):
        raise ValueError(f"mel_scale must be 'slaney' or 'htk', got {mel_scale!r}")
    if n_fft < 2 or n_mels < 1:
        raise ValueError(f"need n_fft >= 2 and n_mels >= 1, got n_fft={n_fft}, n_mels={n_mels}")
    return torchaudio.functional.melscale_fbanks(
        n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate, norm="slaney", mel_scale=mel_scale)


def power_spectrogram(waveform: Tensor, window: Tensor, *, n_fft: int, hop_length: int) -> Tensor:
    """Power spectrogram ``|STFT|^2``, centred frames with reflect padding (torchaudio's default).

    Args:
        waveform (Tensor): Audio of dimension `(..., time)`, ``time > n_fft // 2``.
        window (Tensor): Window of dimension `(n_fft,)`, e.g. ``torch.hann_window(n_fft)``.
        n_fft (int): FFT size.
        hop_length (int): Samples between frames.

    Returns:
        Tensor: Power of dimension `(..., n_fft // 2 + 1, 1 + time // hop_length)`.
    """
    if waveform.shape[-1] <= n_fft // 2:
        raise ValueError(f"waveform has {waveform.shape[-1]} samples; reflect padding needs more "
                         f"than n_fft // 2 = {n_fft // 2}")
    lead = waveform.shape[:-1]
    spec = torch.stft(waveform.reshape(-1, waveform.shape[-1]), n_fft, hop_length, window=window,
                      center=True, pad_mode="reflect", return_complex=True)
    power = torch.view_as_real(spec).square().sum(-1)
    return power.reshape(*lead, *power.shape[-2:])


def power_to_db(power: Tensor, *, top_db: float | None, amin: float = AMIN) -> Tensor:
    """``10 log10(power / max)`` per item with a floor ``top_db`` below 0, as librosa's
    ``power_to_db(S, ref=np.max, top_db=top_db)``.

    Relative to each item's peak, so absolute level is dropped here; it is kept by
    :func:`loudness_db` in the quality vector instead.

    Args:
        power (Tensor): Power of dimension `(..., freq, time)`.
        top_db (float or None): Floor in dB below the peak; ``None`` for no floor.
        amin (float, optional): Power floor before the log. (Default: ``1e-10``)

    Returns:
        Tensor: dB of dimension `(..., freq, time)`, in ``[-top_db, 0]``.
    """
    if top_db is not None and top_db <= 0:
        raise ValueError(f"top_db must be positive, got {top_db}")
    db = 10.0 * torch.log10(power.clamp(min=amin))
    db = db - db.amax(dim=(-2, -1), keepdim=True)
    return db if top_db is None else db.clamp(min=-top_db)


def pad_or_trim(x: Tensor, frames: int, *, dim: int = -1, value: float = 0.0) -> Tensor:
    """Keep the first ``frames`` entries of ``x`` along ``dim`` (Default: ``-1``), padding
    with ``value`` (Default: ``0.0``) when shorter; returns ``x`` with ``shape[dim] == frames``.
    """
    if frames < 1:
        raise ValueError(f"frames must be positive, got {frames}")
    n = x.shape[dim]
    if n >= frames:
        return x.narrow(dim, 0, frames)
    shape = list(x.shape)
    shape[dim] = frames - n
    return torch.cat([x, x.new_full(shape, value)], dim=dim)


def frame_energy(power: Tensor) -> Tensor:
    """Energy per frame `(..., time)`: power `(..., freq, time)` summed over frequency."""
    return power.sum(dim=-2)


def silence_mask(energy: Tensor, *, frames: int, silence_db: float, amin: float = AMIN) -> Tensor:
    """Valid-frame mask: real, above ``amin`` and within ``silence_db`` dB of the loudest frame.

    Args:
        energy (Tensor): Frame energy of the real frames, dimension `(..., n_real)`.
        frames (int): Output length; frames at index ``>= n_real`` are padding.
        silence_db (float): Negative threshold relative to the loudest frame, e.g. ``-45``.
        amin (float, optional): Absolute energy floor; frames at or below it are silent.
            (Default: ``1e-10``)

    Returns:
        Tensor: Bool mask of dimension `(..., frames)`; padded frames are always False.
    """
    if silence_db >= 0:
        raise ValueError(f"silence_db must be negative (dB below the peak), got {silence_db}")
    energy = energy[..., :frames]
    db = 10.0 * torch.log10(energy.clamp(min=amin))
    valid = (db >= db.amax(dim=-1, keepdim=True) + silence_db) & (energy > amin)
    return pad_or_trim(valid, frames, value=False)


def count_nonzero_frames(logmel: Tensor, mask: Tensor, *, top_db: float) -> Tensor:
    """Frames the model sees as non-zero: valid frames with some band above the floor.

    The model-facing form sets invalid frames (padding, silence) to 0; in the floor-shifted
    log-mel ``logmel + top_db`` a frame whose every band sits on the floor is 0 as well.

    Args:
        logmel (Tensor): Log-mel of dimension `(..., n_mels, frames)` from :func:`power_to_db`.
        mask (Tensor): Valid frames, bool of dimension `(..., frames)`.
        top_db (float): The floor used for ``logmel``.

    Returns:
        Tensor: int64 counts of dimension `(...)`.
    """
    above = (logmel > -top_db).any(dim=-2)
    return (above & mask).sum(dim=-1)


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


def normalize(x: Tensor, mask: Tensor, mean: Tensor, std: Tensor, *,
              channel_dim: int = -2) -> Tensor:
    """Per-channel standardization; invalid frames become 0 (the mean) so they carry no signal.

    Args:
        x (Tensor): Log-mel `(..., n_mels, frames)` (``channel_dim=-2``) or framed sensor
            `(..., frames, keys)` (``channel_dim=-1``).
        mask (Tensor): Valid frames, bool of dimension `(..., frames)`.
        mean (Tensor): Channel means, dimension `(channels,)`.
        std (Tensor): Channel stds (already floored, > 0), dimension `(channels,)`.
        channel_dim (int, optional): ``-2`` or ``-1``. (Default: ``-2``)

    Returns:
        Tensor: Normalized ``x``, same dimension.
    """
    if channel_dim == -2:
        z = (x - mean.unsqueeze(-1)) / std.unsqueeze(-1)
        return z.masked_fill(~mask.unsqueeze(-2), 0.0)
    if channel_dim == -1:
        return ((x - mean) / std).masked_fill(~mask.unsqueeze(-1), 0.0)
    raise ValueError(f"channel_dim must be -2 or -1, got {channel_dim}")


def per_sample_zscore(logmel: Tensor, *, eps: float = 1e-8) -> Tensor:
    """LEGACY (pre-plan, ``normalization: per_sample``): z-score each item over all of its
    values, padding and silence included.

    Kept only to reproduce the 2025-09-25 behaviour in regression tests: per-item
    statistics erase absolute level, and the padding share shifts them, so short and long
    takes are scaled differently. New runs use global normalization.

    Args:
        logmel (Tensor): Log-mel of dimension `(..., n_mels, frames)`.
        eps (float, optional): Added to the std. (Default: ``1e-8``)

    Returns:
        Tensor: Z-scored log-mel of dimension `(..., n_mels, frames)`.
    """
    mean = logmel.mean(dim=(-2, -1), keepdim=True)
    std = logmel.std(dim=(-2, -1), keepdim=True, unbiased=False)
    return (logmel - mean) / (std + eps)


def time_mask(x: Tensor, mask: Tensor, *, max_width: int, n_masks: int,
              generator: torch.Generator | None = None, time_dim: int = -1
              ) -> tuple[Tensor, Tensor]:
    """SpecAugment time masking with torchaudio's sampling, drawn from ``generator``.

    Each of ``n_masks`` masks per item has a width drawn uniformly from
    ``{0, ..., max_width}`` and a start uniform within the item's span (up to its last
    valid frame). Masked frames are set to 0 and dropped from the mask, so apply this
    after normalization, where 0 is the mean. torchaudio's ``mask_along_axis_iid`` draws
    from the global RNG, hence this reimplementation.

    Args:
        x (Tensor): Features with time on ``time_dim``, e.g. `(..., n_mels, frames)`.
        mask (Tensor): Bool of dimension `(..., frames)`.
        max_width (int): Largest mask width in frames.
        n_masks (int): Masks per item.
        generator (torch.Generator, optional): CPU generator. (Default: ``None``, global RNG)
        time_dim (int, optional): Time axis of ``x``: ``-1`` or ``-2``. (Default: ``-1``)

    Returns:
        (Tensor, Tensor): Masked ``x`` and the mask with masked frames set False.
    """
    if max_width < 0 or n_masks < 0:
        raise ValueError(f"max_width and n_masks must be >= 0, got {max_width}, {n_masks}")
    if time_dim not in (-1, -2):
        raise ValueError(f"time_dim must be -1 or -2, got {time_dim}")
    if max_width == 0 or n_masks == 0:
        return x, mask
    frames = mask.shape[-1]
    pos = torch.arange(frames, device=mask.device)
    span = torch.where(mask, pos + 1, 0).amax(-1, keepdim=True).cpu()  # (..., 1)
    # one draw, item-major: a batch gets the same masks as its items one by one
    u = torch.rand((*mask.shape[:-1], n_masks, 2), generator=generator)
    width = (u[..., 0] * (max_width + 1)).long().clamp(max=max_width)
    width = torch.minimum(width, span)
    start = (u[..., 1] * (span - width + 1)).long()
    start = torch.minimum(start, span - width).to(mask.device).unsqueeze(-1)
    end = start + width.to(mask.device).unsqueeze(-1)
    hit = ((pos >= start) & (pos < end)).any(dim=-2)  # (..., frames)
    fill = hit.unsqueeze(-2) if time_dim == -1 else hit.unsqueeze(-1)
    return x.masked_fill(fill, 0.0), mask & ~hit
