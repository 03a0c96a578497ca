"""Waveform to log-mel frames and their validity mask (pure tensor functions).

Downmix, mel filterbank, power spectrogram, dB with a floor, padding/cropping to the
configured frame count, and the silence-aware valid-frame mask; the conventions (frame
centring, padding, what "valid" means) are in :mod:`profy.features.functional`, the
public place to import these from.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import Tensor

__all__ = ["AMIN", "count_nonzero_frames", "downmix", "frame_energy", "mel_filterbank",
           "pad_or_trim", "power_spectrogram", "power_to_db", "silence_mask"]

AMIN = 1e-10  # power floor before a log, as librosa's power_to_db



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

