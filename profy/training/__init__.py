"""Profy's training layer: one fold, cross-validation over modes x folds, telemetry.

    from profy.config import load_profile
    from profy.training import train

    result = train(load_profile("mm-audiofix"), "corpus/", "runs/", progress=True)
    result.run_dir        # runs/experiment_YYYYMMDD_HHMMSS
    result.table()        # macro F1 mean, std and per fold, per mode

:func:`run_cv` is the same on features already computed; :func:`train_fold` trains one
model with early stopping and keeps the best epoch's weights; checkpoints are
safetensors files with their config and metrics (:func:`load_checkpoint`), named by
semantic tags in a registry (:func:`register_tag`, :func:`resolve_tag`).
"""

from profy.training._ablate import ablate
from profy.training._checkpoints import (
    CHECKPOINT_FORMAT,
    Checkpoint,
    TagEntry,
    checkpoint_name,
    list_tags,
    load_checkpoint,
    register_tag,
    resolve_tag,
    save_checkpoint,
)
from profy.training._data import (
    CorpusArrays,
    FoldInputs,
    batch_order,
    class_weights,
    load_corpus,
    normalize_fold,
)
from profy.training._loop import EpochStats, FoldOutcome, Predictions, evaluate, predict, train_fold
from profy.training._report import render_cv_result
from profy.training._resume import (
    RunFolder,
    collect,
    missing_shards,
    open_run_dir,
    resume,
    train,
)
from profy.training._run import CVResult, FoldRun, create_run_dir, resolve_device, run_cv
from profy.training._shards import (
    claim_run_dir,
    clean_temp_files,
    collect_run,
    read_shard_result,
    shard_dir,
)
from profy.training._telemetry import (
    GateRecorder,
    RunLog,
    git_head,
    library_versions,
    modality_weight_summary,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "CVResult",
    "Checkpoint",
    "CorpusArrays",
    "EpochStats",
    "FoldInputs",
    "FoldOutcome",
    "FoldRun",
    "GateRecorder",
    "Predictions",
    "RunLog",
    "TagEntry",
    "batch_order",
    "RunFolder",
    "ablate",
    "checkpoint_name",
    "claim_run_dir",
    "clean_temp_files",
    "collect",
    "class_weights",
    "collect_run",
    "create_run_dir",
    "evaluate",
    "git_head",
    "library_versions",
    "list_tags",
    "load_checkpoint",
    "load_corpus",
    "missing_shards",
    "modality_weight_summary",
    "normalize_fold",
    "open_run_dir",
    "predict",
    "read_shard_result",
    "register_tag",
    "render_cv_result",
    "resolve_device",
    "resolve_tag",
    "resume",
    "run_cv",
    "save_checkpoint",
    "shard_dir",
    "train",
    "train_fold",
]
