"""``profy data inspect``: counts and every problem found in a corpus, as data.

Inspection never stops at the first bad take: it quarantines each one and lists it,
so a user sees the whole picture in one pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from profy.data._manifest import Manifest, build_manifest

__all__ = ["CorpusReport", "inspect_corpus", "render_report", "report_from_manifest"]

# Ranges the real corpus falls in (DESIGN.md §1); outside them is worth a look, not an error.
_EXPECTED_DURATION_S = (5.0, 12.0)
_EXPECTED_SAMPLE_RATE = 44_100
_EXPECTED_CHANNELS = 2
_EXPECTED_SENSOR_RATE = (900.0, 1100.0)


@dataclass
class CorpusReport:
    """What ``profy data inspect`` found: counts, distributions and problems."""

    root: str
    labels_path: str
    takes: int
    players: int
    pieces: int
    labels: dict[str, int]
    players_by_label: dict[str, int]
    piece_kinds: dict[str, int]
    rater_rows: int
    untagged_rows: int
    untagged_takes: int
    unlabelled_on_disk: int
    duration_s: dict[str, float]
    sample_rates: dict[str, int]
    channels: dict[str, int]
    sensor_rate_hz: dict[str, float]
    problems: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _counts(column: Any) -> dict[str, int]:
    values = pc.value_counts(column).to_pylist()
    ordered = sorted(values, key=lambda v: str(v["values"]))
    return {str(v["values"]): int(v["counts"]) for v in ordered}


def _summary(column: Any) -> dict[str, float]:
    if len(column) == 0:
        return {}
    return {"min": float(pc.min(column).as_py()), "mean": float(pc.mean(column).as_py()),
            "max": float(pc.max(column).as_py())}


def report_from_manifest(manifest: Manifest) -> CorpusReport:
    """Summarize a built manifest (with its quarantined takes) into a report."""
    t = manifest.table
    labels = manifest.labels
    per_player = t.group_by("player_id").aggregate([("label", "min")])
    report = CorpusReport(
        root=str(manifest.root), labels_path=str(labels.path),
        takes=t.num_rows, players=len(pc.unique(t["player_id"])),
        pieces=len(pc.unique(t["piece"])), labels=_counts(t["label"]),
        players_by_label=_counts(per_player["label_min"]),
        piece_kinds=_counts(t["piece_kind"]), rater_rows=labels.n_label_rows,
        untagged_rows=labels.n_untagged_rows, untagged_takes=labels.n_untagged_takes,
        unlabelled_on_disk=manifest.n_unlabelled_on_disk,
        duration_s=_summary(t["duration_s"]), sample_rates=_counts(t["sample_rate"]),
        channels=_counts(t["channels"]), sensor_rate_hz=_summary(t["sensor_rate_hz"]),
        problems=[asdict(p) for p in manifest.quarantined],
    )
    lo, hi = _EXPECTED_DURATION_S
    n_odd = len(t.filter(pc.or_(pc.less(t["duration_s"], lo), pc.greater(t["duration_s"], hi))))
    if n_odd:
        report.notes.append(f"{n_odd} take(s) last outside {lo}-{hi} s")
    if set(report.sample_rates) - {str(_EXPECTED_SAMPLE_RATE)}:
        report.notes.append(f"sample rates other than {_EXPECTED_SAMPLE_RATE} Hz present")
    if set(report.channels) - {str(_EXPECTED_CHANNELS)}:
        report.notes.append("takes with other than 2 audio channels present")
    lo, hi = _EXPECTED_SENSOR_RATE
    rate = t["sensor_rate_hz"]
    n_rate = len(t.filter(pc.or_(pc.less(rate, lo), pc.greater(rate, hi))))
    if n_rate:
        report.notes.append(f"{n_rate} take(s) with a sensor rate outside {lo:.0f}-{hi:.0f} Hz")
    if report.untagged_rows:
        report.notes.append(f"{report.untagged_rows} untagged rater row(s) skipped "
                            f"({report.untagged_takes} take(s) with no tag at all)")
    if report.unlabelled_on_disk:
        report.notes.append(f"{report.unlabelled_on_disk} take folder(s) on disk are not samples "
                            "(untagged, or absent from the labels file)")
    return report


def inspect_corpus(root: str | Path, *, labels_path: str | Path | None = None,
                   progress: bool = False) -> CorpusReport:
    """Read every take of a corpus and report counts and all problems found.

    Raises:
        DataError: only when the corpus cannot be read at all (no root, no labels file,
            a malformed labels file); bad takes are listed in ``problems`` instead.
    """
    manifest = build_manifest(root, labels_path=labels_path, skip_bad=True, progress=progress)
    return report_from_manifest(manifest)


def render_report(report: CorpusReport, console: Any) -> None:
    """Print a report as rich tables (counts, then problems and notes)."""
    from rich.table import Table

    from profy.contract.console import print_table

    table = Table(title=f"corpus {report.root}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    dur = report.duration_s
    rate = report.sensor_rate_hz
    rows = [
        ("takes", str(report.takes)),
        ("players", f"{report.players}  {report.players_by_label}"),
        ("labels (takes)", str(report.labels)),
        ("pieces", f"{report.pieces}  {report.piece_kinds}"),
        ("rater rows", f"{report.rater_rows} ({report.untagged_rows} untagged)"),
        ("duration s", f"{dur.get('min', 0):.2f} / {dur.get('mean', 0):.2f} / "
                       f"{dur.get('max', 0):.2f} (min/mean/max)" if dur else "-"),
        ("sample rates", str(report.sample_rates)),
        ("channels", str(report.channels)),
        ("sensor rate Hz", f"{rate.get('min', 0):.1f} / {rate.get('mean', 0):.1f} / "
                           f"{rate.get('max', 0):.1f}" if rate else "-"),
        ("labels file", report.labels_path),
    ]
    for what, value in rows:
        table.add_row(what, value)
    print_table(console, table)
    for note in report.notes:
        console.print(f"note: {note}")
    if report.problems:
        problems = Table(title=f"{len(report.problems)} problem(s)")
        for col in ("sample_id", "path", "problem"):  # fold on a narrow terminal, never cut
            problems.add_column(col, overflow="fold")
        for p in report.problems:
            problems.add_row(p["sample_id"], p["path"], p["problem"])
        print_table(console, problems)
    else:
        console.print("no problems found")
