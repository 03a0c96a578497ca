"""Profy's training layer: one fold, cross-validation over modes x folds, the run folder,
telemetry.

    from profy.config import load_profile
    from profy.training import train

    result = train(load_profile("mm-audiofix"), "corpus/", "runs/", progress=True)
    result.run_dir        # runs/experiment_YYYYMMDD_HHMMSS
    result.table()        # macro F1 mean, std and per fold, per mode

Modules, by what happens:

- ``_train``: ``profy train`` / ``--resume`` (manifest, splits, features, then run_cv).
- ``_cv``: :func:`run_cv`, the cross-validation over modes x folds, in named steps.
- ``_fold``: one (mode, fold): train, evaluate, write its shard and checkpoint.
- ``_loop``, ``_data``: the epoch loop (:func:`train_fold`) and the fold's tensors.
- ``_run_folder``: :class:`RunFolder` (create, claim, open, saved config, shard paths,
  write shard, missing, merge/collect, clean); ``_claim`` its atomic claim for jobs that
  share a folder; ``_merge`` the shard merge; ``_folder_api`` function forms.
- ``_telemetry``: ``training.log``, run metadata (built once), gate and weight summaries.
- ``_checkpoints``: safetensors checkpoints (:func:`load_checkpoint`) and semantic tags
  (:func:`register_tag`, :func:`resolve_tag`); ``_ablate``, ``_report``.
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
from profy.training._cv import CVResult, resolve_device, run_cv
from profy.training._data import (
    CorpusArrays,
    FoldInputs,
    batch_order,
    class_weights,
    load_corpus,
    normalize_fold,
)
from profy.training._fold import FoldRun
from profy.training._folder_api import (
    claim_run_dir,
    clean_temp_files,
    collect,
    collect_run,
    create_run_dir,
    missing_shards,
    open_run_dir,
    read_shard_result,
    shard_dir,
)
from profy.training._loop import EpochStats, FoldOutcome, Predictions, evaluate, predict, train_fold
from profy.training._report import render_cv_result
from profy.training._run_folder import RunFolder
from profy.training._telemetry import (
    GateRecorder,
    RunLog,
    git_head,
    library_versions,
    modality_weight_summary,
)
from profy.training._train import resume, train

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
