"""Atomic writes: a file is either absent, the old version, or complete.

An interrupted run must never leave a half-written artifact that a gate could read
as valid, so every artifact is written to a temporary file in the same folder and
moved into place with ``os.replace`` (atomic on POSIX within one filesystem).
Where several jobs may write the same artifact and the first one must win (a shared
run folder), :func:`atomic_create_bytes` publishes with ``os.link``, which fails if the
name exists: atomic on local disks and on NFS, where ``O_EXCL`` and ``fcntl`` locks are
not reliable.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# mkstemp creates 0600 files; artifacts must get the usual umask-based mode so another
# user (a guardrails container, a CI job) can read a run folder. Read the umask once.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK

__all__ = ["atomic_create_bytes", "atomic_path", "atomic_write_bytes", "atomic_write_json",
           "atomic_write_text", "json_bytes", "write_parquet_atomic"]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it into place.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # fsync so a crash right after the rename cannot expose an empty file.
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_create_bytes(path: str | Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` only if no file is there: first writer wins, atomically.

    Returns:
        ``True`` if this call created ``path``; ``False`` if a file was already there
        (left untouched, whatever it holds: the caller verifies it).
    """
    path = Path(path)
    if path.exists():
        return False
    staged = atomic_write_bytes(path.with_name(f".{path.name}.{os.getpid()}.tmp"), data)
    try:  # staged is complete and fsynced: linking it publishes all of it or nothing
        os.link(staged, path)
    except FileExistsError:
        return False
    finally:
        staged.unlink(missing_ok=True)
    return True


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically and return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_bytes(obj: Any) -> bytes:
    """``obj`` as the indented, key-sorted UTF-8 JSON artifacts use (NaN is refused)."""
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON atomically (NaN is refused)."""
    return atomic_write_bytes(path, json_bytes(obj))


def write_parquet_atomic(table: Any, path: str | Path) -> Path:
    """Write a ``pyarrow.Table`` to ``path`` atomically and return the path."""
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)
