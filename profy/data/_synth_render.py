"""Render one synthetic take's sensor CSV and WAV from its note events.

Sensor convention (``hackkey.csv``): displacement in arbitrary units, ``0`` at rest,
negative when pressed. A full press reaches about ``-0.072`` (times a per-key gain
of 0.92..1.08) and is clipped at the key bed, ``-0.085``; a release overshoots
briefly to about ``+0.01``. Per-key offsets (a few loose keys rest at +0.01..+0.04)
and noise (sd 0.0008) sit on top, so values span ``-0.085 .. +0.05``. Depth and key
speed grow with velocity only up to :data:`SENSOR_SATURATION`; above it a harder
strike looks the same to the sensor, which is why absolute loudness is audio-only.
Sensor time = audio time + a per-take lead of 0.05..0.3 s (the logger starts first).

Audio (``sound_raw.wav``): each note is a sum of inharmonic, decaying partials plus a
short hammer transient above 4 kHz, damped after the key's release, summed, put in
stereo (per-channel gain and delay), with pink room noise at a per-take level.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from profy.data._synth_events import LOWEST_MIDI, N_KEYS, Events, TakeStyle

__all__ = ["SENSOR_SATURATION", "AudioQuirks", "format_hackkey", "render_audio",
           "render_sensor", "wav_bytes"]

SENSOR_SATURATION = 0.42  # velocity at which the key hits the bed: depth and speed stop growing
_FULL_DEPTH = -0.072  # key-bed depth in sensor units (the real files bottom out near -0.07)
_N_PARTIALS = 12  # enough to reach 4+ kHz for the middle of the keyboard
_BANK_S = 1.2  # cached partial length (2.5 MB a pitch); longer notes compute their tail
_DAMP_S = 0.12  # damper decay time: long enough to blur the release in the audio
_AMP = 0.2  # mix level: takes peak around -14..-4 dBFS, leaving headroom before clipping


@dataclass(frozen=True)
class AudioQuirks:
    """Recording defects of one take (label-independent nuisances).

    Attributes:
        lead_zero_s: seconds of exact digital silence at the start (0 for none).
        cut_s: audio ends (or goes digitally silent) here; ``None`` keeps it all.
        truncate: with ``cut_s``, shorten the file instead of zero-filling it.
        clip_peak: scale the take to this peak and clip to +-1 (``None``: no clipping).
        noise_db: room-noise RMS in dBFS.
    """

    lead_zero_s: float = 0.0
    cut_s: float | None = None
    truncate: bool = False
    clip_peak: float | None = None
    noise_db: float = -60.0


# --------------------------------------------------------------------------- sensor


def render_sensor(events: Events, style: TakeStyle, *, n_rows: int, rate_hz: float,
                  lead_s: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Key-depth recording of a take.

    Args:
        events: the take's notes (times relative to the audio start).
        style: press/release shape parameters.
        n_rows: number of sensor frames.
        rate_hz: nominal frame rate.
        lead_s: the sensor starts this long before the audio.
        rng: the take's generator.

    Returns:
        ``times`` ``(n_rows,)`` float64 strictly increasing seconds and ``keys``
        ``(n_rows, 88)`` float32 displacement.
    """
    # The logger's clock runs a little off nominal and each stamp jitters by less than
    # a fifth of a frame, so times stay strictly increasing.
    rate = rate_hz * (1.0 + rng.normal(0.0, 0.002))
    times = (np.arange(n_rows) + rng.uniform(-0.2, 0.2, n_rows)) / rate + rng.uniform(3e-4, 2e-3)
    keys = rng.standard_normal((n_rows, N_KEYS), dtype=np.float32)
    keys *= np.float32(0.0008)
    # Per-key calibration offset; a few keys rest well above zero (a loose sensor).
    offset = rng.normal(0.0, 0.002, N_KEYS)
    loose = rng.random(N_KEYS) < 0.04
    offset[loose] += rng.uniform(0.01, 0.04, int(loose.sum()))
    keys += offset.astype(np.float32)
    gain = rng.uniform(0.92, 1.08, N_KEYS)
    for key, on, off, vel in zip(events.keys, events.onset + lead_s, events.release + lead_s,
                                 events.velocity, strict=True):
        sat = min(float(vel), SENSOR_SATURATION) / SENSOR_SATURATION
        depth = _FULL_DEPTH * gain[key] * np.sqrt(sat)
        press = style.press_s * (1.6 - 0.6 * sat)  # soft strikes travel slower
        i0 = max(int((on - press) * rate), 0)
        i1 = min(int(np.ceil((off + style.release_s + 0.05) * rate)), n_rows)
        if i1 <= i0:
            continue
        t = np.arange(i0, i1) / rate
        u_press = np.clip((t - (on - press)) / press, 0.0, 1.0) ** (1.2 * style.press_shape)
        u_rel = np.clip((t - off) / style.release_s, 0.0, 1.0)
        down = u_press * (1.0 - u_rel * u_rel * (3.0 - 2.0 * u_rel))  # smoothstep back up
        held = (t >= on) & (t < off)
        wobble = style.wobble * np.sin(2 * np.pi * rng.uniform(3, 8) * (t - on) + rng.uniform(0, 6))
        after = np.clip((t - off - style.release_s) / 0.03, 0.0, 1.0)
        overshoot = 0.01 * sat * np.sin(np.pi * after) * (t > off + style.release_s)
        curve = depth * down + np.where(held, wobble * (1.0 - np.exp(-(t - on) / 0.02)), 0.0)
        keys[i0:i1, key] += (curve + overshoot).astype(np.float32)
    np.clip(keys, -0.085, 0.05, out=keys)
    return times, keys


@functools.cache
def _digit_table() -> np.ndarray:
    """``(100000, 5)`` ASCII digits of 0..99999, zero-padded: the fractional part."""
    k = np.arange(100_000)
    return np.stack([(k // 10 ** (4 - j)) % 10 + 48 for j in range(5)], axis=1).astype(np.uint8)


def format_hackkey(times: np.ndarray, keys: np.ndarray) -> bytes:
    """Format a sensor recording as headerless ``%.5f`` CSV, byte-identical to savetxt.

    ``numpy.savetxt`` formats row by row in Python; building the bytes with array
    indexing is about 2.5x faster, which matters at ~0.8 M values per take.

    Args:
        times: ``(rows,)`` seconds, ``0 <= t < 1000``.
        keys: ``(rows, 88)`` values with ``|v| < 1``.

    Returns:
        The CSV file's bytes (``\\n`` line ends, no ``-0.00000``).
    """
    n, c = keys.shape
    times = np.asarray(times, dtype=np.float64)
    if n and not (times.min() >= 0.0 and times.max() < 999.999995):
        raise ValueError(f"sensor times must lie in [0, 1000) s, got {times.min()}..{times.max()}")
    digits = _digit_table()
    kt = np.rint(times * 1e5).astype(np.int64)
    whole, frac = kt // 100_000, kt % 100_000
    width_t = 3 + 1 + 5 + 1  # up to 999.99999 then a comma
    space = 32
    rows = np.full((n, width_t + 9 * c), space, dtype=np.uint8)
    rows[:, 0] = np.where(whole >= 100, 48 + (whole // 100) % 10, space)
    rows[:, 1] = np.where(whole >= 10, 48 + (whole // 10) % 10, space)
    rows[:, 2] = 48 + whole % 10
    rows[:, 3] = ord(".")
    rows[:, 4:9] = digits[frac]
    rows[:, 9] = ord(",")
    body = rows[:, width_t:].reshape(n, c, 9)  # "-0.ddddd," per value
    values = np.asarray(keys, dtype=np.float64)
    k = np.minimum(np.rint(np.abs(values) * 1e5).astype(np.int64), 99_999)
    body[:, :, 0] = np.where((values < 0) & (k > 0), ord("-"), space)
    body[:, :, 1] = ord("0")
    body[:, :, 2] = ord(".")
    body[:, :, 3:8] = digits[k]
    body[:, :, 8] = ord(",")
    body[:, -1, 8] = ord("\n")
    flat = rows.reshape(-1)
    return flat[flat != space].tobytes()


# ---------------------------------------------------------------------------- audio


def _partials(midi: int, n: int, sr: int, start: int = 0) -> np.ndarray:
    """``(12, n - start)`` float32 unit partials of one string, samples ``start..n``.

    Piano strings are stiff, so partial k sits slightly above k*f0; high partials
    decay faster than the fundamental. Phases are fixed per pitch, so the cache in
    :func:`_bank` serves every take and a long note only computes its tail.
    """
    f0 = 440.0 * 2.0 ** ((midi - 69) / 12)
    k = np.arange(1, _N_PARTIALS + 1)
    stiffness = 1e-4 * 2.0 ** ((midi - 60) / 24)
    freq = k * f0 * np.sqrt(1.0 + stiffness * k * k)
    tau1 = float(np.clip(2.5 * (f0 / 262.0) ** -0.6, 0.4, 6.0))
    tau = tau1 / (1.0 + 0.35 * (k - 1))
    phase = np.random.default_rng(midi).uniform(0, 2 * np.pi, _N_PARTIALS)
    t = np.arange(start, n) / sr
    # Phase in float64 (cycles grow to ~1e5), the rest in float32 for speed.
    cycles = np.mod(np.outer(freq, t) + phase[:, None] / (2 * np.pi), 1.0).astype(np.float32)
    out = np.sin(np.float32(2 * np.pi) * cycles)
    out *= np.exp(np.outer(-1.0 / tau, t).astype(np.float32))
    out *= (1.0 - np.exp(-t / 0.002)).astype(np.float32)  # 2 ms hammer contact, no click
    out[freq > 0.45 * sr] = 0.0  # nothing above Nyquist (no aliasing)
    return out


@functools.cache
def _bank(midi: int, sr: int) -> np.ndarray:
    return _partials(midi, int(_BANK_S * sr), sr)


def _hammer_bursts(rng: np.random.Generator, sr: int, count: int = 4) -> np.ndarray:
    """``(count, 20 ms)`` unit-RMS noise bursts band-limited to 4..12 kHz."""
    n = int(0.02 * sr)
    spec = np.fft.rfft(rng.standard_normal((count, n)), axis=1)
    f = np.fft.rfftfreq(n, 1 / sr)
    spec *= ((f > 4000) & (f < 12000))[None, :]
    burst = np.fft.irfft(spec, n, axis=1) * np.exp(-np.arange(n) / (0.004 * sr))
    return (burst / np.sqrt(np.mean(burst**2, axis=1, keepdims=True) + 1e-12)).astype(np.float32)


def _room_noise(rng: np.random.Generator, n: int, level_db: float) -> np.ndarray:
    """``(n, 2)`` pink room noise (-3 dB/octave) at ``level_db`` dBFS RMS.

    Paul Kellet's 3-pole pinking filter: a recursive filter is ~4x cheaper than
    shaping a spectrum with FFTs of the whole take.
    """
    from scipy.signal import lfilter

    # float32 coefficients keep the whole filter in float32.
    b = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786], dtype=np.float32)
    a = np.array([1.0, -2.494956002, 2.017265875, -0.522189400], dtype=np.float32)
    warm = 2048  # let the filter's start-up transient pass before the file begins
    noise = lfilter(b, a, rng.standard_normal((n + warm, 2), dtype=np.float32), axis=0)[warm:]
    noise *= np.float32(10 ** (level_db / 20) / (np.sqrt(np.mean(noise**2)) + 1e-12))
    return noise


def render_audio(events: Events, style: TakeStyle, *, n_samples: int, sr: int,
                 quirks: AudioQuirks, rng: np.random.Generator) -> np.ndarray:
    """Stereo recording of a take.

    Args:
        events: the take's notes.
        style: brightness (``rolloff``, ``attack_gain``) and loudness parameters.
        n_samples: file length before any truncation in ``quirks``.
        sr: sample rate.
        quirks: recording defects to apply.
        rng: the take's generator.

    Returns:
        ``(frames, 2)`` float32.
    """
    mono = np.zeros(n_samples, dtype=np.float32)
    bursts = _hammer_bursts(rng, sr)
    k = np.arange(1, _N_PARTIALS + 1)
    for key, on, off, vel in zip(events.keys, events.onset, events.release, events.velocity,
                                 strict=True):
        midi = int(key) + LOWEST_MIDI
        i0 = int(round(on * sr))
        if i0 >= n_samples:
            continue
        n = min(int((off - on + 4 * _DAMP_S) * sr), n_samples - i0)
        bank = _bank(midi, sr)
        # Harder strikes are brighter, as on a real piano, on top of the player's tone.
        weights = k ** -(style.rolloff - 0.4 * (float(vel) - 0.66))
        weights = (weights / np.sqrt(np.sum(weights**2))).astype(np.float32)
        # einsum, not a BLAS matmul: OpenBLAS threads would spin and starve other workers.
        tone = np.einsum("k,kn->n", weights, bank[:, :n])
        if n > bank.shape[1]:
            tail = _partials(midi, n, sr, start=bank.shape[1])
            tone = np.concatenate([tone, np.einsum("k,kn->n", weights, tail)])
        j = int((off - on) * sr)  # the damper falls on the string here
        if j < n:
            tone[j:] *= np.exp(np.arange(n - j, dtype=np.float32) * np.float32(-1 / (_DAMP_S * sr)))
        burst = bursts[rng.integers(len(bursts))][: n]
        tone[: burst.size] += style.attack_gain * burst
        mono[i0:i0 + n] += (_AMP * float(vel) ** 2) * tone
    gain = 10 ** (rng.normal(0.0, 1.0) / 20)  # mic placement: a small, label-free level change
    delay = int(rng.integers(0, 24))  # right mic a few cm further away
    stereo = np.empty((n_samples, 2), dtype=np.float32)
    stereo[:, 0] = mono * gain * 10 ** (rng.normal(0.0, 0.7) / 20)
    stereo[:, 1] = np.concatenate([np.zeros(delay, np.float32), mono[: n_samples - delay]])
    stereo[:, 1] *= gain * 10 ** (rng.normal(0.0, 0.7) / 20)
    stereo += _room_noise(rng, n_samples, quirks.noise_db)
    if quirks.clip_peak is not None:
        stereo *= quirks.clip_peak / max(float(np.abs(stereo).max()), 1e-9)
        np.clip(stereo, -1.0, 1.0, out=stereo)
    stereo[: int(quirks.lead_zero_s * sr)] = 0.0
    if quirks.cut_s is not None:
        cut = int(quirks.cut_s * sr)
        if quirks.truncate:
            return stereo[:cut].copy()
        stereo[cut:] = 0.0
    return stereo


def wav_bytes(audio: np.ndarray, sr: int) -> bytes:
    """Encode ``(frames, 2)`` float audio as 32-bit float WAVE_FORMAT_EXTENSIBLE.

    libsndfile adds a PEAK chunk stamped with the wall-clock time; the stamp is zeroed
    so that the same seed always gives the same bytes.
    """
    buf = io.BytesIO()
    sf.write(buf, audio, sr, subtype="FLOAT", format="WAVEX")
    data = bytearray(buf.getvalue())
    pos = 12
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos + 4:pos + 8], "little")
        if data[pos:pos + 4] == b"PEAK":
            data[pos + 12:pos + 16] = b"\x00\x00\x00\x00"  # version (4 bytes), then time
            break
        pos += 8 + size + (size & 1)
    return bytes(data)
