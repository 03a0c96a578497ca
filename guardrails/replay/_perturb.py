"""Controlled perturbations of cached RAW features (numpy, seeded) for robustness replays.

How each perturbation is made (the cache holds log-mels, not waveforms):

* **Audio noise at SNR s dB** (``noise_snr``): the cached log-mel is
  ``10 log10(P / max P)`` floored at ``-top_db``. In the power domain we add white noise
  whose mean power per mel cell is the take's mean valid-cell signal power divided by
  ``10^(s/10)``, each cell drawn from an exponential distribution (the periodogram of
  white Gaussian noise is chi-square with 2 degrees of freedom), then go back to dB,
  re-reference to the new maximum and floor at ``-top_db`` as extraction does. Only
  valid (non-silent) frames change: the model zeroes the others after normalization,
  so noise there would not reach it. The quality vector's ``snr_db`` becomes the
  combined SNR ``-10 log10(10^(-q/10) + 10^(-s/10))`` (clamped to profy's range); the
  other quality fields are kept (noise at these levels changes them little, and the
  gate is meant to read the SNR).
* **Audio dropout** (``audio_dropout``): every log-mel cell at the floor, the audio mask
  all False, and the quality vector profy computes for digital silence (SNR at its
  lower bound -10 dB, non-silent ratio 0, flatness 0, loudness -120 dB, no clipping).
* **Sensor keys dropped** (``key_drop``): a seeded choice of a fraction of the 88 keys
  (the same keys for every take) read a constant, the key's median over the take's
  valid frames: a dead sensor that never moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from guardrails.replay._features import FeatureBatch

__all__ = ["SNR_RANGE_DB", "SILENT_QUALITY", "Level", "apply_level", "audio_dropout",
           "key_drop", "levels_from_params", "noise_snr"]

SNR_RANGE_DB = (-10.0, 60.0)  # profy.features.functional.SNR_RANGE_DB
SILENT_QUALITY = np.array([-10.0, 0.0, 0.0, -120.0, 0.0], dtype=np.float32)


@dataclass(frozen=True)
class Level:
    """One perturbation level: ``kind`` in clean | noise | dropout | keys, and its value."""

    kind: str
    value: float = 0.0

    @property
    def name(self) -> str:
        if self.kind == "noise":
            return f"snr_{self.value:g}db"
        if self.kind == "keys":
            return f"keys_{int(round(self.value * 100))}pct"
        return {"clean": "clean", "dropout": "audio_dropout"}[self.kind]

    @property
    def touches_sensor(self) -> bool:
        return self.kind == "keys"


def noise_snr(batch: FeatureBatch, snr_db: float, *, top_db: float,
              rng: np.random.Generator) -> FeatureBatch:
    """Add white noise at ``snr_db`` to the valid log-mel frames (see module docstring)."""
    logmel, mask = batch.arrays["logmel"], batch.arrays["audio_mask"]  # (N, F, T), (N, T)
    power = 10.0 ** (logmel.astype(np.float64) / 10.0)
    valid = np.broadcast_to(mask[:, None, :], power.shape)
    n_valid = valid.sum(axis=(1, 2)).clip(min=1)
    signal = (power * valid).sum(axis=(1, 2)) / n_valid  # (N,)
    noise = (signal / 10.0 ** (snr_db / 10.0))[:, None, None] * rng.exponential(1.0, power.shape)
    mixed = np.where(valid, power + noise, power)
    db = 10.0 * np.log10(np.maximum(mixed, 1e-10))
    db = db - db.max(axis=(1, 2), keepdims=True)  # ref = max, as power_to_db(ref=np.max)
    db = np.maximum(db, -top_db)
    quality = batch.arrays["quality"].copy()
    q = quality[:, 0].astype(np.float64)
    combined = -10.0 * np.log10(10.0 ** (-q / 10.0) + 10.0 ** (-snr_db / 10.0))
    quality[:, 0] = np.clip(combined, *SNR_RANGE_DB)
    return batch.replace(logmel=db.astype(np.float32), quality=quality)


def audio_dropout(batch: FeatureBatch, *, top_db: float) -> FeatureBatch:
    """Silence every take: floor log-mel, empty audio mask, silent-take quality vector."""
    n = len(batch)
    return batch.replace(logmel=np.full_like(batch.arrays["logmel"], -top_db),
                         audio_mask=np.zeros_like(batch.arrays["audio_mask"]),
                         quality=np.tile(SILENT_QUALITY, (n, 1)))


def key_drop(batch: FeatureBatch, fraction: float, *, rng: np.random.Generator) -> FeatureBatch:
    """Freeze ``fraction`` of the keys at their per-take median (a dead sensor)."""
    sensor, mask = batch.arrays["sensor"], batch.arrays["sensor_mask"]  # (N, T, K), (N, T)
    n_keys = sensor.shape[2]
    dropped = rng.choice(n_keys, size=int(round(fraction * n_keys)), replace=False)
    out = sensor.copy()
    for i in range(len(batch)):
        rows = sensor[i][mask[i]] if mask[i].any() else sensor[i]
        out[i][:, dropped] = np.median(rows[:, dropped], axis=0)
    return batch.replace(sensor=out)


def apply_level(batch: FeatureBatch, level: Level, *, top_db: float, seed: int) -> FeatureBatch:
    """``batch`` under ``level`` (a fresh seeded generator per level, so levels repeat)."""
    rng = np.random.default_rng([seed, int(level.value * 1000) & 0xFFFF, len(level.kind)])
    if level.kind == "clean":
        return batch
    if level.kind == "noise":
        return noise_snr(batch, level.value, top_db=top_db, rng=rng)
    if level.kind == "dropout":
        return audio_dropout(batch, top_db=top_db)
    if level.kind == "keys":
        return key_drop(batch, level.value, rng=rng)
    raise ValueError(f"unknown perturbation {level.kind!r}")


def levels_from_params(snr_levels: list, key_drop_fractions: list,
                       audio_dropout_level: bool = True) -> list[Level]:
    """The ordered levels of a robustness replay: clean, SNRs high to low, dropout, keys."""
    levels = [Level("clean")]
    levels += [Level("noise", float(s)) for s in sorted(snr_levels, reverse=True)]
    if audio_dropout_level:
        levels.append(Level("dropout"))
    levels += [Level("keys", float(f)) for f in sorted(key_drop_fractions)]
    return levels
