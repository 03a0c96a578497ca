"""The input policy: what a take's files must be for Profy to use them, defined once.

``build_manifest`` (so ``data inspect``, ``data prepare``, ``train``) and the feature
workers (``profy features``) run the same :class:`InputPolicy`, so inspection lists
every take the pipeline would refuse, with the same words. The readers
(:mod:`profy.data._readers`) already refuse files that cannot be decoded as promised
(empty, truncated, non-numeric or non-finite cells, NaN samples, time going backwards);
the policy adds what depends on the feature settings:

=====================  =========================================================
audio bit depth        no 8-bit PCM (too coarse for the log-mel features)
audio sample rate      ``features.input_sample_rate`` (0 accepts any rate)
audio length           at least one ``n_fft`` window at the feature rate
audio channels         1..8 (more means a transposed array, not a recording)
sensor rate            within ``sensor_rate_tolerance`` of ``sensor_rate_hz``
sensor start           a row inside the model's ``frames`` frames (seconds from 0)
=====================  =========================================================

Torch-free: numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from profy.config import FeatureConfig
from profy.data._readers import AudioInfo, SensorData
from profy.errors import MalformedFileError

__all__ = ["BOUNDARY_EPS", "MAX_CHANNELS", "InputPolicy"]

BOUNDARY_EPS = 1e-6  # in frames: a timestamp on a frame boundary (up to float error) starts it
MAX_CHANNELS = 8  # more "channels" than this means a (channels, frames) array was passed
_COARSE_SUBTYPES = ("PCM_U8", "PCM_S8")


@dataclass(frozen=True)
class InputPolicy:
    """The checks a take's audio and sensor files must pass, from the feature config.

    Args:
        input_sample_rate: required audio rate in Hz; 0 accepts any.
        feature_sample_rate: the rate audio is resampled to.
        n_fft: analysis window (samples at ``feature_sample_rate``); a take needs one.
        sensor_rate_hz: nominal sensor rate.
        sensor_rate_tolerance: largest relative deviation of the measured rate.
        frame_rate_hz: frames per second of the model input.
        frames: frames the model sees; at least one sensor row must fall in them.
    """

    input_sample_rate: int = 44_100
    feature_sample_rate: int = 16_000
    n_fft: int = 1024
    sensor_rate_hz: float = 1000.0
    sensor_rate_tolerance: float = 0.1
    frame_rate_hz: float = 50.0
    frames: int = 560

    @classmethod
    def from_features(cls, cfg: FeatureConfig | None = None) -> InputPolicy:
        """The policy the feature pipeline applies with ``cfg`` (default settings if None)."""
        cfg = cfg or FeatureConfig()
        return cls(input_sample_rate=cfg.input_sample_rate, feature_sample_rate=cfg.sample_rate,
                   n_fft=cfg.n_fft, sensor_rate_hz=cfg.sensor_rate_hz,
                   sensor_rate_tolerance=cfg.sensor_rate_tolerance,
                   frame_rate_hz=cfg.frame_rate_hz, frames=cfg.frames)

    def min_audio_frames(self, sample_rate: int) -> int:
        """Sample frames at ``sample_rate`` that make one ``n_fft`` window after resampling."""
        return int(self.n_fft * sample_rate / self.feature_sample_rate)

    def check_audio(self, path: Path, info: AudioInfo) -> None:
        """Raise :class:`MalformedFileError` naming ``path`` if the audio header is refused."""
        if info.subtype in _COARSE_SUBTYPES:
            raise MalformedFileError(path, f"8-bit audio ({info.subtype}): too coarse for the "
                                           "log-mel features; the corpus records 32-bit float")
        if self.input_sample_rate and info.sample_rate != self.input_sample_rate:
            raise MalformedFileError(path, f"sample rate {info.sample_rate} Hz, expected "
                                           f"{self.input_sample_rate} Hz "
                                           "(features.input_sample_rate; 0 accepts any rate)")
        if not 1 <= info.channels <= MAX_CHANNELS:
            raise MalformedFileError(path, f"{info.channels} audio channels; expected 1 to "
                                           f"{MAX_CHANNELS} (the corpus records stereo)")
        need = self.min_audio_frames(info.sample_rate)
        if info.frames < need:
            raise MalformedFileError(path, f"too short to analyse: {info.frames} sample "
                                           f"frame(s); need at least {need} (one "
                                           f"{self.n_fft}-point window)")

    def check_sensor(self, path: Path, sensor: SensorData) -> None:
        """Raise :class:`MalformedFileError` naming ``path`` if the sensor data is refused.

        ``sensor`` comes from :func:`~profy.data.read_sensor`, which has already checked
        column count, finiteness and strictly increasing time.
        """
        rate = sensor.rate_hz
        if abs(rate - self.sensor_rate_hz) > self.sensor_rate_tolerance * self.sensor_rate_hz:
            raise MalformedFileError(path, f"measured sensor rate {rate:.1f} Hz is off the "
                                           f"nominal {self.sensor_rate_hz:g} Hz by more than "
                                           f"{self.sensor_rate_tolerance:.0%}")
        # The frame index the features give each row (profy.features frame_sensor).
        idx = np.floor(sensor.times * self.frame_rate_hz + BOUNDARY_EPS)
        if not ((idx >= 0) & (idx < self.frames)).any():
            window = self.frames / self.frame_rate_hz
            raise MalformedFileError(path, f"no sensor row in the first {window:g} s: "
                                           f"timestamps span {float(sensor.times[0]):g}.."
                                           f"{float(sensor.times[-1]):g} s, expected seconds "
                                           "from the take's start")
