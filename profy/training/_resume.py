"""Resuming an interrupted run, folds trained as separate jobs, and ``profy collect``.

A run folder's identity is its ``config.yaml`` (with ``config_hash``) and its
``splits.parquet``. :func:`claim_run_dir` writes them into a fresh folder, or checks that
a folder already holding them was made with the same config and splits, so a resumed
run or a second ``--only-fold`` job can never mix results of two experiments.

Every artifact is written atomically (temporary file + rename, :mod:`profy.contract.atomic`), so a
``kill -9`` can leave at most a ``.<name>.<random>.tmp`` file, never a partial one under
its real name; :func:`clean_temp_files` removes such leftovers before a run goes on.
A (mode, fold) shard counts as finished only once its ``result.json`` exists.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from profy.config import RunConfig, config_hash
from profy.contract.atomic import atomic_write_text
from profy.contract.quarantine import QUARANTINE_FILE
from profy.contract.schemas import MODES
from profy.errors import ConfigError, MissingInputError
from profy.features import FeatureStore
from profy.training._run import CVResult, create_run_dir, run_cv
from profy.training._shards import (
    claim_run_dir,
    clean_temp_files,
    collect_run,
    read_shard_result,
    saved_config,
    select_folds,
    shard_dir,
)

__all__ = ["RunFolder", "collect", "missing_shards", "open_run_dir", "profile_of",
           "resume", "train"]

_FEATURE_INDEX = Path("features") / "feature_index.parquet"


class RunFolder:
    """An existing run folder, checked: config, splits and feature index present and
    consistent (see :func:`open_run_dir`)."""

    def __init__(self, run_dir: Path, cfg: RunConfig, splits: pd.DataFrame) -> None:
        self.run_dir, self.cfg, self.splits = run_dir, cfg, splits

    @property
    def feature_index(self) -> Path:
        """``features/feature_index.parquet`` written by ``profy train``."""
        return self.run_dir / _FEATURE_INDEX

    @property
    def audio_stats(self) -> Path | None:
        """The run's ``audio_stats.parquet`` (features/ copy first), if any."""
        for path in (self.run_dir / "features" / "audio_stats.parquet",
                     self.run_dir / "audio_stats.parquet"):
            if path.is_file():
                return path
        return None


def open_run_dir(run_dir: str | Path, *, need_features: bool = True) -> RunFolder:
    """Check and open a run folder made by ``profy train`` (for ``--resume`` / collect).

    Raises:
        MissingInputError: no such folder, or it lacks config, splits or feature index.
        ConfigError: ``config.yaml`` no longer matches ``config_hash``, or the splits do
            not have the config's number of folds.
    """
    run_dir = Path(run_dir).resolve()
    if not run_dir.is_dir():
        raise MissingInputError(run_dir, "run folder does not exist")
    cfg = saved_config(run_dir)
    split_path = run_dir / "splits.parquet"
    if not split_path.is_file():
        raise MissingInputError(split_path, "run folder has no splits.parquet")
    splits = pq.read_table(split_path).to_pandas()
    folds = sorted(int(k) for k in splits["fold"].unique())
    if folds != list(range(cfg.train.n_folds)):
        raise ConfigError(f"{split_path}: folds {folds}, config has {cfg.train.n_folds}")
    folder = RunFolder(run_dir, cfg, splits)
    if need_features and not folder.feature_index.is_file():
        raise MissingInputError(folder.feature_index,
                                "run folder has no feature index; it cannot be resumed")
    return folder


def profile_of(run_dir: str | Path) -> str | None:
    """The profile recorded on a ``CONFIG`` line of the run's logs (``None`` if none)."""
    run_dir = Path(run_dir)
    for log in [run_dir / "training.log", *sorted((run_dir / "logs").glob("*.log"))]:
        if log.is_file():
            found = re.search(r"^CONFIG hash=\S+ profile=(\S+)", log.read_text("utf-8"), re.M)
            if found and found.group(1) != "(none)":
                return found.group(1)
    return None


def missing_shards(run_dir: str | Path, cfg: RunConfig, splits: pd.DataFrame
                   ) -> tuple[list[str], list[str]]:
    """Names of the (mode, fold) shards not finished, and of finished ones that do not
    belong to this run (another config hash, or another held-out set size)."""
    missing, mismatched = [], []
    want = config_hash(cfg)
    modes = [m for m in MODES if m in cfg.train.modes]
    for fold in range(cfg.train.n_folds):
        n_test = int(((splits["fold"] == fold) & (splits["role"] == "test")).sum())
        for mode in modes:
            name = f"{mode} fold {fold}"
            if not (shard_dir(run_dir, mode, fold) / "result.json").is_file():
                missing.append(name)
                continue
            result = read_shard_result(run_dir, mode, fold)
            if result.get("config_hash", want) != want:
                mismatched.append(f"{name} (config {result['config_hash']})")
            elif int(result.get("n_test", n_test)) != n_test:
                mismatched.append(f"{name} ({result['n_test']} held-out takes, splits have "
                                  f"{n_test})")
    return missing, mismatched


def collect(run_dir: str | Path, *, run_meta: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    """``profy collect``: merge a run's finished shards into the run-level files.

    Writes ``complete_results.json``, the merged Parquet files and (when the folds were
    trained as separate jobs) a ``training.log`` joining the jobs' logs.

    Raises:
        MissingInputError, ConfigError: not a run folder, or a folder edited since.
        ConfigError: a shard is missing or belongs to another config (all are listed).
    """
    from profy.training import _telemetry as tel

    folder = open_run_dir(run_dir, need_features=False)
    clean_temp_files(folder.run_dir)
    cfg, splits = folder.cfg, folder.splits
    missing, mismatched = missing_shards(folder.run_dir, cfg, splits)
    if missing or mismatched:
        parts = ([f"missing: {', '.join(missing)}"] if missing else []) + \
            ([f"mismatched: {', '.join(mismatched)}"] if mismatched else [])
        raise ConfigError(f"{folder.run_dir}: cannot collect, {'; '.join(parts)}")
    modes = tuple(m for m in cfg.train.modes)
    if run_meta is None:
        head, dirty = tel.git_head()
        results = {(m, k): read_shard_result(folder.run_dir, m, k) for m in modes
                   for k in range(cfg.train.n_folds)}
        run_meta = {"run_id": folder.run_dir.name, "config": _plain(cfg),
                    "config_hash": config_hash(cfg), "profile": profile_of(folder.run_dir),
                    "git_hash": head, "git_dirty": dirty, "date": tel.utc_now(),
                    "versions": tel.library_versions(), "seed": cfg.train.seed,
                    "device": str(next(iter(results.values())).get("device", "unknown")),
                    "fold_seconds": {f"{m}_fold{k}": float(r["seconds"])
                                     for (m, k), r in results.items()}}
    obj = collect_run(folder.run_dir, modes=modes, n_folds=cfg.train.n_folds,
                      run_meta=run_meta)
    logs = sorted((folder.run_dir / "logs").glob("*.log"))
    if logs and not (folder.run_dir / "training.log").is_file():
        text = "".join(p.read_text("utf-8") for p in logs)
        atomic_write_text(folder.run_dir / "training.log",
                          text + f"COLLECT jobs={len(logs)} results=complete_results.json\n")
    return obj


def _plain(cfg: RunConfig) -> dict[str, Any]:
    from profy.config import to_dict

    return to_dict(cfg)




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
            the config and splits on first use, refused if it holds another config or
            other splits. Folds already finished there are kept.
        only_fold: train just this fold (every mode) into ``run_dir`` (required with it);
            ``profy collect`` merges the folds.
        manifest: a :class:`~profy.data.Manifest` the caller already built for
            ``data_root`` (skips re-reading every take).
        criteria: the guardrails criteria file or profile whose thresholds ``skip_bad``
            applies. (Default: the release criteria ``guardrails ci`` gates with)

    Raises:
        DataError, ConfigError, FeatureError, LeakageError: as the stages they come from.
    """
    from profy.data import InputPolicy, build_manifest, write_manifest, write_quarantine
    from profy.data._quarantine import quality_quarantine, quality_thresholds
    from profy.features import compute_features

    if run_dir is None and runs_dir is None:
        raise ConfigError("train needs runs_dir or run_dir")
    if only_fold is not None and run_dir is None:  # each job would get its own experiment_*
        raise ConfigError("only_fold needs run_dir, the run folder the fold jobs share")
    thresholds = quality_thresholds(criteria) if skip_bad else None  # a bad file fails now
    if manifest is None:
        manifest = build_manifest(data_root, labels_path=labels_path, skip_bad=skip_bad,
                                  progress=progress,
                                  policy=InputPolicy.from_features(cfg.features))
    n_candidates = manifest.table.num_rows + len(manifest.quarantined)
    splits = _splits(cfg, manifest)  # before any write: fail early
    folds = None if only_fold is None else select_folds(cfg.train.n_folds, [only_fold])
    fresh = run_dir is None or not Path(run_dir).exists()
    if run_dir is None:
        run_dir = create_run_dir(runs_dir)  # type: ignore[arg-type]
    run_dir = Path(run_dir)
    try:
        base = Path(runs_dir) if runs_dir is not None else run_dir.parent
        cache = Path(cache_dir) if cache_dir is not None else base.resolve().parent / "cache"
        feats = compute_features(data_root, manifest.table, run_dir / "features",
                                 cfg=cfg.features, cache_dir=cache, workers=workers,
                                 progress=progress)
        # --skip-bad also leaves out takes breaking the gate's per-take data-quality rules
        # (same criteria file): the run trains on, and data.audio_stats judges, the rest.
        quality = quality_quarantine(manifest, pq.read_table(feats.audio_stats_path),
                                     thresholds)
        if quality.breaks:
            manifest = quality.manifest
            _keep_takes(feats, quality.kept_ids)
            splits = _splits(cfg, manifest)
        claim_run_dir(cfg, run_dir, splits)  # a shared folder: same config and splits
        write_manifest(manifest, run_dir / "manifest.parquet")
        write_quarantine(manifest.quarantined, run_dir / QUARANTINE_FILE,
                         n_candidates=n_candidates, rule_breaks=quality.breaks,
                         criteria=quality.criteria)
    except BaseException:
        if fresh:
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing trained yet: leave no husk
        raise
    return run_cv(cfg, run_dir, store=FeatureStore(feats.index_path), splits=splits,
                  audio_stats=feats.audio_stats_path, profile=profile, progress=progress,
                  console=console, folds=folds, resume=not fresh)


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
    folder = open_run_dir(run_dir)
    clean_temp_files(folder.run_dir)
    store = FeatureStore(folder.feature_index)
    return run_cv(folder.cfg, folder.run_dir, store=store, splits=folder.splits,
                  audio_stats=folder.audio_stats, profile=profile_of(folder.run_dir),
                  progress=progress, console=console, resume=True)
