"""Shared test data: deterministic signal helpers and Hypothesis strategies.

Helpers take keyword-only arguments and an explicit ``seed``; randomness comes from a
private ``torch.Generator``/``numpy`` generator, never the global RNG. Strategies draw
sizes, seeds and layouts, and build the (possibly long) arrays from them, which keeps
Hypothesis fast and its shrinking meaningful.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import strategies as st


def tone(*, freq: float, seconds: float, sample_rate: int, amplitude: float = 0.3,
         n_channels: int | None = None) -> torch.Tensor:
    """Sine of dimension `(time,)`, or `(time, n_channels)` (the reader's layout)."""
    t = torch.arange(round(seconds * sample_rate), dtype=torch.float64) / sample_rate
    x = (amplitude * torch.sin(2 * math.pi * freq * t)).to(torch.float32)
    return x if n_channels is None else x.unsqueeze(1).repeat(1, n_channels)


def white_noise(*, seconds: float, sample_rate: int, seed: int, amplitude: float = 1.0,
                n_channels: int | None = None) -> torch.Tensor:
    """Gaussian noise (std ``amplitude``) of dimension `(time,)` or `(time, n_channels)`."""
    gen = torch.Generator().manual_seed(seed)
    n = round(seconds * sample_rate)
    shape = (n,) if n_channels is None else (n, n_channels)
    return amplitude * torch.randn(shape, generator=gen)


def piano_like(*, seconds: float, sample_rate: int, seed: int, notes_per_s: float = 4.0,
               noise: float = 1e-4) -> torch.Tensor:
    """A scale-like take `(time,)`: decaying harmonic notes over faint noise."""
    gen = torch.Generator().manual_seed(seed)
    n = round(seconds * sample_rate)
    x = torch.zeros(n, dtype=torch.float64)
    ring = round(2.5 * sample_rate)  # a note decays by 65 dB over 2.5 s; stop it there
    local = torch.arange(ring, dtype=torch.float64) / sample_rate
    env = torch.exp(-3.0 * local)
    notes: dict[int, torch.Tensor] = {}
    for i in range(int(seconds * notes_per_s)):
        if i % 15 not in notes:  # 15 pitches, a scale up two octaves
            f0 = 261.63 * 2 ** ((i % 15) / 12)
            notes[i % 15] = env * sum(0.2 / h * torch.sin(2 * math.pi * h * f0 * local)
                                      for h in (1, 2, 3))
        note = notes[i % 15]
        start = round(i * sample_rate / notes_per_s)
        x[start:start + ring] += note[:n - start]
    x += noise * torch.randn(n, generator=gen, dtype=torch.float64)
    return x.to(torch.float32)


def sensor_rows(*, seconds: float, rate_hz: float = 1000.0, seed: int = 0,
                jitter: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps `(rows,)` float64 from 0 and key depths `(rows, 88)` float32."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate_hz))
    times = np.arange(n) / rate_hz
    if jitter:
        times = times + rng.uniform(0, jitter / rate_hz, n)
    keys = (0.01 * rng.standard_normal((n, 88))).astype(np.float32)
    return times, keys


@st.composite
def waveforms(draw, *, min_samples: int = 600, max_samples: int = 40_000) -> torch.Tensor:
    """Mono waveforms `(time,)`: noise, tone, silence, or noise with a silent stretch."""
    n = draw(st.integers(min_samples, max_samples))
    seed = draw(st.integers(0, 2**16))
    kind = draw(st.sampled_from(["noise", "tone", "silence", "gapped"]))
    amp = draw(st.sampled_from([1e-4, 1e-2, 0.5, 1.0]))
    gen = torch.Generator().manual_seed(seed)
    if kind == "silence":
        return torch.zeros(n)
    if kind == "tone":
        t = torch.arange(n, dtype=torch.float32) / 16_000
        return amp * torch.sin(2 * math.pi * (100 + seed % 4000) * t)
    x = amp * torch.randn(n, generator=gen)
    if kind == "gapped":
        a = draw(st.integers(0, n - 1))
        b = draw(st.integers(a, n))
        x[a:b] = 0.0
    return x


@st.composite
def norm_takes(draw, *, n_mels: int = 6, max_takes: int = 5, max_frames: int = 40):
    """Lists of ``(logmel (n_mels, f), mask (f,), sensor (f, 88), sensor_mask (f,))`` arrays
    with shifted, scaled channels and at least one valid frame of each kind overall."""
    n_takes = draw(st.integers(1, max_takes))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    takes = []
    for _ in range(n_takes):
        f = draw(st.integers(1, max_frames))
        loc = rng.uniform(-80, 0, (n_mels, 1))
        logmel = (loc + rng.uniform(0.1, 20) * rng.standard_normal((n_mels, f))).astype(np.float32)
        sensor = (rng.uniform(-0.05, 0.05, 88)
                  + 0.01 * rng.standard_normal((f, 88))).astype(np.float32)
        takes.append((logmel, rng.random(f) < 0.7, sensor, rng.random(f) < 0.8))
    takes[0][1][0] = True
    takes[0][3][0] = True
    return takes
