"""``profy features --shard K/N``: one deterministic N-th of a corpus's takes.

A Kubernetes Indexed Job runs N pods, pod K (``$JOB_COMPLETION_INDEX``, 0-based like
``--only-fold``) with ``--shard K/N``; each fills the shared content-addressed feature cache
with its takes only (no ``audio_stats.parquet``, ``feature_index.parquet`` or manifest), and
one final ``profy features`` without ``--shard`` finds every entry cached and writes the
tables.

The partition: the takes sorted by ``sample_id``, dealt round-robin (take at sorted
position ``i`` goes to shard ``i mod N``). Every pod reads the same corpus, so every pod
computes the same partition, whatever order the manifest lists the takes in; shards are
disjoint, cover every take and differ in size by at most one (the Job's wall time is its
slowest pod's). A stable hash of the id would keep a take's shard when takes are added,
but shards of a ~1,000-take corpus would then differ by ~10 %, and nothing depends on a
take staying in its shard: the cache is keyed by content, and the final run computes any
take no shard covered.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Shard", "parse_shard", "shard_rows"]

_PATTERN = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")
_Row = TypeVar("_Row", bound=dict[str, Any])


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``0 <= index < count``)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        from profy.errors import ConfigError

        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigError(f"--shard {self.index}/{self.count}: K/N needs N >= 1 and "
                              f"0 <= K < N (K is 0-based, like $JOB_COMPLETION_INDEX)")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, position: int) -> bool:
        """Whether the take at ``position`` in sample_id order belongs to this shard."""
        return position % self.count == self.index


def parse_shard(text: str) -> Shard:
    """``"K/N"`` -> :class:`Shard`.

    Raises:
        ConfigError: not two integers ``K/N`` with ``0 <= K < N``.
    """
    from profy.errors import ConfigError

    match = _PATTERN.fullmatch(str(text))
    if match is None:
        raise ConfigError(f"--shard {text!r}: expected K/N, e.g. 0/4 (shard K of N, K from 0)")
    return Shard(int(match.group(1)), int(match.group(2)))


def shard_rows(rows: Sequence[_Row], shard: Shard) -> list[_Row]:
    """The manifest rows (dicts with ``sample_id``) of ``shard``, in sample_id order.

    Shapes: ``rows`` n rows -> ``ceil((n - index) / count)`` rows.
    """
    ordered = sorted(rows, key=lambda row: str(row["sample_id"]))
    return [row for i, row in enumerate(ordered) if shard.owns(i)]
