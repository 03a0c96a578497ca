"""``--skip-bad`` by the gate's own rules: leave out takes that break ``data.audio_stats``.

``profy train --skip-bad`` (and ``profy data prepare --skip-bad --audio-stats``) apply
the per-take data-quality rules (:data:`profy.contract.quarantine.TAKE_RULES`) with the
thresholds of the same criteria file ``guardrails ci`` gates with, so the run trains on
the takes the gate would accept and ``data.audio_stats`` judges exactly those.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from profy.contract.quarantine import take_rule_breaks
from profy.data._manifest import Manifest
from profy.errors import ConfigError

__all__ = ["QualityQuarantine", "filter_takes", "quality_quarantine", "quality_thresholds"]


@dataclasses.dataclass(frozen=True)
class QualityQuarantine:
    """What the data-quality rules left out.

    Attributes:
        manifest: the manifest without the left-out takes.
        breaks: one ``quarantine.json`` entry per left-out take.
        criteria: ``{"source": ..., "data.audio_stats": thresholds}``, or ``None`` when
            the criteria file does not run ``data.audio_stats`` (nothing left out then).
    """

    manifest: Manifest
    breaks: list[dict[str, Any]]
    criteria: dict[str, Any] | None

    @property
    def kept_ids(self) -> set[str]:
        """The takes still in the manifest."""
        return set(self.manifest.table["sample_id"].to_pylist())


def quality_thresholds(criteria: str | Path | None = None) -> dict[str, Any] | None:
    """The ``data.audio_stats`` thresholds of a criteria file, as guardrails loads them.

    Args:
        criteria: a criteria file or named profile. (Default: the release criteria)

    Returns:
        ``{"source": ..., "data.audio_stats": {...}}``, or ``None`` if the file does not
        list ``data.audio_stats``.

    Raises:
        ConfigError: the criteria file is missing or invalid (the message names it).
    """
    from guardrails._criteria import load_criteria
    from guardrails.errors import GuardrailsError

    try:
        loaded = load_criteria(criteria)
    except GuardrailsError as exc:
        raise ConfigError(f"--criteria: {exc}") from None
    params = loaded.checks.get("data.audio_stats")
    return None if params is None else {"source": loaded.source, "data.audio_stats": params}


def quality_quarantine(manifest: Manifest, stats: pa.Table,
                       criteria: dict[str, Any] | None) -> QualityQuarantine:
    """Leave out the takes whose ``audio_stats`` row breaks a per-take rule.

    Args:
        manifest: the checked corpus.
        stats: its ``audio_stats.parquet`` table (one row per take).
        criteria: :func:`quality_thresholds`'s answer.
    """
    if criteria is None:
        return QualityQuarantine(manifest, [], None)
    params = criteria["data.audio_stats"]
    ids = set(manifest.table["sample_id"].to_pylist())
    rows = [r for r in stats.to_pylist() if r["sample_id"] in ids]
    breaks = take_rule_breaks(rows, params)
    if not breaks:
        return QualityQuarantine(manifest, [], criteria)
    out = pa.array(sorted({b["sample_id"] for b in breaks}))
    keep = pc.invert(pc.is_in(manifest.table["sample_id"], value_set=out))
    return QualityQuarantine(dataclasses.replace(manifest, table=manifest.table.filter(keep)),
                             breaks, criteria)


def filter_takes(table: pa.Table, ids: set[str]) -> pa.Table:
    """Rows of a per-take table whose ``sample_id`` is in ``ids`` (order kept)."""
    return table.filter(pc.is_in(table["sample_id"], value_set=pa.array(sorted(ids))))

