"""The ``fingerprint`` column of ``audio_stats.parquet``: its bytes and how to compare them.

Both halves need it: ``profy features`` writes each take's Haitsma-Kalker sub-fingerprints
(computed by :mod:`profy.quality.fingerprint`), the ``data.duplicates`` leakage guard in
``guardrails`` reads them back and matches them. Numpy and the standard library only.

Format: little-endian uint32 words, one per 11.6 ms frame, 32 bits each (the signs of
band-energy differences across bands and frames); the word 0 marks a quiet frame,
ignored in matching.

Matching (:func:`near_duplicates`): sub-fingerprints that match exactly are looked up in an
inverted index (a near-duplicate shares many exact 32-bit words, two different takes
almost none); each candidate pair's bit error rate (BER) is then measured at the offsets
those exact matches vote for. A pair under ``max_ber`` is a near-duplicate.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["MIN_OVERLAP", "DuplicatePair", "bit_error_rate", "from_bytes", "near_duplicates",
           "to_bytes"]

MIN_OVERLAP = 64  # active frames two fingerprints must share to be compared (~0.75 s)
_COMMON = 8  # words seen in more takes than this are ignored in the index (e.g. near-silence)


@dataclass(frozen=True)
class DuplicatePair:
    """Two takes whose fingerprints match: ``a < b``, ``ber`` at ``offset`` frames."""

    a: str
    b: str
    ber: float
    offset: int
    overlap: int


def to_bytes(words: np.ndarray) -> bytes:
    """Little-endian bytes of a fingerprint (the ``fingerprint`` column of audio_stats)."""
    return np.asarray(words, dtype="<u4").tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    """The inverse of :func:`to_bytes`."""
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


def _popcount(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.uint32)
    return np.unpackbits(v.view(np.uint8)).reshape(-1, 32).sum(axis=1) if v.size else v


def bit_error_rate(a: np.ndarray, b: np.ndarray, offset: int = 0) -> tuple[float, int]:
    """BER of ``a[i + offset]`` vs ``b[i]`` over frames active (non-zero) in both.

    Returns:
        ``(ber, overlap)``; ``(1.0, 0)`` when they share no active frame.
    """
    lo = max(0, -offset)
    hi = min(b.size, a.size - offset)
    if hi <= lo:
        return 1.0, 0
    wa, wb = a[lo + offset:hi + offset], b[lo:hi]
    both = (wa != 0) & (wb != 0)
    n = int(both.sum())
    if n == 0:
        return 1.0, 0
    return float(_popcount(wa[both] ^ wb[both]).sum() / (32.0 * n)), n


def near_duplicates(prints: Mapping[str, np.ndarray], *, max_ber: float = 0.15,
                    min_votes: int = 3) -> list[DuplicatePair]:
    """Every pair of takes whose fingerprints match (BER <= ``max_ber``).

    Candidates come from an inverted index of exact words (ignoring words in more than a
    few takes, e.g. near-silence); a pair is compared when ``min_votes`` exact matches
    agree on one offset. Cost ~ the number of words, not the number of pairs.

    Args:
        prints: take id -> fingerprint `(frames,)`.

    Returns:
        Pairs sorted by ``(a, b)``.
    """
    index: dict[int, list[tuple[int, int]]] = defaultdict(list)
    ids = sorted(prints)
    for t, sid in enumerate(ids):
        words = prints[sid]
        for i, w in enumerate(words.tolist()):
            if w:
                index[w].append((t, i))
    votes: Counter[tuple[int, int, int]] = Counter()
    for hits in index.values():
        takes = {t for t, _ in hits}
        if len(takes) < 2 or len(takes) > _COMMON:
            continue
        for x in range(len(hits)):
            for y in range(x + 1, len(hits)):
                (ta, ia), (tb, ib) = hits[x], hits[y]
                if ta != tb:
                    key = (ta, tb, ia - ib) if ta < tb else (tb, ta, ib - ia)
                    votes[key] += 1
    offsets: dict[tuple[int, int], list[int]] = defaultdict(list)
    for (ta, tb, off), n in votes.items():
        if n >= min_votes:
            offsets[(ta, tb)].append(off)
    pairs = []
    for (ta, tb), offs in offsets.items():
        a, b = prints[ids[ta]], prints[ids[tb]]
        scored = [(*bit_error_rate(a, b, o), o) for o in offs]
        scored = [s for s in scored if s[1] >= MIN_OVERLAP]
        if scored:
            ber, n, off = min(scored)
            if ber <= max_ber:
                pairs.append(DuplicatePair(ids[ta], ids[tb], ber, off, n))
    return sorted(pairs, key=lambda p: (p.a, p.b))
