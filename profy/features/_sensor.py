"""The 88-key sensor: timestamp checks and framing by averaging (pure tensor functions).

The sensor's own half of the feature layer: rows arrive at their own rate and are
averaged into the audio's frames (:mod:`._audio` computes the other half). Import them
from :mod:`profy.features.functional`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from profy.contract.model_io import N_KEYS  # piano keys A0..C8, one sensor channel each
from profy.data._policy import BOUNDARY_EPS
from profy.errors import FeatureError

__all__ = ["N_KEYS", "check_sensor_times", "frame_sensor"]


def check_sensor_times(times: Tensor, *, rate_hz: float, tolerance: float,
                       source: str = "") -> float:
    """Check that sensor timestamps increase strictly at about ``rate_hz``.

    Args:
        times (Tensor): Timestamps in seconds, dimension `(rows,)`.
        rate_hz (float): Nominal rate.
        tolerance (float): Largest allowed relative deviation of ``1 / median(diff)``.
        source (str, optional): Named in error messages, e.g. the file path. (Default: ``""``)

    Returns:
        float: The measured rate in Hz.

    Raises:
        FeatureError: fewer than 2 rows, non-finite or non-increasing times, or a rate
            off by more than ``tolerance``.
    """
    where = f"{source}: " if source else ""
    if times.dim() != 1 or times.shape[0] < 2:
        raise FeatureError(f"{where}need at least 2 sensor rows in a (rows,) time vector, "
                           f"got shape {tuple(times.shape)}")
    if not bool(torch.isfinite(times).all()):
        raise FeatureError(f"{where}sensor timestamps contain NaN or infinity")
    step = torch.diff(times.double())
    bad = torch.nonzero(step <= 0)
    if bad.numel():
        i = int(bad[0, 0]) + 1
        raise FeatureError(f"{where}sensor timestamps must increase strictly; row {i} has "
                           f"t={float(times[i])!r} after t={float(times[i - 1])!r}")
    rate = 1.0 / float(step.median())
    if abs(rate - rate_hz) > tolerance * rate_hz:
        raise FeatureError(f"{where}measured sensor rate {rate:.1f} Hz is off the nominal "
                           f"{rate_hz:g} Hz by more than {tolerance:.0%}")
    return rate


def frame_sensor(times: Tensor, keys: Tensor, *, frame_rate: float, frames: int,
                 origin: float = 0.0) -> tuple[Tensor, Tensor]:
    """Average the sensor rows that fall in each frame (no row is dropped or interpolated).

    Frame ``i`` covers ``[origin + i / frame_rate, origin + (i + 1) / frame_rate)``; rows
    outside the first ``frames`` frames are ignored.

    Args:
        times (Tensor): Timestamps in seconds, dimension `(rows,)` (see
            :func:`check_sensor_times`).
        keys (Tensor): Key displacements of dimension `(..., rows, keys)`.
        frame_rate (float): Frames per second.
        frames (int): Output length.
        origin (float, optional): Time of frame 0's start. (Default: ``0.0``)

    Returns:
        (Tensor, Tensor): Frame means of dimension `(..., frames, keys)` (0 where no row
        fell), and a bool mask of dimension `(frames,)`, True where at least one did.
    """
    if keys.dim() < 2 or keys.shape[-2] != times.shape[0]:
        raise ValueError(f"keys must be (..., rows, keys) with rows={times.shape[0]}, "
                         f"got shape {tuple(keys.shape)}")
    if frame_rate <= 0 or frames < 1:
        raise ValueError(f"need frame_rate > 0 and frames >= 1, got {frame_rate}, {frames}")
    idx = torch.floor((times.double() - origin) * frame_rate + BOUNDARY_EPS).long()
    rows = torch.nonzero((idx >= 0) & (idx < frames)).squeeze(1).to(keys.device)
    idx = idx.to(keys.device).index_select(0, rows)
    sums = keys.new_zeros(*keys.shape[:-2], frames, keys.shape[-1])
    sums.index_add_(keys.dim() - 2, idx, keys.index_select(keys.dim() - 2, rows))
    counts = torch.bincount(idx, minlength=frames)
    return sums / counts.clamp(min=1).unsqueeze(-1).to(sums.dtype), counts > 0
