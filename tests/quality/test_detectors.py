"""Hypothesis properties of the pure detectors (profy.quality)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from profy.quality import recording as rec
from profy.quality.fingerprint import best_alignment, bit_error_rate, fingerprint
from profy.quality.sync import audio_onsets, estimate_offset, sensor_blocks

SR = 44100


def _tones(seed: int, seconds: float = 4.0, channels: int = 2) -> np.ndarray:
    """Random decaying piano-like notes plus a little independent noise per channel."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    mono = np.zeros(n)
    for _ in range(int(seconds * 5)):
        f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        start = int(rng.uniform(0, seconds - 0.5) * SR)
        t = np.arange(n - start) / SR
        mono[start:] += sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3)) * \
            np.exp(-t * 4) * rng.uniform(0.05, 0.2)
    out = np.stack([mono] * channels, axis=1) + rng.normal(0, 1e-3, (n, channels))
    return out.astype(np.float32)


@settings(max_examples=25, deadline=None)
@given(offset=st.floats(-0.2, 0.2), seed=st.integers(0, 10_000))
def test_dc_offset_recovers_a_planted_offset(offset, seed):
    x = np.random.default_rng(seed).normal(0, 0.1, (20_000, 2)).astype(np.float32)
    x -= x.mean(axis=0, dtype=np.float64).astype(np.float32)
    x[:, 1] += np.float32(offset)
    dc = rec.dc_offset(x)
    assert abs(dc[1] - offset) < 1e-5 and abs(dc[0]) < 1e-5


@settings(max_examples=20, deadline=None)
@given(amp=st.floats(0.05, 0.99), freq=st.floats(50, 15_000), phase=st.floats(0, 6.28))
def test_true_peak_of_a_sine_is_its_amplitude(amp, freq, phase):
    t = np.arange(SR // 4) / SR
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    x = (amp * fade * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)
    tp = rec.true_peak_dbtp(x)
    assert tp >= 20 * np.log10(np.abs(x).max()) - 1e-9  # never below the sample peak
    assert abs(tp - 20 * np.log10(amp)) < 0.75  # BS.1770 allows 0.69 dB under-read at 4x


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), drive=st.floats(1.2, 3.0), gain=st.floats(0.1, 0.99))
def test_clip_runs_find_clipping_even_after_normalisation(seed, drive, gain):
    x = _tones(seed, seconds=1.0)
    assert rec.clip_runs(x)[0] == 0  # natural audio: isolated maxima
    y = np.clip(x * np.float32(drive / np.abs(x).max()), -1, 1) * np.float32(gain)
    runs, longest = rec.clip_runs(y)
    assert runs >= 1 and longest >= 3


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), gain=st.floats(0.1, 10.0))
def test_false_stereo_and_dead_channel(seed, gain):
    x = _tones(seed, seconds=1.0)
    balance, residual = rec.stereo_relation(x)
    assert residual > -60 and balance > -10  # independent noise: real stereo
    copy = x.copy()
    copy[:, 1] = copy[:, 0] * np.float32(gain)
    assert rec.stereo_relation(copy)[1] < -60
    dead = x.copy()
    dead[:, 0] = 0.0
    assert rec.stereo_relation(dead)[0] < -40


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), low=st.sampled_from([16000, 22050, 32000]))
def test_bandwidth_sees_upsampled_audio(seed, low):
    from scipy.signal import resample_poly

    rng = np.random.default_rng(seed)
    x = _tones(seed, seconds=2.0) + rng.normal(0, 3e-3, (2 * SR, 2)).astype(np.float32)
    assert rec.bandwidth_hz(x, SR) == SR / 2
    g = np.gcd(low, SR)
    up = resample_poly(resample_poly(x, low // g, SR // g, axis=0), SR // g, low // g, axis=0)
    assert rec.bandwidth_hz(up.astype(np.float32), SR) <= low / 2


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), other=st.integers(0, 10_000), gain=st.floats(0.3, 3.0),
       trim=st.integers(0, 2000))
def test_fingerprint_ber_low_for_a_noisy_copy_high_for_another_take(seed, other, gain, trim):
    if seed == other:
        other += 1
    x = _tones(seed)
    rng = np.random.default_rng(seed + 1)
    copy = (x[trim:] * np.float32(gain) + rng.normal(0, 3e-4, x[trim:].shape)).astype(np.float32)
    a, b, c = fingerprint(x, SR), fingerprint(copy, SR), fingerprint(_tones(other), SR)
    assert bit_error_rate(a, a)[0] == 0.0
    assert best_alignment(a, b)[0] < 0.15
    assert best_alignment(a, c)[0] > 0.3


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), lead=st.floats(0.0, 1.2))
def test_sync_recovers_a_planted_sensor_lead(seed, lead):
    rng = np.random.default_rng(seed)
    seconds, n = 5.0, int(5.0 * SR)
    rows = int((seconds + lead) * 1000)
    times = np.arange(rows) / 1000.0
    keys = rng.normal(0, 8e-4, (rows, 88)).astype(np.float32)
    audio = rng.normal(0, 1e-4, n)
    t_note = 0.3
    while t_note < seconds - 0.5:
        k = int(rng.integers(30, 60))
        f0 = 440.0 * 2 ** ((k + 21 - 69) / 12)
        i = int(t_note * SR)
        tt = np.arange(n - i) / SR
        audio[i:] += 0.2 * np.sin(2 * np.pi * f0 * tt) * np.exp(-tt * 3)
        r0, r1 = int((t_note + lead - 0.03) * 1000), int((t_note + lead + 0.25) * 1000)
        keys[r0:r1, k] -= 0.07
        t_note += float(rng.uniform(0.15, 0.4))
    flux, freqs = audio_onsets(audio.astype(np.float32), SR)
    est = estimate_offset(flux, freqs, sensor_blocks(times, keys).onsets)
    assert abs(est.offset_s - lead) < 0.05 and est.confidence > 0.1
