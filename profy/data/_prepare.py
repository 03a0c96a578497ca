"""``profy data prepare``: manifest + player-wise splits for a corpus, written atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from profy.contract.layout import MANIFEST_FILE, QUARANTINE_FILE, SPLITS_FILE
from profy.data._folds import make_folds, write_splits
from profy.data._manifest import Manifest, build_manifest, write_manifest, write_quarantine

__all__ = ["PreparedCorpus", "prepare_corpus"]


@dataclass(frozen=True)
class PreparedCorpus:
    """Where ``prepare_corpus`` wrote its outputs, and what they hold."""

    manifest_path: Path
    splits_path: Path
    quarantine_path: Path | None
    n_takes: int
    n_quarantined: int
    n_folds: int


def prepare_corpus(root: str | Path, out_dir: str | Path, *, labels_path: str | Path | None = None,
                   skip_bad: bool = False, n_folds: int = 3, seed: int = 0,
                   progress: bool = False, manifest: Manifest | None = None,
                   audio_stats: str | Path | None = None,
                   criteria: str | Path | None = None) -> PreparedCorpus:
    """Build the manifest, draw player-wise folds, write ``manifest.parquet``/``splits.parquet``.

    Args:
        skip_bad: leave out (and list in ``quarantine.json``) takes the input policy
            refuses and, with ``audio_stats``, takes breaking the per-take data-quality
            rules of ``criteria`` (as ``profy train --skip-bad`` does).
        audio_stats: the corpus's ``audio_stats.parquet`` from ``profy features``.
        criteria: criteria file or profile for the rules' thresholds. (Default: release)

    Raises:
        DataError: a bad take when ``skip_bad`` is false (nothing is written then).
        ConfigError: too few players for ``n_folds``, or a bad criteria file.
    """
    import pyarrow.parquet as pq

    from profy.data._quarantine import QualityQuarantine, quality_quarantine, quality_thresholds
    from profy.errors import MalformedFileError, MissingInputError

    out_dir = Path(out_dir)
    thresholds = quality_thresholds(criteria) if skip_bad and audio_stats is not None else None
    if manifest is None:  # a caller that already read the corpus passes its manifest
        manifest = build_manifest(root, labels_path=labels_path, skip_bad=skip_bad,
                                  progress=progress)
    n_candidates = manifest.table.num_rows + len(manifest.quarantined)
    quality = QualityQuarantine(manifest, [], None)
    if thresholds is not None:
        if not Path(audio_stats).is_file():
            raise MissingInputError(audio_stats, "no such audio_stats.parquet "
                                                 "(`profy features ROOT --out DIR` writes it)")
        try:
            stats = pq.read_table(audio_stats)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types here
            raise MalformedFileError(audio_stats, f"not a readable Parquet file ({exc})") from None
        quality = quality_quarantine(manifest, stats, thresholds)
        manifest = quality.manifest
    takes = manifest.table.select(["sample_id", "player_id", "piece", "label"]).to_pandas()
    splits = make_folds(takes, n_folds=n_folds, seed=seed)  # before writing: fail early
    quarantine_path = None
    if skip_bad:
        quarantine_path = write_quarantine(manifest.quarantined, out_dir / QUARANTINE_FILE,
                                           n_candidates=n_candidates,
                                           rule_breaks=quality.breaks, criteria=quality.criteria)
    manifest_path = write_manifest(manifest, out_dir / MANIFEST_FILE)
    splits_path = write_splits(splits, out_dir / SPLITS_FILE)
    n_out = len(manifest.quarantined) + len(quality.breaks)
    return PreparedCorpus(manifest_path=manifest_path.resolve(), splits_path=splits_path.resolve(),
                          quarantine_path=quarantine_path.resolve() if quarantine_path else None,
                          n_takes=manifest.table.num_rows, n_quarantined=n_out,
                          n_folds=n_folds)
