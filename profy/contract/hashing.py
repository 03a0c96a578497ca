"""Content hashes shared by the training side and the torch-free gate.

numpy and hashlib only: ``guardrails`` imports this to re-hash tagged files and to verify
feature-cache entries without pulling ``profy.features`` (whose package imports torch).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

__all__ = ["file_sha256", "payload_sha256"]


def file_sha256(path: str | Path, *, chunk_size: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def payload_sha256(arrays: dict[str, np.ndarray]) -> str:
    """Checksum of named arrays: name, dtype, shape and bytes of each, in name order.

    The feature cache stores it with every entry and verifies it on every read.
    """
    digest = hashlib.sha256()
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()
