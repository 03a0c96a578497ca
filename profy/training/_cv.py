"""Cross-validation over modes x folds into one run folder (DESIGN.md section 3).

``profy train`` (:func:`profy.training.train`) makes splits and features, then calls
:func:`run_cv`. :func:`run_cv` claims the run folder, fits each fold's normalization on its
``train`` takes (``norm_stats/fold_K.json``), normalizes the fold's inputs once, and trains
every mode on them (:func:`profy.training._fold.train_one`, one shard each) before the
run-level files are merged (:meth:`RunFolder.merge`).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import torch

from profy.config import RunConfig
from profy.contract.atomic import atomic_write_bytes
from profy.contract.layout import AUDIO_STATS_FILE, COMPLETE_RESULTS_FILE, MODALITY_WEIGHTS_FILE
from profy.contract.schemas import MODES, STD_DDOF
from profy.errors import ConfigError
from profy.features import FeatureStore, NormStats, file_sha256
from profy.training._data import CorpusArrays, FoldInputs, load_corpus, normalize_fold
from profy.training._fold import FoldRun, log_fold, train_one
from profy.training._run_folder import LOG_FILE, RunFolder, fold_log_name
from profy.training._telemetry import (
    RunLog,
    audio_stats_summary,
    log_run_header,
    log_run_summary,
    run_metadata,
    utc_now,
)

__all__ = ["CVResult", "resolve_device", "run_cv", "select_folds"]

_FOLD_LINE = re.compile(r"FOLD mode=(\S+) fold=(\d+) ")  # as log_fold writes it


@dataclass(frozen=True)
class CVResult:
    """What a cross-validation run produced."""

    run_dir: Path
    results: dict[str, Any]  # the complete_results.json object
    folds: tuple[FoldRun, ...]
    seconds: float

    def table(self) -> pd.DataFrame:
        """Per mode: macro F1 mean, std (population, over folds), per-fold list, seconds."""
        frame = pd.DataFrame([f.__dict__ for f in self.folds])
        rows = []
        for mode, part in frame.groupby("mode", sort=False):
            f1 = part.sort_values("fold")["macro_f1"].to_numpy()
            rows.append({"mode": mode, "macro_f1_mean": float(f1.mean()),
                         "macro_f1_std": float(f1.std(ddof=STD_DDOF)), "per_fold": f1.tolist(),
                         "seconds_per_fold": part.sort_values("fold")["seconds"].tolist()})
        return pd.DataFrame(rows)


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without CUDA is an error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but CUDA is not available")
    return torch.device("cuda" if name != "cpu" and torch.cuda.is_available() else "cpu")


def select_folds(n_folds: int, folds: Sequence[int] | None) -> list[int]:
    """The folds to train: all, or the requested ones (each in ``0 .. n_folds - 1``)."""
    if folds is None:
        return list(range(n_folds))
    chosen = sorted({int(k) for k in folds})
    bad = [k for k in chosen if not 0 <= k < n_folds]
    if bad or not chosen:
        raise ConfigError(f"fold(s) {bad or '(none)'} out of range 0..{n_folds - 1}")
    return chosen


@contextlib.contextmanager
def _torch_settings(threads: int, deterministic: bool) -> Iterator[None]:
    """Fixed CPU threads and deterministic kernels for the run; restored afterwards."""
    old = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
           torch.is_deterministic_algorithms_warn_only_enabled(),
           torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    torch.set_num_threads(threads)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    finally:
        torch.set_num_threads(old[0])
        torch.use_deterministic_algorithms(old[1], warn_only=old[2])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = old[3], old[4]


def _progress(enabled: bool, console: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                    disable=not enabled, console=console, transient=False)


@dataclass
class _Plan:
    """What one :func:`run_cv` call trains, where it logs, and what was finished before."""

    cfg: RunConfig
    folder: RunFolder
    splits: pd.DataFrame
    todo: list[int]  # folds this call trains
    modes: list[str]  # in MODES order
    shared: bool  # resuming, or one of several jobs: the folder may hold finished shards
    only: bool  # folds were chosen: run-level files are left to `profy collect`
    log: RunLog
    device: torch.device


def _open_log(folder: RunFolder, todo: list[int], only: bool, shared: bool) -> RunLog:
    """``training.log`` (or this job's ``logs/`` file), continuing an interrupted one."""
    path = folder.run_dir / (fold_log_name(todo) if only else LOG_FILE)
    log = RunLog(path)
    if shared and path.is_file():  # keep what the interrupted process logged
        log.lines = path.read_text(encoding="utf-8").splitlines()
        log.line("RESUME", started=utc_now(), folds=",".join(map(str, todo)))
    return log


def _plan(cfg: RunConfig, run_dir: Path, splits: pd.DataFrame, folds: Sequence[int] | None,
          resume: bool) -> _Plan:
    """Check the splits, claim the folder, clean leftovers, open the log."""
    n_folds = cfg.train.n_folds
    all_folds = sorted(int(k) for k in splits["fold"].unique())
    if all_folds != list(range(n_folds)):
        raise ConfigError(f"splits have folds {all_folds}, train.n_folds is {n_folds}")
    todo = select_folds(n_folds, folds)
    shared, only = resume or folds is not None, folds is not None
    folder = RunFolder(run_dir)
    if shared:  # a job sharing the folder removes only its own folds' leftovers
        folder.clean(todo if only else None)
    folder.claim(cfg, splits)  # writes config and splits, or checks they match
    log = _open_log(folder, todo, only, shared)
    return _Plan(cfg=cfg, folder=folder, splits=splits, todo=todo,
                 modes=[m for m in MODES if m in cfg.train.modes], shared=shared, only=only,
                 log=log, device=resolve_device(cfg.train.device))


def _copy_audio_stats(plan: _Plan, audio_stats: str | Path | None) -> None:
    """``audio_stats.parquet`` into the run, summarised on an ``AUDIO_STATS`` line."""
    if audio_stats is None:
        plan.log.warn("no audio_stats.parquet given; audio stats are not summarised")
        return
    atomic_write_bytes(plan.folder.run_dir / AUDIO_STATS_FILE, Path(audio_stats).read_bytes())
    frame = pq.read_table(audio_stats).to_pandas()
    ids = plan.splits["sample_id"].unique()
    plan.log.line("AUDIO_STATS", **audio_stats_summary(frame[frame["sample_id"].isin(ids)]),
                  file=AUDIO_STATS_FILE)


def _norm_stats(plan: _Plan, store: FeatureStore) -> dict[int, Path]:
    """Each fold's normalization stats: fitted now, or (shared folder) the ones there,
    verified: the first job to publish a fold's stats wins, so every job logs its sha256."""
    from profy.features import fit_fold_norm_stats

    cfg, folder = plan.cfg, plan.folder
    paths = fit_fold_norm_stats(store, plan.splits, folder.run_dir,
                                all_takes=cfg.train.norm_fit == "all", keep_existing=plan.shared)
    for fold, path in sorted(paths.items()):
        stats = NormStats.from_json(path, n_mels=cfg.features.n_mels)
        plan.log.line("NORM_REF", fold=fold, path=path.relative_to(folder.run_dir).as_posix(),
                      sha256=file_sha256(path), fit=cfg.train.norm_fit,
                      n_samples=stats.n_samples, feature_config_hash=stats.feature_config_hash,
                      audio=cfg.features.normalization)
    if cfg.train.norm_fit == "all":
        plan.log.warn("LEGACY normalization fitted on all takes, held-out ones included "
                      "(train.norm_fit=all)")
    plan.log.flush()
    return paths


def _finished_earlier(plan: _Plan) -> dict[tuple[str, int], FoldRun]:
    """(mode, fold) pairs of this call whose shard a previous process finished.

    Each gets a ``SKIP`` line, and a ``FOLD`` line rebuilt from its shard if the log has
    none: the previous process can die between finishing the shard and logging it.
    """
    done = {}
    logged = {(m.group(1), int(m.group(2))) for m in map(_FOLD_LINE.match, plan.log.lines) if m}
    for mode, fold in sorted((m, k) for m in plan.modes for k in plan.todo
                             if plan.shared and plan.folder.is_finished(m, k)):
        result = plan.folder.read_result(mode, fold)
        done[mode, fold] = run = FoldRun.from_result(result)
        plan.log.line("SKIP", mode=mode, fold=fold, reason="shard finished earlier")
        if (mode, fold) not in logged:
            log_fold(plan.log, run, result["checkpoint"], source="shard")
    return done


def _fold_parts(plan: _Plan, corpus: CorpusArrays, norm_path: Path, labels: pd.Series,
                fold: int) -> dict[str, FoldInputs]:
    """One fold's inputs, normalized with its stats, split by role, on the device."""
    features = plan.cfg.features
    stats = NormStats.from_json(norm_path, n_mels=features.n_mels)
    inputs = normalize_fold(corpus, stats, labels, features=features)
    role = plan.splits[plan.splits["fold"] == fold].set_index("sample_id")["role"]
    rows = {r: [i for i, s in enumerate(inputs.sample_ids) if role[s] == r]
            for r in ("train", "val", "test")}
    return {r: inputs.subset(idx).to(plan.device) for r, idx in rows.items()}


def _train_folds(plan: _Plan, store: FeatureStore, norm_paths: dict[int, Path],
                 done: Collection[tuple[str, int]], progress: bool, console: Any) -> list[FoldRun]:
    """Train every (mode, fold) of the plan not finished earlier."""
    ids = sorted(plan.splits["sample_id"].unique())
    corpus = load_corpus(store, ids, features=plan.cfg.features)
    labels = plan.splits.drop_duplicates("sample_id").set_index("sample_id")["label"]
    runs = []
    train_cfg = plan.cfg.train
    with _torch_settings(train_cfg.num_threads, train_cfg.deterministic), \
            _progress(progress, console) as bar:
        for fold in plan.todo:
            if all((m, fold) in done for m in plan.modes):
                continue
            parts = _fold_parts(plan, corpus, norm_paths[fold], labels, fold)
            for mode in [m for m in plan.modes if (m, fold) not in done]:
                runs.append(train_one(plan.cfg, plan.folder, mode, fold, parts, plan.device,
                                      plan.log, bar))
    return runs


def _log_summary(plan: _Plan, fold_runs: list[FoldRun]) -> None:
    weights = pq.read_table(plan.folder.run_dir / MODALITY_WEIGHTS_FILE).to_pandas()
    log_run_summary(plan.log, plan.cfg.train.modes, weights,
                    [(f.mode, f.macro_f1, f.seconds) for f in fold_runs])


def _finish(plan: _Plan, meta: dict[str, Any], fold_runs: list[FoldRun]) -> dict[str, Any]:
    """Merge the shards into the run-level files and log the summary (whole runs only)."""
    meta["fold_seconds"] = {f"{f.mode}_fold{f.fold}": f.seconds for f in fold_runs}
    results = plan.folder.merge(run_meta=meta)  # per-piece slices from the run's splits
    _log_summary(plan, fold_runs)
    for warning in results["warnings"]:  # std(F1) > 0.05, undefined per-class scores, ...
        plan.log.warn(warning, source=COMPLETE_RESULTS_FILE)
    return results


def run_cv(cfg: RunConfig, run_dir: str | Path, *, store: FeatureStore, splits: pd.DataFrame,
           audio_stats: str | Path | None = None, profile: str | None = None,
           progress: bool = False, console: Any = None, folds: Sequence[int] | None = None,
           resume: bool = False) -> CVResult:
    """Train every mode on every fold into ``run_dir`` and write the run-level artifacts.

    With ``resume`` (or ``folds``) the folder may already hold this run: its config and
    splits must match (:meth:`RunFolder.claim`), finished shards are kept, not retrained,
    and ``.*.tmp`` leftovers of a killed process are removed (with ``folds``, only those
    folds'). With ``folds``, only those folds train (all modes), logged to
    ``logs/training_fold<K...>.log``, and the run-level files are left to ``profy collect``
    (``CVResult.results`` is then empty).

    Args:
        cfg: the resolved run config (its ``features`` must be the store's).
        run_dir: an empty run folder (see :meth:`RunFolder.create`), or a shared one.
        store: cached features of every take in ``splits``.
        splits: ``splits.parquet`` rows with ``cfg.train.n_folds`` folds.
        audio_stats: ``audio_stats.parquet`` to copy into the run (and summarise in the log).
        profile: the profile name, recorded in the log and results.
        progress: show a rich progress bar per mode and fold.
        folds: train only these folds (separate jobs sharing one run folder).
        resume: continue a run in ``run_dir``, keeping its finished shards.

    Raises:
        ConfigError: the splits have another number of folds than the config, or the
            folder holds another config or other splits.
        FeatureError: features or normalization stats do not match the feature config.
        LeakageError: the splits, or train-only normalization stats, leak.
    """
    start = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    plan = _plan(cfg, run_dir, splits, folds, resume)
    meta = run_metadata(cfg, run_dir.name, profile=profile, device=str(plan.device))
    log_run_header(plan.log, meta, cfg, splits, cuda_available=torch.cuda.is_available())
    _copy_audio_stats(plan, audio_stats)
    norm_paths = _norm_stats(plan, store)
    done = _finished_earlier(plan)
    fold_runs = [done[key] for key in sorted(done)]
    fold_runs += _train_folds(plan, store, norm_paths, done, progress, console)
    ordered = tuple(sorted(fold_runs, key=lambda f: (cfg.train.modes.index(f.mode), f.fold)))
    results = {} if plan.only else _finish(plan, meta, fold_runs)
    seconds = time.perf_counter() - start
    if plan.only:  # one job of several: `profy collect` merges once all are in
        plan.log.line("DONE", seconds=seconds, folds=",".join(map(str, plan.todo)),
                      next="profy collect")
    else:
        plan.log.line("DONE", seconds=seconds, results=COMPLETE_RESULTS_FILE)
    plan.log.flush()
    return CVResult(run_dir=run_dir.resolve(), results=results, folds=ordered, seconds=seconds)
