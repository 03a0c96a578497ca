"""Checked takes remembered by file identity, so an unchanged corpus is not parsed again.

``build_manifest`` reads every take's WAV whole and parses its ``hackkey.csv`` (8.5k rows
x 89 columns, ~6 MB of text) to apply the input policy: ~35 s for the full corpus on two
cores, most of a fully cached ``profy features``. A :class:`TakeMemo` keeps, per take, the
manifest fields that pass produced together with both files' ``(size, mtime_ns, inode)``
and the policy they were checked under; a take whose two files and policy are unchanged
gets its fields back without a read. Any write to a file changes its mtime, so a changed
file is checked again (the trust ``make``, git's index and :class:`~profy.features.HashMemo`
place in file metadata). Only takes that passed are remembered: a bad take is read, and
reported, every time.

The memo is one JSON file (``<cache>/checked_takes.json`` for ``profy features``) written
atomically; a damaged or foreign file is ignored, which costs a re-read, never a wrong row.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from profy.contract.atomic import atomic_write_json
from profy.data._policy import InputPolicy

__all__ = ["MEMO_FIELDS", "TAKE_MEMO_FILE", "TakeMemo"]

# The manifest fields a check of the two files yields (the paths are recomputed per root).
MEMO_FIELDS = ("duration_s", "sample_rate", "channels", "sensor_rows", "sensor_rate_hz")
_FORMAT = 1
TAKE_MEMO_FILE = "checked_takes.json"  # in the feature cache folder, beside file_hashes.json


def _stamp(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


class TakeMemo:
    """Manifest fields of takes that passed the input policy, keyed by file identity.

    Thread-safe for the manifest's reader threads: each call touches one key of a dict.

    Args:
        path: the memo file.
        policy: the input policy the takes are checked under; entries recorded under
            another policy are not used.
    """

    def __init__(self, path: str | Path, policy: InputPolicy) -> None:
        self.path = Path(path)
        self.policy = self.policy_key(policy)
        self._data: dict[str, dict[str, Any]] = {}
        self._dirty = False
        try:
            loaded = json.loads(self.path.read_text("utf-8"))
            if isinstance(loaded, dict) and loaded.get("format") == _FORMAT \
                    and loaded.get("policy") == self.policy:
                self._data = {k: v for k, v in loaded.get("takes", {}).items()
                              if isinstance(v, dict) and set(v) == {"audio", "sensor", "row"}}
        except (OSError, ValueError):
            pass  # no memo or a damaged one: every take is read

    def get(self, audio: Path, sensor: Path) -> dict[str, Any] | None:
        """The remembered fields of the take with these files, if both are unchanged."""
        entry = self._data.get(str(audio.resolve()))
        if entry is None:
            return None
        a, s = _stamp(audio), _stamp(sensor)
        if a is None or s is None or entry["audio"] != a or entry["sensor"] != s:
            return None
        return dict(entry["row"])

    def put(self, audio: Path, sensor: Path, row: dict[str, Any], *,
            stamps: tuple[list[int] | None, list[int] | None]) -> None:
        """Remember a checked take's fields under the stamps taken before it was read
        (a file written while it was read then does not match, and is read again)."""
        a, s = stamps
        if a is None or s is None or a != _stamp(audio) or s != _stamp(sensor):
            return
        self._data[str(audio.resolve())] = {"audio": a, "sensor": s,
                                            "row": {k: row[k] for k in MEMO_FIELDS}}
        self._dirty = True

    @staticmethod
    def policy_key(policy: InputPolicy) -> str:
        """The policy as the memo records it (entries under another key are not used)."""
        return json.dumps(dataclasses.asdict(policy), sort_keys=True)

    @staticmethod
    def stamps(audio: Path, sensor: Path) -> tuple[list[int] | None, list[int] | None]:
        """Both files' ``(size, mtime_ns, inode)`` now (``None`` for one that is missing)."""
        return _stamp(audio), _stamp(sensor)

    def save(self) -> None:
        """Write the memo atomically if a take was added."""
        if self._dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, {"format": _FORMAT, "policy": self.policy,
                                          "takes": self._data})
            self._dirty = False
