"""Cross-validation over modes x folds into one run folder (DESIGN.md section 3).

``profy train`` (:func:`profy.training.train`) makes splits and features, then calls
:func:`run_cv`. :func:`run_cv` fits each fold's normalization on its ``train`` takes
(``norm_stats/fold_K.json`` in the run folder), normalizes the fold's inputs once, and
trains every mode on them; each (mode, fold) is seeded from ``(seed, mode, fold)`` alone,
so its result does not depend on what ran before it, and is written as its own shard
(:mod:`profy.training._shards`) before the run-level files are merged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from profy.config import RunConfig, config_hash, to_dict
from profy.contract.atomic import atomic_write_bytes
from profy.contract.schemas import (
    EPOCHS_SCHEMA,
    MODALITY_WEIGHTS_SCHEMA,
    MODES,
    PREDICTIONS_SCHEMA,
    QUALITY_FIELDS,
    STD_DDOF,
)
from profy.errors import ConfigError
from profy.features import FeatureStore, NormStats, TimeMaskAugment, file_sha256
from profy.training import _telemetry as tel
from profy.training._checkpoints import checkpoint_name, save_checkpoint
from profy.training._data import FoldInputs, load_corpus, normalize_fold
from profy.training._loop import EpochStats, predict, train_fold
from profy.training._shards import (
    claim_run_dir,
    clean_temp_files,
    collect_run,
    read_shard_result,
    select_folds,
    shard_dir,
    write_confusion,
    write_shard,
)

__all__ = ["CVResult", "FoldRun", "create_run_dir", "resolve_device", "run_cv"]


@dataclass(frozen=True)
class FoldRun:
    """Summary of one trained (mode, fold)."""

    mode: str
    fold: int
    macro_f1: float  # on the fold's held-out (test) takes
    accuracy: float
    kept_epoch: int
    best_epoch: int
    epochs_run: int
    seconds: float
    n_train: int
    n_val: int
    n_test: int


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


def create_run_dir(runs_dir: str | Path, *, now: dt.datetime | None = None) -> Path:
    """Create ``runs_dir/experiment_YYYYMMDD_HHMMSS`` (``_2``, ``_3``... if taken)."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = (now or dt.datetime.now()).strftime("experiment_%Y%m%d_%H%M%S")
    for n in range(1, 1000):
        path = runs_dir / (stamp if n == 1 else f"{stamp}_{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"{runs_dir}: cannot find a free run folder name for {stamp}")


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without CUDA is an error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but CUDA is not available")
    return torch.device("cuda" if name != "cpu" and torch.cuda.is_available() else "cpu")


def _seed_for(seed: int, mode: str, fold: int) -> int:
    """Seed of one (mode, fold): independent of the order the pairs run in."""
    digest = hashlib.sha256(f"{seed}:{mode}:{fold}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


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


def _log_header(log: tel.RunLog, cfg: RunConfig, run_dir: Path, splits: pd.DataFrame,
                device: torch.device, profile: str | None) -> dict[str, Any]:
    head, dirty = tel.git_head()
    versions = tel.library_versions()
    log.line("RUN", id=run_dir.name, started=tel.utc_now())
    log.line("CONFIG", hash=config_hash(cfg), profile=profile or "(none)", file="config.yaml")
    log.line("GIT", head=head, **({} if dirty is None else {"dirty": dirty}))
    log.line("VERSIONS", **versions)
    log.line("SEED", seed=cfg.train.seed, deterministic=cfg.train.deterministic,
             threads=cfg.train.num_threads)
    log.line("DEVICE", device=str(device), cuda_available=torch.cuda.is_available())
    takes = splits.drop_duplicates("sample_id")
    counts = takes["label"].value_counts()
    log.line("DATA", takes=len(takes), players=takes["player_id"].nunique(),
             pro=int(counts.get("pro", 0)), amateur=int(counts.get("amateur", 0)),
             folds=cfg.train.n_folds, modes=",".join(cfg.train.modes))
    for fold, part in splits.groupby("fold"):
        roles = part["role"].value_counts()
        train_labels = part.loc[part["role"] == "train", "label"].value_counts()
        log.line("SPLIT", fold=int(fold), train=int(roles.get("train", 0)),
                 val=int(roles.get("val", 0)), test=int(roles.get("test", 0)),
                 train_pro=int(train_labels.get("pro", 0)),
                 train_amateur=int(train_labels.get("amateur", 0)))
    return {"run_id": run_dir.name, "config": to_dict(cfg), "config_hash": config_hash(cfg),
            "profile": profile, "git_hash": head, "git_dirty": dirty, "date": tel.utc_now(),
            "versions": versions, "seed": cfg.train.seed, "device": str(device)}


def _progress(enabled: bool, console: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                    disable=not enabled, console=console, transient=False)


def _train_one(cfg: RunConfig, run_dir: Path, mode: str, fold: int, parts: dict[str, FoldInputs],
               device: torch.device, log: tel.RunLog, progress: Any) -> FoldRun:
    """Train, evaluate and write one (mode, fold) shard plus its checkpoint and confusion."""
    from profy.evaluation.metrics import confusion_matrix, macro_f1_score
    from profy.models import UnifiedAttentionModel

    seed = _seed_for(cfg.train.seed, mode, fold)
    torch.manual_seed(seed)  # weights, dropout and modality dropout draw from it
    model = UnifiedAttentionModel(cfg.model, mode).to(device)
    augment = None
    if cfg.train.spec_augment and mode != "sensor":
        augment = TimeMaskAugment.from_config(cfg.features, seed=seed + 2).train()
    gates = tel.GateRecorder(fold, parts["train"].sample_ids, log) if mode == "multimodal" \
        else None
    task = progress.add_task(f"{mode:>10} fold {fold}", total=cfg.train.epochs, status="")

    def on_epoch(stats: EpochStats, _model: Any) -> None:
        log.line("EPOCH", mode=mode, fold=fold, epoch=stats.epoch, train_loss=stats.train_loss,
                 val_loss=stats.val_loss, val_macro_f1=stats.val_macro_f1,
                 val_accuracy=stats.val_accuracy, seconds=stats.seconds)
        progress.update(task, advance=1, status=f"val F1 {stats.val_macro_f1:.3f}")

    outcome = train_fold(model, parts["train"], parts["val"], cfg.train, mode=mode, seed=seed,
                         spec_augment=augment, on_gate=gates.hook if gates else None,
                         on_epoch=on_epoch)
    progress.update(task, total=len(outcome.history))
    test = parts["test"]
    pred = predict(model, test, mode=mode, batch_size=cfg.train.batch_size)
    y = test.labels.cpu().numpy()
    f1 = float(macro_f1_score(y, pred.prediction, labels=[0, 1]))
    acc = float((pred.prediction == y).mean())
    tables = {"predictions.parquet": pa.Table.from_pydict({
        "mode": [mode] * len(y), "fold": [fold] * len(y), "sample_id": list(test.sample_ids),
        "label": y.tolist(), "probability": pred.probability.tolist(),
        "prediction": pred.prediction.tolist()}, schema=PREDICTIONS_SCHEMA)}
    tables["epochs.parquet"] = pa.Table.from_pylist(
        [{"mode": mode, "fold": fold, **s.__dict__} for s in outcome.history], schema=EPOCHS_SCHEMA)
    if mode == "multimodal":
        q = test.quality.double().cpu().numpy()
        tables["modality_weights.parquet"] = pa.Table.from_pydict({
            "fold": [fold] * len(y), "sample_id": list(test.sample_ids),
            "sensor_weight": pred.weights[:, 0].double().tolist(),
            "audio_weight": pred.weights[:, 1].double().tolist(),
            **{name: q[:, j].tolist() for j, name in enumerate(QUALITY_FIELDS)},
            "gate_temperature": pred.temperature.double().tolist(),
            "correct": (pred.prediction == y).tolist()}, schema=MODALITY_WEIGHTS_SCHEMA)
        assert gates is not None
        tables["gate_log.parquet"] = gates.table()
    kept = outcome.history[outcome.kept_epoch - 1]
    metrics = {"kept_epoch": outcome.kept_epoch, "best_epoch": outcome.best_epoch,
               "epochs_run": len(outcome.history), "checkpoint_policy": cfg.train.checkpoint,
               "val_macro_f1": kept.val_macro_f1, "val_loss": kept.val_loss,
               "test_macro_f1": f1, "test_accuracy": acc}
    summary = model.summary()
    ckpt = save_checkpoint(run_dir / "checkpoints" / checkpoint_name(mode, fold),
                           outcome.state_dict, config=cfg, mode=mode, fold=fold,
                           metrics=metrics, summary=summary)
    write_confusion(run_dir, mode, fold, confusion_matrix(y, pred.prediction, labels=[0, 1]))
    n = {k: len(v) for k, v in parts.items()}
    write_shard(run_dir, mode, fold, tables=tables, result={
        **metrics, "seconds": outcome.seconds, "stopped_early": outcome.stopped_early,
        "n_train": n["train"], "n_val": n["val"], "n_test": n["test"], "seed": seed,
        "config_hash": config_hash(cfg), "device": str(device),
        "checkpoint": str(ckpt.relative_to(run_dir)), "checkpoint_sha256": file_sha256(ckpt),
        "model_summary": summary})
    if outcome.kept_epoch != outcome.best_epoch:
        log.warn("kept weights are not the best val epoch (train.checkpoint=last)", mode=mode,
                 fold=fold, kept_epoch=outcome.kept_epoch, best_epoch=outcome.best_epoch)
    log.line("FOLD", mode=mode, fold=fold, kept_epoch=outcome.kept_epoch,
             best_epoch=outcome.best_epoch, epochs_run=len(outcome.history),
             test_macro_f1=f1, test_accuracy=acc, seconds=outcome.seconds,
             checkpoint=ckpt.relative_to(run_dir))
    log.flush()
    return FoldRun(mode=mode, fold=fold, macro_f1=f1, accuracy=acc,
                   kept_epoch=outcome.kept_epoch, best_epoch=outcome.best_epoch,
                   epochs_run=len(outcome.history), seconds=outcome.seconds,
                   n_train=n["train"], n_val=n["val"], n_test=n["test"])


def _finished(result: dict[str, Any]) -> FoldRun:
    """A :class:`FoldRun` from a finished shard's ``result.json``."""
    return FoldRun(mode=result["mode"], fold=int(result["fold"]),
                   macro_f1=float(result["test_macro_f1"]),
                   accuracy=float(result["test_accuracy"]), kept_epoch=int(result["kept_epoch"]),
                   best_epoch=int(result["best_epoch"]), epochs_run=int(result["epochs_run"]),
                   seconds=float(result["seconds"]), n_train=int(result["n_train"]),
                   n_val=int(result["n_val"]), n_test=int(result["n_test"]))


def run_cv(cfg: RunConfig, run_dir: str | Path, *, store: FeatureStore, splits: pd.DataFrame,
           audio_stats: str | Path | None = None, profile: str | None = None,
           progress: bool = False, console: Any = None, folds: Sequence[int] | None = None,
           resume: bool = False) -> CVResult:
    """Train every mode on every fold into ``run_dir`` and write the run-level artifacts.

    With ``resume`` (or ``folds``) the folder may already hold this run: its config and
    splits must match (:func:`~profy.training._resume.claim_run_dir`), finished shards
    are kept, not retrained, and ``.*.tmp`` leftovers of a killed process are removed.
    With ``folds``, only those folds train (all modes), logged to
    ``logs/training_fold<K...>.log``, and the run-level files are left to ``profy collect``
    (``CVResult.results`` is then empty).

    Args:
        cfg: the resolved run config (its ``features`` must be the store's).
        run_dir: an empty run folder (see :func:`create_run_dir`).
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
    from profy.features import fit_fold_norm_stats

    start = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    train_cfg = cfg.train
    all_folds = sorted(int(k) for k in splits["fold"].unique())
    if all_folds != list(range(train_cfg.n_folds)):
        raise ConfigError(f"splits have folds {all_folds}, train.n_folds is {train_cfg.n_folds}")
    todo = select_folds(train_cfg.n_folds, folds)
    shared = resume or folds is not None
    if shared:
        clean_temp_files(run_dir)
    claim_run_dir(cfg, run_dir, splits)  # writes config and splits, or checks they match
    log_path = run_dir / ("training.log" if folds is None else
                          f"logs/training_fold{'_'.join(map(str, todo))}.log")
    log = tel.RunLog(log_path)
    if shared and log_path.is_file():  # keep what the interrupted process logged
        log.lines = log_path.read_text(encoding="utf-8").splitlines()
        log.line("RESUME", started=tel.utc_now(), folds=",".join(map(str, todo)))
    device = resolve_device(train_cfg.device)
    run_meta = _log_header(log, cfg, run_dir, splits, device, profile)
    ids = sorted(splits["sample_id"].unique())
    if audio_stats is not None:
        atomic_write_bytes(run_dir / "audio_stats.parquet", Path(audio_stats).read_bytes())
        stats_frame = pq.read_table(audio_stats).to_pandas()
        log.line("AUDIO_STATS", **tel.audio_stats_summary(
            stats_frame[stats_frame["sample_id"].isin(ids)]), file="audio_stats.parquet")
    else:
        log.warn("no audio_stats.parquet given; audio stats are not summarised")
    norm_paths = {k: run_dir / "norm_stats" / f"fold_{k}.json" for k in all_folds}
    if not (shared and all(p.is_file() for p in norm_paths.values())):
        norm_paths = fit_fold_norm_stats(store, splits, run_dir,
                                         all_takes=train_cfg.norm_fit == "all")
    for fold, path in sorted(norm_paths.items()):
        stats = NormStats.from_json(path, n_mels=cfg.features.n_mels)
        log.line("NORM_REF", fold=fold, path=path.relative_to(run_dir).as_posix(),
                 sha256=file_sha256(path), fit=train_cfg.norm_fit, n_samples=stats.n_samples,
                 feature_config_hash=stats.feature_config_hash,
                 audio=cfg.features.normalization)
    if train_cfg.norm_fit == "all":
        log.warn("LEGACY normalization fitted on all takes, held-out ones included "
                 "(train.norm_fit=all)")
    log.flush()
    corpus = load_corpus(store, ids, features=cfg.features)
    labels = splits.drop_duplicates("sample_id").set_index("sample_id")["label"]
    modes = [m for m in MODES if m in train_cfg.modes]
    done = {(m, k) for m in modes for k in todo
            if shared and (shard_dir(run_dir, m, k) / "result.json").is_file()}
    fold_runs = [_finished(read_shard_result(run_dir, m, k)) for m, k in sorted(done)]
    for mode, fold in sorted(done):
        log.line("SKIP", mode=mode, fold=fold, reason="shard finished earlier")
    with _torch_settings(train_cfg.num_threads, train_cfg.deterministic), \
            _progress(progress, console) as bar:
        for fold in todo:
            if all((m, fold) in done for m in modes):
                continue
            stats = NormStats.from_json(norm_paths[fold], n_mels=cfg.features.n_mels)
            inputs = normalize_fold(corpus, stats, labels, features=cfg.features)
            part = splits[splits["fold"] == fold].set_index("sample_id")["role"]
            rows = {role: [i for i, s in enumerate(inputs.sample_ids) if part[s] == role]
                    for role in ("train", "val", "test")}
            parts = {role: inputs.subset(r).to(device) for role, r in rows.items()}
            del inputs
            for mode in [m for m in modes if (m, fold) not in done]:
                fold_runs.append(_train_one(cfg, run_dir, mode, fold, parts, device, log, bar))
    ordered = tuple(sorted(fold_runs, key=lambda f: (train_cfg.modes.index(f.mode), f.fold)))
    if folds is not None:  # one job of several: `profy collect` merges once all are in
        seconds = time.perf_counter() - start
        log.line("DONE", seconds=seconds, folds=",".join(map(str, todo)),
                 next="profy collect")
        log.flush()
        return CVResult(run_dir=run_dir.resolve(), results={}, folds=ordered, seconds=seconds)
    run_meta["fold_seconds"] = {f"{f.mode}_fold{f.fold}": f.seconds for f in fold_runs}
    results = collect_run(run_dir, modes=train_cfg.modes, n_folds=train_cfg.n_folds,
                          run_meta=run_meta)  # per-piece slices from the run's splits
    _log_summary(log, run_dir, fold_runs, train_cfg.modes)
    for warning in results["warnings"]:  # std(F1) > 0.05, undefined per-class scores, ...
        log.warn(warning, source="complete_results.json")
    seconds = time.perf_counter() - start
    log.line("DONE", seconds=seconds, results="complete_results.json")
    log.flush()
    return CVResult(run_dir=run_dir.resolve(), results=results, folds=ordered, seconds=seconds)


def _log_summary(log: tel.RunLog, run_dir: Path, fold_runs: list[FoldRun],
                 modes: tuple[str, ...]) -> None:
    weights = pq.read_table(run_dir / "modality_weights.parquet").to_pandas()
    for row in tel.modality_weight_summary(weights):
        log.line("MODALITY_WEIGHTS", **row)
    if "multimodal" in modes and not weights.empty:
        share = float((weights["sensor_weight"] >= 0.5).mean())
        if share < 0.8:
            log.warn("sensor weight >= 0.5 for less than 80% of held-out takes",
                     frac_sensor_ge_0_5=share)
    for mode in modes:
        f1 = np.array([f.macro_f1 for f in fold_runs if f.mode == mode])
        log.line("RESULT", mode=mode, macro_f1_mean=float(f1.mean()),
                 macro_f1_std=float(f1.std(ddof=STD_DDOF)),
                 per_fold=",".join(f"{v:.4f}" for v in f1),
                 seconds=float(sum(f.seconds for f in fold_runs if f.mode == mode)))
