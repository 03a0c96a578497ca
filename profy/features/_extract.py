"""Per-take feature extraction: arrays in, arrays out, composed from the functional layer.

No file I/O and no module-level state: a :class:`FeatureExtractor` owns its transforms
and its resampling kernels (one per input sample rate), so a worker process builds one
and reuses it for every take.

Per take: the raw waveform gives the clipping ratio and peak; its channels are averaged
(at the original scale) and resampled to ``cfg.sample_rate``; one power spectrogram then
feeds the log-mel, the silence-aware mask and the quality vector. Sensor rows are
checked and averaged per frame.

``nonzero_frames`` counts the frames the model will see as non-zero: valid frames (the
mask) whose log-mel column has some band above the ``-top_db`` floor. Invalid frames
are 0 after normalization, and in the floor-shifted log-mel ``logmel + top_db`` a frame
that is all floor is 0 too. For real recordings it equals the valid-frame count; the
plan's regression check asks for at least 120 of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio
from torch import Tensor

import profy.features.functional as F
from profy.config import FeatureConfig, config_hash
from profy.data._policy import MAX_CHANNELS
from profy.errors import FeatureError
from profy.features.transforms import LogMel, SensorFraming, SilenceMask

__all__ = ["FeatureExtractor", "TakeFeatures", "extract_take"]



@dataclass(frozen=True, eq=False)
class TakeFeatures:
    """One take's features, before normalization.

    Attributes:
        logmel: float32 `(n_mels, frames)` in dB relative to the take's peak, in
            ``[-top_db, 0]``; padded frames hold the floor ``-top_db``.
        audio_mask: bool `(frames,)`, valid (real, non-silent) audio frames.
        sensor: float32 `(frames, 88)`, mean of the sensor rows in each frame; 0 where none.
        sensor_mask: bool `(frames,)`, frames holding at least one sensor row.
        quality: float32 `(5,)`, the quality vector in ``QUALITY_FIELDS`` order.
        audio_frames_real: frames holding real audio (not padding), at most ``frames``.
        sensor_frames_real: frames up to the last one holding a sensor row.
        nonzero_frames: frames the model sees as non-zero (see the module docstring).
        peak: max ``|sample|`` of the raw input, original scale (non-finite samples as 0).
        finite: whether every input sample (audio and sensor) was finite; non-finite
            values were replaced by 0 so the features stay finite.
        duration_s: audio duration before cutting or padding.
        sensor_rate_hz: measured sensor rate (``1 / median`` timestamp step).
    """

    logmel: np.ndarray
    audio_mask: np.ndarray
    sensor: np.ndarray
    sensor_mask: np.ndarray
    quality: np.ndarray
    audio_frames_real: int
    sensor_frames_real: int
    nonzero_frames: int
    peak: float
    finite: bool
    duration_s: float
    sensor_rate_hz: float

    @property
    def valid_frames(self) -> int:
        """Number of valid (non-silent, real) audio frames."""
        return int(self.audio_mask.sum())

    def quality_dict(self) -> dict[str, float]:
        """The quality vector as ``{field: value}``."""
        return dict(zip(F.AudioQuality._fields, self.quality.tolist(), strict=True))


def _as_tensor(array: np.ndarray, dtype: np.dtype) -> Tensor:
    array = np.asarray(array, dtype=dtype)
    if not array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array, dtype=dtype, order="C")  # torch.from_numpy wants writable
    return torch.from_numpy(array)


class FeatureExtractor:
    """Turns one take's arrays into :class:`TakeFeatures`.

    Args:
        cfg: feature config. (Default: ``FeatureConfig()``)

    Example:
        >>> extract = FeatureExtractor(cfg)
        >>> feats = extract(audio.samples, audio.sample_rate, sensor.times, sensor.keys,
        ...                 source=str(audio.path))
    """

    def __init__(self, cfg: FeatureConfig | None = None) -> None:
        self.cfg = cfg or FeatureConfig()
        self.feature_config_hash = config_hash(self.cfg)
        self.log_mel = LogMel.from_config(self.cfg)
        self.silence = SilenceMask.from_config(self.cfg)
        self.sensor_framing = SensorFraming.from_config(self.cfg)
        self._resamplers: dict[int, torchaudio.transforms.Resample] = {}

    def _resample(self, mono: Tensor, sample_rate: int) -> Tensor:
        if sample_rate == self.cfg.sample_rate:
            return mono
        resampler = self._resamplers.get(sample_rate)
        if resampler is None:  # the sinc kernel is built once per input rate
            resampler = torchaudio.transforms.Resample(sample_rate, self.cfg.sample_rate)
            self._resamplers[sample_rate] = resampler
        return resampler(mono)

    def __call__(self, waveform: np.ndarray, sample_rate: int, sensor_times: np.ndarray,
                 sensor_keys: np.ndarray, *, source: str = "") -> TakeFeatures:
        """Extract one take.

        Args:
            waveform: float32 `(samples, channels)` (or `(samples,)` mono), any scale.
            sample_rate: the waveform's rate in Hz.
            sensor_times: float64 `(rows,)` timestamps in seconds from the take's start.
            sensor_keys: float32 `(rows, 88)` key displacements.
            source: names the take in error messages (e.g. its folder). (Default: ``""``)

        Raises:
            FeatureError: bad shapes or rate, audio shorter than ``n_fft // 2`` samples after
                resampling, bad sensor timestamps, or no sensor row in the first frames.
        """
        where = f"{source}: " if source else ""
        with torch.inference_mode():
            audio = self._audio(waveform, sample_rate, where)
            sensor = self._sensor(sensor_times, sensor_keys, source, where)
        finite = audio.pop("_finite") & sensor.pop("_finite")  # not `and`: pop both
        return TakeFeatures(**audio, **sensor, finite=bool(finite))

    def _audio(self, waveform: np.ndarray, sample_rate: int, where: str) -> dict:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or \
                sample_rate <= 0:
            raise FeatureError(f"{where}sample_rate must be a positive integer, got "
                               f"{sample_rate!r}")
        x = _as_tensor(waveform, np.float32)
        if x.dim() == 1:
            x = x.unsqueeze(1)
        if x.dim() != 2 or not 1 <= x.shape[1] <= MAX_CHANNELS:
            raise FeatureError(f"{where}waveform must be (samples, channels), got shape "
                               f"{tuple(x.shape)}")
        if x.shape[0] == 0:
            raise FeatureError(f"{where}audio has no samples")
        magnitude = x.abs()
        peak = float(magnitude.max())  # max propagates NaN, so this also checks finiteness
        finite = math.isfinite(peak)
        clip = F.clipping_ratio(x) if not peak < F.CLIP_THRESHOLD else x.new_zeros(())
        if not finite:
            x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
            peak = float(x.abs().max())
        mono = self._resample(F.downmix(x.transpose(0, 1)), int(sample_rate))
        if mono.shape[-1] <= self.cfg.n_fft // 2:
            raise FeatureError(f"{where}audio too short: {x.shape[0]} samples at {sample_rate} Hz"
                               f" give {mono.shape[-1]} at {self.cfg.sample_rate} Hz; need more "
                               f"than n_fft // 2 = {self.cfg.n_fft // 2}")
        power = self.log_mel.power(mono)  # (freq, n_real)
        logmel = self.log_mel.from_power(power)  # (n_mels, frames)
        mask = self.silence(power)  # (frames,)
        quality = F.quality_vector(power, mono, mask, clip, hop_length=self.cfg.hop_length)
        nonzero = F.count_nonzero_frames(logmel, mask, top_db=self.cfg.top_db)
        return {"logmel": logmel.numpy(), "audio_mask": mask.numpy(), "quality": quality.numpy(),
                "audio_frames_real": int(power.shape[-1]), "nonzero_frames": int(nonzero),
                "peak": peak, "duration_s": x.shape[0] / sample_rate, "_finite": finite}

    def _sensor(self, times: np.ndarray, keys: np.ndarray, source: str, where: str) -> dict:
        t = _as_tensor(times, np.float64)
        k = _as_tensor(keys, np.float32)
        if k.dim() != 2 or k.shape[1] != F.N_KEYS or t.shape != (k.shape[0],):
            raise FeatureError(f"{where}sensor must be times (rows,) and keys (rows, {F.N_KEYS}),"
                               f" got {tuple(t.shape)} and {tuple(k.shape)}")
        finite = k.numel() == 0 or math.isfinite(float(k.abs().max()))  # NaN propagates
        if not finite:
            k = torch.nan_to_num(k, nan=0.0, posinf=0.0, neginf=0.0)
        rate = F.check_sensor_times(t, rate_hz=self.cfg.sensor_rate_hz,
                                    tolerance=self.cfg.sensor_rate_tolerance, source=source)
        framed, mask = F.frame_sensor(t, k, frame_rate=self.cfg.frame_rate_hz,
                                      frames=self.cfg.frames)
        hits = torch.nonzero(mask)
        if hits.numel() == 0:
            raise FeatureError(f"{where}no sensor row falls in the first {self.cfg.frames} "
                               f"frames: timestamps span {float(t[0]):g}..{float(t[-1]):g} s, "
                               f"expected seconds from the take's start")
        return {"sensor": framed.numpy(), "sensor_mask": mask.numpy(),
                "sensor_frames_real": int(hits[-1, 0]) + 1, "sensor_rate_hz": rate,
                "_finite": finite}


def extract_take(waveform: np.ndarray, sample_rate: int, sensor_times: np.ndarray,
                 sensor_keys: np.ndarray, cfg: FeatureConfig, *,
                 source: str = "") -> TakeFeatures:
    """One-off :class:`FeatureExtractor` call; build an extractor to process many takes."""
    return FeatureExtractor(cfg)(waveform, sample_rate, sensor_times, sensor_keys,
                                 source=source)
