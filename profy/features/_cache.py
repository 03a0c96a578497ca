"""Content-addressed feature cache: a rerun reuses features only when provably the same.

An entry's key is ``sha256(audio file sha256, sensor file sha256, feature-config hash)``:
change a byte of either input or any feature knob and the key changes, so a stale
entry is never looked up. Entries are safetensors files (no code runs on load) whose
metadata holds the key, the inputs' hashes and a sha256 of the tensor bytes; a read
verifies all three, so a truncated, corrupted or tampered entry is detected, reported
as a miss and recomputed. Writes go to a temporary file and are renamed into place,
so two processes filling one cache never see or leave half an entry (the same key
always has the same content, so the last rename winning is harmless).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from profy.contract.atomic import atomic_path
from profy.contract.hashing import file_sha256
from profy.contract.hashing import payload_sha256 as _payload_sha256
from profy.contract.model_io import CACHE_FORMAT  # bump there when the entry layout changes

__all__ = ["HASH_MEMO_FILE", "CacheStats", "FeatureCache", "HashMemo", "cache_key", "file_sha256"]

HASH_MEMO_FILE = "file_hashes.json"  # in the cache folder, beside checked_takes.json


def cache_key(audio_sha256: str, sensor_sha256: str, feature_config_hash: str) -> str:
    """Key of one take's features: the inputs' content plus the feature config."""
    joined = "\n".join((CACHE_FORMAT, audio_sha256, sensor_sha256, feature_config_hash))
    return hashlib.sha256(joined.encode()).hexdigest()


@dataclass
class CacheStats:
    """Counters for one pass over a corpus."""

    hits: int = 0
    misses: int = 0
    rejected: int = 0  # entries present but corrupt, truncated or not matching their key

    def merge(self, other: CacheStats) -> None:
        """Add another pass's counters (e.g. from a worker process)."""
        self.hits += other.hits
        self.misses += other.misses
        self.rejected += other.rejected


class FeatureCache:
    """A folder of safetensors entries named by :func:`cache_key`.

    Args:
        root: cache folder (created on first write). Entries live in
            ``root/<key[:2]>/<key>.safetensors`` to keep folders small.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.stats = CacheStats()

    def path_for(self, key: str) -> Path:
        """Where the entry for ``key`` lives."""
        return self.root / key[:2] / f"{key}.safetensors"

    def get(self, key: str, *, meta: dict[str, str] | None = None
            ) -> dict[str, np.ndarray] | None:
        """Return the verified arrays for ``key``, or ``None`` (a miss or a rejected entry).

        Args:
            key: the entry's key.
            meta: metadata the entry must carry (e.g. input hashes); any mismatch rejects it.
        """
        from safetensors import safe_open

        path = self.path_for(key)
        if not path.is_file():
            self.stats.misses += 1
            return None
        try:
            with safe_open(str(path), framework="numpy") as handle:
                stored = handle.metadata() or {}
                arrays = {name: handle.get_tensor(name) for name in handle.keys()}
        except Exception:  # truncated or garbage file: safetensors raises several types
            self.stats.rejected += 1
            return None
        expected = {"key": key, "format": CACHE_FORMAT, **(meta or {})}
        if any(stored.get(k) != v for k, v in expected.items()) \
                or stored.get("payload_sha256") != _payload_sha256(arrays):
            self.stats.rejected += 1
            return None
        self.stats.hits += 1
        return arrays

    def put(self, key: str, arrays: dict[str, np.ndarray], *,
            meta: dict[str, str] | None = None) -> Path:
        """Store ``arrays`` under ``key`` atomically, with a checksum of their bytes."""
        from safetensors.numpy import save

        arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        metadata = {"key": key, "format": CACHE_FORMAT, **(meta or {}),
                    "payload_sha256": _payload_sha256(arrays)}
        path = self.path_for(key)
        with atomic_path(path) as tmp:
            tmp.write_bytes(save(arrays, metadata=metadata))
        return path

    def describe(self) -> str:
        """One line for logs: hits, misses and rejected entries."""
        return json.dumps({"hits": self.stats.hits, "misses": self.stats.misses,
                           "rejected": self.stats.rejected})


class HashMemo:
    """Remembers files' sha256 by ``(size, mtime_ns, inode)`` so unchanged files are not reread.

    The cache key stays the *content* hash; this only avoids recomputing it for a file
    whose size, modification time and inode are all unchanged since it was last hashed
    (the same trust ``make``, git's index and DVC place in file metadata). Any change to
    a file changes its mtime, so its hash is recomputed. The memo is a small JSON file
    in the cache folder, written atomically; concurrent writers can only lose entries,
    which costs a rehash, never a wrong hash.

    Args:
        path: the memo file. (Typically ``<cache>/file_hashes.json``.)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._data: dict[str, list] = {}
        self._dirty = False
        try:
            loaded = json.loads(self.path.read_text())
            if isinstance(loaded, dict):
                self._data = {k: v for k, v in loaded.items()
                              if isinstance(v, list) and len(v) == 4}
        except (OSError, ValueError):
            pass  # no memo or a damaged one: start empty, hashes are recomputed

    def sha256(self, file: str | Path) -> str:
        """The file's content sha256, from the memo when its metadata is unchanged.

        Raises:
            MissingInputError: the file does not exist; MalformedFileError: unreadable.
        """
        from profy.errors import MalformedFileError, MissingInputError

        file = Path(file)
        try:
            st = os.stat(file)
        except FileNotFoundError:
            raise MissingInputError(file, "file does not exist") from None
        except OSError as exc:
            raise MalformedFileError(file, f"cannot be read ({exc.strerror})") from None
        key = str(file.resolve())
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        record = self._data.get(key)
        if record is not None and record[:3] == stamp:
            return str(record[3])
        try:
            digest = file_sha256(file)
        except OSError as exc:
            raise MalformedFileError(file, f"cannot be read ({exc.strerror})") from None
        self._data[key] = [*stamp, digest]
        self._dirty = True
        return digest

    def known(self, file: str | Path) -> tuple[str, list[int]] | None:
        """``(digest, stamp)`` of a file the memo holds unchanged, else ``None`` (no read)."""
        try:
            st = os.stat(file)
        except OSError:
            return None
        record = self._data.get(str(Path(file).resolve()))
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        return (str(record[3]), stamp) if record is not None and record[:3] == stamp else None

    def record(self, file: str | Path, digest: str, stamp: list[int] | None) -> None:
        """Remember a digest computed elsewhere (a worker) under the ``(size, mtime_ns,
        inode)`` taken before that read; a file changed since then is not recorded."""
        file = Path(file)
        try:
            st = os.stat(file)
        except OSError:
            return
        now = [st.st_size, st.st_mtime_ns, st.st_ino]
        if stamp is not None and list(stamp) == now:
            self._data[str(file.resolve())] = [*now, digest]
            self._dirty = True

    def save(self) -> None:
        """Write the memo atomically if anything was added."""
        if self._dirty:
            from profy.contract.atomic import atomic_write_json

            atomic_write_json(self.path, self._data)
            self._dirty = False
