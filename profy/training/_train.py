"""``profy train`` and ``profy train --resume``: from a corpus (or an interrupted run) to a
finished run folder.

:func:`train` builds the manifest and player-wise splits, computes (cached) features into
the run folder, applies ``--skip-bad``, claims the folder (:meth:`RunFolder.claim`) and
hands over to :func:`~profy.training._cv.run_cv`; :func:`resume` reopens a run from its
own config, splits and features and finishes the shards that are missing.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from profy.config import RunConfig
from profy.contract.layout import FEATURES_DIR, MANIFEST_FILE, QUARANTINE_FILE
from profy.errors import ConfigError
from profy.features import FeatureStore
from profy.training._cv import CVResult, run_cv, select_folds
from profy.training._run_folder import RunFolder

__all__ = ["resume", "train"]


def _splits(cfg: RunConfig, manifest: Any) -> Any:
    from profy.data import make_folds

    takes = manifest.table.select(["sample_id", "player_id", "piece", "label"]).to_pandas()
    return make_folds(takes, n_folds=cfg.train.n_folds, seed=cfg.train.seed,
                      val_fraction=cfg.train.val_fraction)


def _keep_takes(feats: Any, ids: set[str]) -> None:
    """Rewrite a feature run's stats table and index with only the takes ``ids``."""
    from profy.contract.atomic import write_parquet_atomic
    from profy.data._quarantine import filter_takes

    for path in (feats.audio_stats_path, feats.index_path):
        write_parquet_atomic(filter_takes(pq.read_table(path), ids), path)


def _target(runs_dir: str | Path | None, run_dir: str | Path | None
            ) -> tuple[RunFolder, bool, bool]:
    """The run folder, whether this process created it, and whether it was given (shared)."""
    if run_dir is None:
        return RunFolder.create(runs_dir), True, False  # type: ignore[arg-type]
    path = Path(run_dir)
    try:
        path.mkdir(parents=True)  # exclusive: of jobs starting at once, one creates it
    except FileExistsError:
        return RunFolder(path), False, True
    return RunFolder(path), True, True


def _prepare(cfg: RunConfig, data_root: str | Path, folder: RunFolder, manifest: Any,
             splits: Any, cache: Path, *, thresholds: Any, workers: int, progress: bool
             ) -> tuple[Any, Any]:
    """Features into ``folder``, ``--skip-bad`` quality quarantine, the claim, the manifest
    and ``quarantine.json``; returns the feature run and the (final) splits."""
    from profy.data import write_manifest, write_quarantine
    from profy.data._quarantine import quality_quarantine
    from profy.features import compute_features

    n_candidates = manifest.table.num_rows + len(manifest.quarantined)
    feats = compute_features(data_root, manifest.table, folder.run_dir / FEATURES_DIR,
                             cfg=cfg.features, cache_dir=cache, workers=workers,
                             progress=progress)
    # --skip-bad also leaves out takes breaking the gate's per-take data-quality rules
    # (same criteria file): the run trains on, and data.audio_stats judges, the rest.
    quality = quality_quarantine(manifest, pq.read_table(feats.audio_stats_path), thresholds)
    if quality.breaks:
        manifest = quality.manifest
        _keep_takes(feats, quality.kept_ids)
        splits = _splits(cfg, manifest)
    folder.claim(cfg, splits)  # a shared folder: same config and splits
    write_manifest(manifest, folder.run_dir / MANIFEST_FILE)
    write_quarantine(manifest.quarantined, folder.run_dir / QUARANTINE_FILE,
                     n_candidates=n_candidates, rule_breaks=quality.breaks,
                     criteria=quality.criteria)
    return feats, splits


def train(cfg: RunConfig, data_root: str | Path, runs_dir: str | Path | None = None, *,
          cache_dir: str | Path | None = None, labels_path: str | Path | None = None,
          skip_bad: bool = False, workers: int = 2, profile: str | None = None,
          progress: bool = False, console: Any = None, run_dir: str | Path | None = None,
          only_fold: int | None = None, manifest: Any = None,
          criteria: str | Path | None = None) -> CVResult:
    """``profy train``: manifest + splits, cached features, then :func:`run_cv`.

    Args:
        cfg: the resolved run config.
        data_root: corpus root (``playdata/``, ``labels.csv``).
        runs_dir: where ``experiment_YYYYMMDD_HHMMSS/`` is created.
        cache_dir: feature cache. (Default: ``runs_dir/../cache``)
        labels_path: labels file. (Default: ``data_root/labels.csv``)
        skip_bad: quarantine bad takes instead of failing: takes the input policy refuses,
            and takes breaking the per-take data-quality rules of ``criteria``'s
            ``data.audio_stats``; all are listed in ``RUN/quarantine.json`` (always written).
        workers: feature-extraction processes.
        run_dir: use this run folder instead of a new one under ``runs_dir``; created with
            the config and splits on first use (by the first of several jobs starting at
            once, :meth:`RunFolder.claim`), refused if it holds another config or other
            splits. Folds already finished there are kept.
        only_fold: train just this fold (every mode) into ``run_dir`` (required with it);
            ``profy collect`` merges the folds.
        manifest: a :class:`~profy.data.Manifest` the caller already built for
            ``data_root`` (skips re-reading every take).
        criteria: the guardrails criteria file or profile whose thresholds ``skip_bad``
            applies. (Default: the release criteria ``guardrails ci`` gates with)

    A folder this call created is removed again if it fails before training, unless
    another job has claimed it meanwhile (a shared ``run_dir``).

    Raises:
        DataError, ConfigError, FeatureError, LeakageError: as the stages they come from.
    """
    from profy.data import InputPolicy, build_manifest
    from profy.data._quarantine import quality_thresholds
    from profy.data._take_memo import TAKE_MEMO_FILE, TakeMemo

    if run_dir is None and runs_dir is None:
        raise ConfigError("train needs runs_dir or run_dir")
    if only_fold is not None and run_dir is None:  # each job would get its own experiment_*
        raise ConfigError("only_fold needs run_dir, the run folder the fold jobs share")
    thresholds = quality_thresholds(criteria) if skip_bad else None  # a bad file fails now
    base = Path(runs_dir) if runs_dir is not None else Path(str(run_dir)).parent
    cache = Path(cache_dir) if cache_dir is not None else base.resolve().parent / "cache"
    if manifest is None:
        # Takes checked by an earlier run (or `profy features` on this cache) and unchanged
        # on disk are not parsed again (the take memo, :mod:`profy.data._take_memo`).
        policy = InputPolicy.from_features(cfg.features)
        manifest = build_manifest(data_root, labels_path=labels_path, skip_bad=skip_bad,
                                  progress=progress, policy=policy,
                                  memo=TakeMemo(cache / TAKE_MEMO_FILE, policy))
    splits = _splits(cfg, manifest)  # before any write: fail early
    folds = None if only_fold is None else select_folds(cfg.train.n_folds, [only_fold])
    folder, created, given = _target(runs_dir, run_dir)
    try:
        feats, splits = _prepare(cfg, data_root, folder, manifest, splits, cache,
                                 thresholds=thresholds, workers=workers, progress=progress)
    except BaseException:
        if created and not (given and folder.is_claimed()):  # nothing trained: no husk
            shutil.rmtree(folder.run_dir, ignore_errors=True)
        raise
    return run_cv(cfg, folder.run_dir, store=FeatureStore(feats.index_path), splits=splits,
                  audio_stats=feats.audio_stats_path, profile=profile, progress=progress,
                  console=console, folds=folds, resume=not created)


def resume(run_dir: str | Path, *, progress: bool = False, console: Any = None) -> CVResult:
    """``profy train --resume RUN``: finish an interrupted run from its own files.

    Reads the run's ``config.yaml`` (checked against ``config_hash``), ``splits.parquet``
    and feature index, removes ``.*.tmp`` leftovers, keeps every finished (mode, fold)
    shard and trains the rest; the results equal an uninterrupted run's, since each shard
    is seeded from (seed, mode, fold) alone.

    Raises:
        MissingInputError: the folder, its config, splits or feature index is missing.
        ConfigError: ``config.yaml`` no longer matches the run's ``config_hash``.
    """
    folder = RunFolder.open(run_dir)
    folder.clean()
    return run_cv(folder.cfg, folder.run_dir, store=FeatureStore(folder.feature_index),
                  splits=folder.splits, audio_stats=folder.audio_stats,
                  profile=folder.profile(), progress=progress, console=console, resume=True)
