"""``profy data prepare``: manifest + player-wise splits for a corpus, written atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
                   progress: bool = False, manifest: Manifest | None = None) -> PreparedCorpus:
    """Build the manifest, draw player-wise folds, write ``manifest.parquet``/``splits.parquet``.

    Raises:
        DataError: a bad take when ``skip_bad`` is false (nothing is written then).
        ConfigError: too few players for ``n_folds``.
    """
    out_dir = Path(out_dir)
    if manifest is None:  # a caller that already read the corpus passes its manifest
        manifest = build_manifest(root, labels_path=labels_path, skip_bad=skip_bad,
                                  progress=progress)
    takes = manifest.table.select(["sample_id", "player_id", "piece", "label"]).to_pandas()
    splits = make_folds(takes, n_folds=n_folds, seed=seed)  # before writing: fail early
    quarantine_path = None
    if manifest.quarantined:
        quarantine_path = write_quarantine(manifest.quarantined, out_dir / "quarantine.json")
    manifest_path = write_manifest(manifest, out_dir / "manifest.parquet")
    splits_path = write_splits(splits, out_dir / "splits.parquet")
    return PreparedCorpus(manifest_path=manifest_path.resolve(), splits_path=splits_path.resolve(),
                          quarantine_path=quarantine_path.resolve() if quarantine_path else None,
                          n_takes=manifest.table.num_rows, n_quarantined=len(manifest.quarantined),
                          n_folds=n_folds)
