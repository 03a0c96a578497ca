"""One (mode, fold): build the model, train it, evaluate it on the held-out takes, and
write its shard, checkpoint and confusion matrix into the run folder.

Each (mode, fold) is seeded from ``(seed, mode, fold)`` alone (:func:`seed_for`), so its
result does not depend on what ran before it: a resumed run or a fold trained by another
job gives the same bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from profy.config import RunConfig, config_hash
from profy.contract.layout import (
    EPOCHS_FILE,
    GATE_LOG_FILE,
    MODALITY_WEIGHTS_FILE,
    PREDICTIONS_FILE,
)
from profy.contract.schemas import (
    EPOCHS_SCHEMA,
    MODALITY_WEIGHTS_SCHEMA,
    PREDICTIONS_SCHEMA,
    QUALITY_FIELDS,
)
from profy.features import TimeMaskAugment, file_sha256
from profy.training._checkpoints import save_checkpoint
from profy.training._data import FoldInputs
from profy.training._loop import EpochStats, FoldOutcome, Predictions, predict, train_fold
from profy.training._run_folder import RunFolder
from profy.training._telemetry import GateRecorder, RunLog

__all__ = ["FoldRun", "log_fold", "seed_for", "train_one"]


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

    @classmethod
    def from_result(cls, result: dict[str, Any]) -> FoldRun:
        """From a finished shard's ``result.json``."""
        return cls(mode=result["mode"], fold=int(result["fold"]),
                   macro_f1=float(result["test_macro_f1"]),
                   accuracy=float(result["test_accuracy"]), kept_epoch=int(result["kept_epoch"]),
                   best_epoch=int(result["best_epoch"]), epochs_run=int(result["epochs_run"]),
                   seconds=float(result["seconds"]), n_train=int(result["n_train"]),
                   n_val=int(result["n_val"]), n_test=int(result["n_test"]))


def seed_for(seed: int, mode: str, fold: int) -> int:
    """Seed of one (mode, fold): independent of the order the pairs run in."""
    digest = hashlib.sha256(f"{seed}:{mode}:{fold}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


@dataclass
class _Scores:
    """Held-out predictions of one (mode, fold) and their scores."""

    pred: Predictions
    y: np.ndarray  # (N,) true labels
    f1: float
    accuracy: float


def _fit(cfg: RunConfig, mode: str, fold: int, parts: dict[str, FoldInputs],
         device: torch.device, log: RunLog, progress: Any
         ) -> tuple[Any, FoldOutcome, GateRecorder | None, int]:
    """Seed, build and train the model; returns it, the outcome, gate samples, the seed."""
    from profy.models import UnifiedAttentionModel

    seed = seed_for(cfg.train.seed, mode, fold)
    torch.manual_seed(seed)  # weights, dropout and modality dropout draw from it
    model = UnifiedAttentionModel(cfg.model, mode).to(device)
    augment = None
    if cfg.train.spec_augment and mode != "sensor":
        augment = TimeMaskAugment.from_config(cfg.features, seed=seed + 2).train()
    gates = GateRecorder(fold, parts["train"].sample_ids, log) if mode == "multimodal" \
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
    return model, outcome, gates, seed


def _score(model: Any, test: FoldInputs, mode: str, batch_size: int) -> _Scores:
    from profy.evaluation.metrics import macro_f1_score

    pred = predict(model, test, mode=mode, batch_size=batch_size)
    y = test.labels.cpu().numpy()
    return _Scores(pred=pred, y=y, f1=float(macro_f1_score(y, pred.prediction, labels=[0, 1])),
                   accuracy=float((pred.prediction == y).mean()))


def _shard_tables(mode: str, fold: int, test: FoldInputs, s: _Scores, outcome: FoldOutcome,
                  gates: GateRecorder | None) -> dict[str, pa.Table]:
    """The shard's predictions and epochs (and, multimodal, weights and gate log) tables."""
    pred, y, n = s.pred, s.y, len(s.y)
    tables = {PREDICTIONS_FILE: pa.Table.from_pydict({
        "mode": [mode] * n, "fold": [fold] * n, "sample_id": list(test.sample_ids),
        "label": y.tolist(), "probability": pred.probability.tolist(),
        "prediction": pred.prediction.tolist()}, schema=PREDICTIONS_SCHEMA)}
    tables[EPOCHS_FILE] = pa.Table.from_pylist(
        [{"mode": mode, "fold": fold, **e.__dict__} for e in outcome.history],
        schema=EPOCHS_SCHEMA)
    if gates is not None:  # multimodal
        q = test.quality.double().cpu().numpy()
        tables[MODALITY_WEIGHTS_FILE] = pa.Table.from_pydict({
            "fold": [fold] * n, "sample_id": list(test.sample_ids),
            "sensor_weight": pred.weights[:, 0].double().tolist(),
            "audio_weight": pred.weights[:, 1].double().tolist(),
            **{name: q[:, j].tolist() for j, name in enumerate(QUALITY_FIELDS)},
            "gate_temperature": pred.temperature.double().tolist(),
            "correct": (pred.prediction == y).tolist()}, schema=MODALITY_WEIGHTS_SCHEMA)
        tables[GATE_LOG_FILE] = gates.table()
    return tables


def _metrics(cfg: RunConfig, outcome: FoldOutcome, s: _Scores) -> dict[str, Any]:
    """The kept epoch's metrics, as the checkpoint and ``result.json`` record them."""
    kept = outcome.history[outcome.kept_epoch - 1]
    return {"kept_epoch": outcome.kept_epoch, "best_epoch": outcome.best_epoch,
            "epochs_run": len(outcome.history), "checkpoint_policy": cfg.train.checkpoint,
            "val_macro_f1": kept.val_macro_f1, "val_loss": kept.val_loss,
            "test_macro_f1": s.f1, "test_accuracy": s.accuracy}


def train_one(cfg: RunConfig, folder: RunFolder, mode: str, fold: int,
              parts: dict[str, FoldInputs], device: torch.device, log: RunLog,
              progress: Any) -> FoldRun:
    """Train, evaluate and write one (mode, fold) shard plus its checkpoint and confusion.

    Args:
        parts: the fold's normalized ``train``, ``val`` and ``test`` inputs on ``device``.
        progress: a rich ``Progress`` (one task per (mode, fold)).
    """
    from profy.evaluation.metrics import confusion_matrix

    model, outcome, gates, seed = _fit(cfg, mode, fold, parts, device, log, progress)
    test = parts["test"]
    scores = _score(model, test, mode, cfg.train.batch_size)
    tables = _shard_tables(mode, fold, test, scores, outcome, gates)
    metrics = _metrics(cfg, outcome, scores)
    summary = model.summary()
    ckpt = save_checkpoint(folder.checkpoint_path(mode, fold), outcome.state_dict, config=cfg,
                           mode=mode, fold=fold, metrics=metrics, summary=summary)
    folder.write_confusion(mode, fold, confusion_matrix(scores.y, scores.pred.prediction,
                                                        labels=[0, 1]))
    n = {k: len(v) for k, v in parts.items()}
    folder.write_shard(mode, fold, tables=tables, result={
        **metrics, "seconds": outcome.seconds, "stopped_early": outcome.stopped_early,
        "n_train": n["train"], "n_val": n["val"], "n_test": n["test"], "seed": seed,
        "config_hash": config_hash(cfg), "device": str(device),
        "checkpoint": str(ckpt.relative_to(folder.run_dir)),
        "checkpoint_sha256": file_sha256(ckpt), "model_summary": summary})
    run = FoldRun(mode=mode, fold=fold, macro_f1=scores.f1, accuracy=scores.accuracy,
                  kept_epoch=outcome.kept_epoch, best_epoch=outcome.best_epoch,
                  epochs_run=len(outcome.history), seconds=outcome.seconds,
                  n_train=n["train"], n_val=n["val"], n_test=n["test"])
    # after the shard: a process killed in between leaves a finished shard and no FOLD
    # line, which the next process sharing the folder logs from the shard (run_cv)
    log_fold(log, run, ckpt.relative_to(folder.run_dir).as_posix())
    log.flush()
    return run


def log_fold(log: RunLog, run: FoldRun, checkpoint: str, **extra: Any) -> None:
    """The ``FOLD`` line of a trained (mode, fold) (plus a warning if it kept not the best
    epoch); not flushed. ``extra`` fields go at the end of the line."""
    if run.kept_epoch != run.best_epoch:
        log.warn("kept weights are not the best val epoch (train.checkpoint=last)",
                 mode=run.mode, fold=run.fold, kept_epoch=run.kept_epoch,
                 best_epoch=run.best_epoch)
    log.line("FOLD", mode=run.mode, fold=run.fold, kept_epoch=run.kept_epoch,
             best_epoch=run.best_epoch, epochs_run=run.epochs_run, test_macro_f1=run.macro_f1,
             test_accuracy=run.accuracy, seconds=run.seconds, checkpoint=checkpoint, **extra)
