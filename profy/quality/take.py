"""One take's recording-quality columns for ``audio_stats.parquet`` (issue 20).

:func:`take_quality` runs every detector of :mod:`profy.quality.recording`, the sync
estimate of :mod:`profy.quality.sync` and the fingerprint of
:mod:`profy.quality.fingerprint` on the raw arrays the feature pipeline already read,
and returns the columns of :data:`RECORDING_COLUMNS` (plus ``fingerprint``, bytes).

Silence, told apart by the key sensor (sensor blocks mapped to audio time by the measured
offset when it is confident, else taken as simultaneous):

- a block is *silent* below the noise floor + 12 dB (or half-way to the loudest 5%
  in a noisy room), *dead* when it is digital zeros,
  more than 10 dB below the room's floor (no live microphone is quieter than its room)
  or past the end of the file;
- ``lead_silence_s`` / ``trail_silence_s``: silent blocks before the first / after the
  last 50 ms of sound (start and stop cuts, long waits);
- ``dropout_s``: dead audio while a key is down -- the sound went missing while someone
  played. Silence with no key down is a rest or a pause and is fine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import profy.quality.recording as rec
import profy.quality.sync as sync
from profy.quality.fingerprint import fingerprint, to_bytes

__all__ = ["RECORDING_COLUMNS", "from_arrays", "take_quality", "to_arrays"]

# column -> arrow type name, in AUDIO_STATS_SCHEMA order (after the v1 columns)
RECORDING_COLUMNS: dict[str, str] = {
    "dc_offset": "float64", "true_peak_dbtp": "float64", "clip_runs": "int32",
    "clip_run_max": "int32", "channel_balance_db": "float64", "stereo_residual_db": "float64",
    "bandwidth_hz": "float64", "noise_floor_db": "float64", "lead_silence_s": "float64",
    "trail_silence_s": "float64", "digital_silence_s": "float64", "dropout_s": "float64",
    "sync_offset_s": "float64", "sync_confidence": "float64",
}
_SILENT_DB = 12.0
_SOUNDING_BLOCKS = 5  # sound = >= 50 ms above the silence line (one noise burst is not)
_DEAD_DB = 10.0
_MIN_SYNC_CONFIDENCE = 0.1  # below: the streams are taken as simultaneous for dropouts


def _edges(silent: np.ndarray) -> tuple[int, int]:
    """Silent blocks before the first and after the last sounding run of 50 ms."""
    loud = ~silent
    if loud.size >= _SOUNDING_BLOCKS:
        runs = np.lib.stride_tricks.sliding_window_view(loud, _SOUNDING_BLOCKS).all(axis=1)
        starts = np.flatnonzero(runs)
        if starts.size == 0:
            return silent.size, 0
        return int(starts[0]), int(silent.size - starts[-1] - _SOUNDING_BLOCKS)
    sounding = np.flatnonzero(loud)
    if sounding.size == 0:
        return silent.size, 0
    return int(sounding[0]), int(silent.size - 1 - sounding[-1])


def take_quality(waveform: np.ndarray, sample_rate: int, sensor_times: np.ndarray,
                 sensor_keys: np.ndarray) -> dict[str, Any]:
    """Every recording-quality column of one take.

    Args:
        waveform: float32 `(samples, channels)` or `(samples,)`, original scale
            (non-finite samples are read as 0).
        sample_rate: Hz.
        sensor_times: float64 `(rows,)` seconds from the take's start.
        sensor_keys: float `(rows, 88)` key displacements.

    Returns:
        ``{column: value}`` for :data:`RECORDING_COLUMNS` and ``"fingerprint"`` (bytes).
    """
    x = rec.as_2d(waveform)
    if not np.isfinite(x).all():  # the input policy refuses these; kept for direct calls
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    dc = rec.dc_offset(x)
    runs, longest = rec.clip_runs(x)
    true_peak = rec.true_peak_dbtp(x)
    zero = rec.digital_zero_blocks(x, sample_rate)
    if np.abs(dc).max() > 0.0:  # levels, spectra and onsets of the AC part
        x = x - dc.astype(np.float32)
    balance, residual = rec.stereo_relation(x)
    mono = rec.mono_of(x)  # once: the level, bandwidth and onset analyses all start from it
    levels = rec.block_levels(mono, sample_rate)
    floor = rec.noise_floor_db(levels, zero)
    live = levels[~zero]
    loud = float(np.percentile(live, 95)) if live.size else floor
    # a noisy room leaves little headroom: the line sits at most half-way to the loud part
    silent = zero | (levels < floor + min(_SILENT_DB, 0.5 * (loud - floor)))
    dead = zero | (levels < floor - _DEAD_DB)
    lead, trail = _edges(silent)
    blocks = sync.sensor_blocks(sensor_times, sensor_keys)
    mono_11k = sync.analysis_mono(mono, sample_rate)
    flux, freqs = sync.audio_onsets(x, sample_rate, mono_11k=mono_11k)
    est = sync.estimate_offset(flux, freqs, blocks.onsets)
    shift = (int(round(est.offset_s / rec.BLOCK_S))
             if est.confidence >= _MIN_SYNC_CONFIDENCE and np.isfinite(est.offset_s) else 0)
    # sensor block i is audio block i - shift; past the file's end the audio is dead
    audio_idx = np.arange(blocks.down.size) - shift
    inside = (audio_idx >= 0) & (audio_idx < dead.size)
    dead_at = np.where(inside, dead[np.clip(audio_idx, 0, max(dead.size - 1, 0))]
                       if dead.size else True, audio_idx >= dead.size)
    dropout = int((blocks.down & dead_at).sum())
    words = fingerprint(x, sample_rate, mono_11k=mono_11k)
    return {
        "dc_offset": float(dc[int(np.argmax(np.abs(dc)))]),
        "true_peak_dbtp": true_peak, "clip_runs": runs, "clip_run_max": longest,
        "channel_balance_db": balance, "stereo_residual_db": residual,
        "bandwidth_hz": rec.bandwidth_hz(mono, sample_rate), "noise_floor_db": floor,
        "lead_silence_s": lead * rec.BLOCK_S, "trail_silence_s": trail * rec.BLOCK_S,
        "digital_silence_s": float(zero.sum()) * rec.BLOCK_S,
        "dropout_s": dropout * rec.BLOCK_S,
        "sync_offset_s": est.offset_s if np.isfinite(est.offset_s) else None,
        "sync_confidence": est.confidence,
        "fingerprint": to_bytes(words),
    }


def to_arrays(quality: dict[str, Any]) -> dict[str, np.ndarray]:
    """:func:`take_quality`'s output as feature-cache arrays (``recording``, ``fingerprint``).

    ``recording`` is float64 `(len(RECORDING_COLUMNS),)` in column order (NaN: unknown
    sync offset); ``fingerprint`` is uint32 `(frames,)`.
    """
    from profy.quality.fingerprint import from_bytes

    values = [np.nan if quality[c] is None else float(quality[c]) for c in RECORDING_COLUMNS]
    return {"recording": np.asarray(values, dtype=np.float64),
            "fingerprint": from_bytes(quality["fingerprint"])}


def from_arrays(arrays: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """``audio_stats`` columns from cached arrays; ``None`` for an entry written before them."""
    from profy.quality.fingerprint import to_bytes

    rec_values = arrays.get("recording")
    words = arrays.get("fingerprint")
    if rec_values is None or words is None or rec_values.shape != (len(RECORDING_COLUMNS),):
        return None
    out: dict[str, Any] = {}
    for (name, kind), value in zip(RECORDING_COLUMNS.items(), rec_values.tolist(), strict=True):
        if not np.isfinite(value) and name == "sync_offset_s":
            out[name] = None
        else:
            out[name] = int(value) if kind == "int32" else float(value)
    out["fingerprint"] = to_bytes(words)
    return out
