"""Audio fingerprints for near-duplicate takes (Haitsma & Kalker, ISMIR 2002).

Why this hash: a take uploaded twice is the same recording after, at most, a gain
change, a re-encode (a little noise) and a trim. The Haitsma-Kalker sub-fingerprint is
built for exactly that: per frame, 32 bits, each the sign of the energy difference of
two adjacent bands *minus* the same difference one frame earlier. Differences of log
energies cancel any gain; signs survive mild noise; a 31/32 frame overlap makes it
nearly shift-invariant. Two recordings of the same piece (same notes, other timing and
touch) disagree on about half the bits. Compact: 4 bytes per 11.6 ms (~3.5 kB per take).
Chromaprint does the same job but needs the native ``fpcalc`` binary; this needs numpy.

Parameters as in the paper: mono at 5,512.5 Hz, 0.37 s (2048-sample) frames every 64
samples (11.6 ms), 33 log-spaced bands over 300-2000 Hz. Frames more than 50 dB below the
take's loudest frame (or digital silence) get the word 0 and are ignored in matching.

The column's byte format and the matching of many takes (:func:`near_duplicates`, an
inverted index of exact words, then the bit error rate at the voted offsets) live in
:mod:`profy.contract.fingerprint`, which the torch-free ``guardrails`` side imports too;
they are re-exported here.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from profy.contract.fingerprint import (
    MIN_OVERLAP,
    DuplicatePair,
    bit_error_rate,
    from_bytes,
    near_duplicates,
    to_bytes,
)
from profy.quality.recording import mono_of

__all__ = ["DuplicatePair", "best_alignment", "bit_error_rate", "fingerprint", "from_bytes",
           "near_duplicates", "to_bytes"]

_SR_DIV = 8  # 44.1 kHz / 8 = 5,512.5 Hz
_FRAME = 2048
_HOP = 64
_BANDS = np.geomspace(300.0, 2000.0, 34)
_QUIET_DB = 50.0
_CHUNK = 256  # frames per FFT batch (256 x 2048 float64 = 4 MB)


def fingerprint(x: np.ndarray, sample_rate: int, *,
                mono_11k: np.ndarray | None = None) -> np.ndarray:
    """Sub-fingerprints of one take.

    Args:
        x: float `(samples, channels)` or `(samples,)`.
        sample_rate: Hz (any; the audio is resampled to ``sample_rate / 8`` -> ~5.5 kHz
            for 44.1 kHz; other rates use a polyphase ratio to 5,512 Hz).
        mono_11k: the channel mean at 11,025 Hz when already computed
            (:func:`profy.quality.sync.analysis_mono`); halved here.

    Returns:
        uint32 `(frames,)`; 0 marks a quiet frame.
    """
    from scipy.signal import resample_poly

    if mono_11k is not None and sample_rate == 44100:
        y, sr = resample_poly(mono_11k, 1, 2), 44100 / _SR_DIV
    elif sample_rate == 44100:
        mono = mono_of(x).astype(np.float64)
        y, sr = resample_poly(mono, 1, _SR_DIV), 44100 / _SR_DIV
    else:
        mono = mono_of(x).astype(np.float64)
        g = np.gcd(int(sample_rate), 5512)
        y, sr = resample_poly(mono, 5512 // g, int(sample_rate) // g), 5512.0
    if y.size < _FRAME + _HOP:
        return np.zeros(0, np.uint32)
    frames = np.lib.stride_tricks.sliding_window_view(y, _FRAME)[::_HOP]
    freqs = np.fft.rfftfreq(_FRAME, 1.0 / sr)
    idx = np.searchsorted(freqs, _BANDS)
    window, top = np.hanning(_FRAME), int(idx[-1])
    energy = np.empty((frames.shape[0], idx.size - 1))  # (frames, 33)
    for a in range(0, frames.shape[0], _CHUNK):  # chunks of frames stay in the CPU cache
        power = np.abs(np.fft.rfft(frames[a:a + _CHUNK] * window, axis=1)[:, :top]) ** 2
        csum = np.empty((power.shape[0], top + 1))
        csum[:, 0] = 0.0
        np.cumsum(power, axis=1, out=csum[:, 1:])  # bins past the top band are not summed
        energy[a:a + _CHUNK] = csum[:, idx[1:]] - csum[:, idx[:-1]]
    total = energy.sum(axis=1)
    with np.errstate(divide="ignore"):
        log_e = np.log(energy + 1e-20)
        level = 10.0 * np.log10(total + 1e-30)
    band_diff = log_e[:, :-1] - log_e[:, 1:]  # (frames, 32)
    bits = (band_diff[1:] - band_diff[:-1]) > 0  # (frames - 1, 32)
    words = (bits.astype(np.uint64) << np.arange(31, -1, -1, dtype=np.uint64)).sum(axis=1)
    words = words.astype(np.uint32)
    quiet = (level[1:] < level.max() - _QUIET_DB) | (total[1:] <= 0) | (total[:-1] <= 0)
    words[quiet] = 0
    return words


def best_alignment(a: np.ndarray, b: np.ndarray, *, max_shift: int = 400) -> tuple[float, int, int]:
    """Lowest BER over offsets voted by exact word matches (plus 0), within ``max_shift``.

    Returns:
        ``(ber, offset, overlap)``; ``(1.0, 0, 0)`` without a comparable offset.
    """
    pos: dict[int, list[int]] = defaultdict(list)
    for i, w in enumerate(a.tolist()):
        if w:
            pos[w].append(i)
    votes: Counter[int] = Counter()
    for j, w in enumerate(b.tolist()):
        for i in pos.get(w, ()):
            if abs(i - j) <= max_shift:
                votes[i - j] += 1
    best = (1.0, 0, 0)
    for off in {0, *[o for o, _ in votes.most_common(5)]}:
        ber, n = bit_error_rate(a, b, off)
        if n >= MIN_OVERLAP and ber < best[0]:
            best = (ber, off, n)
    return best


