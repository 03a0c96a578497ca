"""``nn.Module`` wrappers of :mod:`profy.features.functional`.

Each resolves its defaults (or takes them from a :class:`~profy.config.FeatureConfig`
via ``from_config``), keeps its tensors as buffers so ``.to(device)`` and state dicts
carry them, and delegates ``forward`` to one functional call.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

import profy.features.functional as F
from profy.config import FeatureConfig
from profy.features._normalization import NormStats, check_config_hash

__all__ = ["GlobalNormalize", "LogMel", "SensorFraming", "SilenceMask", "TimeMaskAugment"]


class LogMel(nn.Module):
    """Log-mel spectrogram relative to the clip's peak, cut or padded to ``frames`` frames.

    Args:
        sample_rate (int, optional): Input sample rate. (Default: ``16000``)
        n_fft (int, optional): FFT size (Hann window of the same length). (Default: ``1024``)
        hop_length (int, optional): Samples per frame. (Default: ``320``)
        n_mels (int, optional): Mel channels, all kept. (Default: ``128``)
        f_min (float, optional): Lowest filter edge in Hz. (Default: ``0.0``)
        f_max (float or None, optional): Highest edge; ``None`` is Nyquist. (Default: ``None``)
        mel_scale (str, optional): ``"slaney"`` or ``"htk"``. (Default: ``"slaney"``)
        top_db (float, optional): Floor below the peak, in dB. (Default: ``80.0``)
        frames (int, optional): Output frames. (Default: ``560``)

    Example:
        >>> logmel = LogMel()(torch.randn(2, 16000))  # (2, 128, 560)
    """

    window: Tensor
    fb: Tensor

    def __init__(self, *, sample_rate: int = 16_000, n_fft: int = 1024, hop_length: int = 320,
                 n_mels: int = 128, f_min: float = 0.0, f_max: float | None = None,
                 mel_scale: str = "slaney", top_db: float = 80.0, frames: int = 560) -> None:
        super().__init__()
        if hop_length < 1 or frames < 1 or top_db <= 0:
            raise ValueError(f"need hop_length >= 1, frames >= 1, top_db > 0; got {hop_length}, "
                             f"{frames}, {top_db}")
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.n_mels, self.top_db, self.frames = n_mels, top_db, frames
        f_max = sample_rate / 2 if f_max is None else f_max
        self.register_buffer("window", torch.hann_window(n_fft))
        self.register_buffer("fb", F.mel_filterbank(sample_rate=sample_rate, n_fft=n_fft,
                                                    n_mels=n_mels, f_min=f_min, f_max=f_max,
                                                    mel_scale=mel_scale))

    @classmethod
    def from_config(cls, cfg: FeatureConfig) -> LogMel:
        """Build from a feature config."""
        return cls(sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                   n_mels=cfg.n_mels, f_min=cfg.f_min, f_max=cfg.f_max, mel_scale=cfg.mel_scale,
                   top_db=cfg.top_db, frames=cfg.frames)

    def power(self, waveform: Tensor) -> Tensor:
        """Power spectrogram of the real frames, cut to at most ``frames``.

        Args:
            waveform (Tensor): Mono audio of dimension `(..., time)`.

        Returns:
            Tensor: Power of dimension `(..., n_fft // 2 + 1, min(1 + time // hop, frames))`.
        """
        power = F.power_spectrogram(waveform, self.window, n_fft=self.n_fft,
                                    hop_length=self.hop_length)
        return power[..., :self.frames]

    def from_power(self, power: Tensor) -> Tensor:
        """Log-mel from :meth:`power`'s output, padded with the floor to ``frames``.

        Args:
            power (Tensor): Power of dimension `(..., n_fft // 2 + 1, n_real)`.

        Returns:
            Tensor: Log-mel of dimension `(..., n_mels, frames)` in ``[-top_db, 0]``.
        """
        mel = torch.matmul(self.fb.transpose(0, 1), power)
        logmel = F.power_to_db(mel, top_db=self.top_db)
        return F.pad_or_trim(logmel, self.frames, value=-self.top_db)

    def forward(self, waveform: Tensor) -> Tensor:
        """Log-mel of dimension `(..., n_mels, frames)` from mono audio `(..., time)`."""
        return self.from_power(self.power(waveform))


class SilenceMask(nn.Module):
    """Valid-frame mask from a power spectrogram (see :func:`functional.silence_mask`).

    Args:
        frames (int, optional): Output frames. (Default: ``560``)
        silence_db (float, optional): Threshold below the loudest frame. (Default: ``-45.0``)
    """

    def __init__(self, *, frames: int = 560, silence_db: float = -45.0) -> None:
        super().__init__()
        if silence_db >= 0 or frames < 1:
            raise ValueError(f"need silence_db < 0 and frames >= 1, got {silence_db}, {frames}")
        self.frames, self.silence_db = frames, silence_db

    @classmethod
    def from_config(cls, cfg: FeatureConfig) -> SilenceMask:
        """Build from a feature config."""
        return cls(frames=cfg.frames, silence_db=cfg.silence_db)

    def forward(self, power: Tensor) -> Tensor:
        """Bool mask `(..., frames)` from power `(..., freq, n_real)` (e.g. ``LogMel.power``)."""
        return F.silence_mask(F.frame_energy(power), frames=self.frames,
                              silence_db=self.silence_db)


class SensorFraming(nn.Module):
    """Check sensor timestamps and average the rows of each frame.

    Args:
        frame_rate (float, optional): Frames per second. (Default: ``50.0``)
        frames (int, optional): Output frames. (Default: ``560``)
        rate_hz (float, optional): Nominal sensor rate. (Default: ``1000.0``)
        tolerance (float, optional): Allowed relative rate deviation. (Default: ``0.1``)
    """

    def __init__(self, *, frame_rate: float = 50.0, frames: int = 560, rate_hz: float = 1000.0,
                 tolerance: float = 0.1) -> None:
        super().__init__()
        if frame_rate <= 0 or frames < 1 or rate_hz <= 0 or not 0 <= tolerance < 1:
            raise ValueError(f"bad sensor framing: frame_rate={frame_rate}, frames={frames}, "
                             f"rate_hz={rate_hz}, tolerance={tolerance}")
        self.frame_rate, self.frames = frame_rate, frames
        self.rate_hz, self.tolerance = rate_hz, tolerance

    @classmethod
    def from_config(cls, cfg: FeatureConfig) -> SensorFraming:
        """Build from a feature config."""
        return cls(frame_rate=cfg.frame_rate_hz, frames=cfg.frames, rate_hz=cfg.sensor_rate_hz,
                   tolerance=cfg.sensor_rate_tolerance)

    def forward(self, times: Tensor, keys: Tensor, *, source: str = "") -> tuple[Tensor, Tensor]:
        """Frame means `(..., frames, keys)` and mask `(frames,)` from times `(rows,)` and
        keys `(..., rows, keys)`.

        Raises:
            FeatureError: bad timestamps (see :func:`functional.check_sensor_times`),
                naming ``source``.
        """
        F.check_sensor_times(times, rate_hz=self.rate_hz, tolerance=self.tolerance,
                             source=source)
        return F.frame_sensor(times, keys, frame_rate=self.frame_rate, frames=self.frames)


class GlobalNormalize(nn.Module):
    """Standardize with fixed training-fold statistics; invalid frames become 0.

    Args:
        mean (Tensor): Channel means, dimension `(channels,)`.
        std (Tensor): Channel stds, dimension `(channels,)`, all > 0.
        feature_config_hash (str): Hash of the feature config the stats were fitted with.
        channel_dim (int, optional): ``-2`` for log-mel `(..., n_mels, frames)`, ``-1`` for
            sensor `(..., frames, keys)`. (Default: ``-2``)
    """

    mean: Tensor
    std: Tensor

    def __init__(self, mean: Tensor, std: Tensor, *, feature_config_hash: str,
                 channel_dim: int = -2) -> None:
        super().__init__()
        mean, std = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(
            std, dtype=torch.float32)
        if mean.dim() != 1 or mean.shape != std.shape:
            raise ValueError(f"mean and std must be (channels,), got {tuple(mean.shape)} and "
                             f"{tuple(std.shape)}")
        if not bool((std > 0).all() & torch.isfinite(std).all() & torch.isfinite(mean).all()):
            raise ValueError(f"std must be finite and > 0 and mean finite, got std={std}")
        if channel_dim not in (-1, -2):
            raise ValueError(f"channel_dim must be -1 or -2, got {channel_dim}")
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.feature_config_hash, self.channel_dim = feature_config_hash, channel_dim

    @classmethod
    def from_stats(cls, stats: NormStats, *, modality: str,
                   feature_config_hash: str) -> GlobalNormalize:
        """Build from a :class:`~profy.features.NormStats` for ``"audio"`` or ``"sensor"``.

        Raises:
            FeatureError: the stats were fitted with another feature config.
        """
        check_config_hash(stats, feature_config_hash)
        if modality == "audio":
            return cls(torch.tensor(stats.audio_mean), torch.tensor(stats.audio_std),
                       feature_config_hash=feature_config_hash, channel_dim=-2)
        if modality == "sensor":
            return cls(torch.tensor(stats.sensor_mean), torch.tensor(stats.sensor_std),
                       feature_config_hash=feature_config_hash, channel_dim=-1)
        raise ValueError(f"modality must be 'audio' or 'sensor', got {modality!r}")

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Normalized ``x`` (same shape) with frames outside ``mask`` `(..., frames)` at 0."""
        return F.normalize(x, mask, self.mean, self.std, channel_dim=self.channel_dim)


class TimeMaskAugment(nn.Module):
    """SpecAugment time masking for training; the identity in eval mode.

    Masked frames are set to 0 and removed from the mask (apply after normalization).

    Args:
        max_width (int): Largest mask width in frames; 0 disables.
        n_masks (int, optional): Masks per item. (Default: ``2``)
        seed (int or None, optional): Seeds the module's own CPU generator, so a run is
            reproducible without touching the global RNG. (Default: ``None``, nondeterministic)
        time_dim (int, optional): ``-1`` for `(..., n_mels, frames)`, ``-2`` for
            `(..., frames, keys)`. (Default: ``-1``)
    """

    def __init__(self, max_width: int, n_masks: int = 2, *, seed: int | None = None,
                 time_dim: int = -1) -> None:
        super().__init__()
        if max_width < 0 or n_masks < 0 or time_dim not in (-1, -2):
            raise ValueError(f"need max_width >= 0, n_masks >= 0, time_dim in (-1, -2); got "
                             f"{max_width}, {n_masks}, {time_dim}")
        self.max_width, self.n_masks, self.time_dim = max_width, n_masks, time_dim
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    @classmethod
    def from_config(cls, cfg: FeatureConfig, *, seed: int | None = None) -> TimeMaskAugment:
        """Build from a feature config (``spec_augment_time_mask``, ``spec_augment_n_masks``)."""
        return cls(cfg.spec_augment_time_mask, cfg.spec_augment_n_masks, seed=seed)

    def forward(self, x: Tensor, mask: Tensor, *, generator: torch.Generator | None = None
                ) -> tuple[Tensor, Tensor]:
        """Masked ``x`` and mask `(..., frames)` in training; both unchanged in eval.

        Args:
            x (Tensor): Features, time on ``time_dim``.
            mask (Tensor): Bool of dimension `(..., frames)`.
            generator (torch.Generator, optional): Overrides the module's generator.
        """
        if not self.training:
            return x, mask
        return F.time_mask(x, mask, max_width=self.max_width, n_masks=self.n_masks,
                           generator=generator or self.generator, time_dim=self.time_dim)
