"""The run folder and the data root, spelled once.

Every file name a run folder holds, the per-(mode, fold) shard layout and the default tag
registry are defined here; ``profy`` writes by these names and ``guardrails`` reads by
them, so a renamed artifact is one edit. A run folder (``runs/experiment_<stamp>/``)::

    config.yaml            the resolved run config      config_hash   its content hash
    splits.parquet         fold x take x role           manifest.parquet
    complete_results.json  the run's metrics            model_summary.json
    predictions.parquet    epochs.parquet               modality_weights.parquet
    gate_log.parquet       quarantine.json (--skip-bad)
    features/              feature_index.parquet, audio_stats.parquet, normalization
    checkpoints/<mode>_fold<K>.safetensors              confusion/
    folds/<mode>_fold<K>/  one shard: the tables above + result.json (written last)
    .claim, .claim.done    who created config, hash and splits (jobs sharing the folder)
    onnx/                  exported graphs (``profy export``)

and its parent folder (``runs/``) holds the tag registry ``tags.json``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

__all__ = [
    "AUDIO_RELPATH", "AUDIO_STATS_FILE", "CHECKPOINTS_DIR", "CLAIM_DONE_FILE", "CLAIM_FILE",
    "COMPLETE_RESULTS_FILE",
    "CONFIG_FILE", "CONFIG_HASH_FILE", "CONFUSION_DIR", "EPOCHS_FILE", "FEATURES_DIR",
    "FEATURE_INDEX_FILE", "FOLDS_DIR", "GATE_LOG_FILE", "LABELS_FILE", "MANIFEST_FILE",
    "MODALITY_WEIGHTS_FILE", "MODEL_SUMMARY_FILE", "ONNX_DIR", "PREDICTIONS_FILE",
    "QUARANTINE_FILE", "SENSOR_RELPATH", "SHARD_FILES", "SHARD_RESULT_FILE", "SPLITS_FILE",
    "TAGS_FILE", "checkpoint_folds", "checkpoint_name", "default_registry", "onnx_folds",
    "onnx_name", "run_checkpoints", "shard_dir",
]

# --- the run folder -------------------------------------------------------------------
CONFIG_FILE = "config.yaml"
CONFIG_HASH_FILE = "config_hash"
SPLITS_FILE = "splits.parquet"
MANIFEST_FILE = "manifest.parquet"
COMPLETE_RESULTS_FILE = "complete_results.json"
MODEL_SUMMARY_FILE = "model_summary.json"
PREDICTIONS_FILE = "predictions.parquet"
EPOCHS_FILE = "epochs.parquet"
MODALITY_WEIGHTS_FILE = "modality_weights.parquet"
GATE_LOG_FILE = "gate_log.parquet"
QUARANTINE_FILE = "quarantine.json"
FEATURES_DIR = "features"
FEATURE_INDEX_FILE = "feature_index.parquet"
AUDIO_STATS_FILE = "audio_stats.parquet"
CHECKPOINTS_DIR = "checkpoints"
CONFUSION_DIR = "confusion"
FOLDS_DIR = "folds"
ONNX_DIR = "onnx"
SHARD_RESULT_FILE = "result.json"  # a shard's completion marker: written last
# The run folder's claim (profy.training._claim): the first job creates CLAIM_FILE
# exclusively, writes config, hash and splits, then CLAIM_DONE_FILE; the others wait for it.
CLAIM_FILE = ".claim"
CLAIM_DONE_FILE = ".claim.done"
# The per-(mode, fold) tables a shard holds and the run merges (multimodal adds weights).
SHARD_FILES = (PREDICTIONS_FILE, EPOCHS_FILE, MODALITY_WEIGHTS_FILE, GATE_LOG_FILE)

# --- beside the runs ------------------------------------------------------------------
TAGS_FILE = "tags.json"  # the runs folder's semantic-tag registry

# --- the data root (real layout: <root>/labels.csv, <root>/<playdata_id>/files/...) -----
LABELS_FILE = "labels.csv"
AUDIO_RELPATH = PurePosixPath("files/sound/sound_raw.wav")
SENSOR_RELPATH = PurePosixPath("files/hackkey/hackkey.csv")


def shard_dir(run_dir: str | Path, mode: str, fold: int) -> Path:
    """``run_dir/folds/<mode>_fold<K>``: one (mode, fold)'s shard."""
    return Path(run_dir) / FOLDS_DIR / f"{mode}_fold{int(fold)}"


def checkpoint_name(mode: str, fold: int) -> str:
    """File name of one mode's fold checkpoint inside ``checkpoints/``."""
    return f"{mode}_fold{int(fold)}.safetensors"


def run_checkpoints(run_dir: str | Path) -> dict[str, tuple[int, ...]]:
    """``{mode: folds}`` of the checkpoints in ``run_dir/checkpoints`` (folds ascending;
    files not named by :func:`checkpoint_name` are ignored)."""
    found: dict[str, list[int]] = {}
    for path in sorted((Path(run_dir) / CHECKPOINTS_DIR).glob("*_fold*.safetensors")):
        mode, fold = path.stem.rsplit("_fold", 1)
        if fold.isdigit() and checkpoint_name(mode, int(fold)) == path.name:
            found.setdefault(mode, []).append(int(fold))
    return {mode: tuple(sorted(folds)) for mode, folds in sorted(found.items())}


def checkpoint_folds(run_dir: str | Path, mode: str) -> tuple[int, ...]:
    """The folds of ``mode`` with a checkpoint in ``run_dir/checkpoints``, ascending."""
    return run_checkpoints(run_dir).get(mode, ())


def onnx_name(mode: str, fold: int) -> str:
    """File name of one mode's fold ONNX export inside ``onnx/`` (``<mode>_fold<K>.onnx``)."""
    return f"{mode}_fold{int(fold)}.onnx"


def onnx_folds(run_dir: str | Path, mode: str) -> tuple[int, ...]:
    """The folds of ``mode`` with an ONNX export in ``run_dir/onnx``, ascending."""
    folds = []
    for path in (Path(run_dir) / ONNX_DIR).glob(f"{mode}_fold*.onnx"):
        fold = path.stem.rsplit("_fold", 1)[1]
        if fold.isdigit() and path.name == onnx_name(mode, int(fold)):
            folds.append(int(fold))
    return tuple(sorted(folds))


def default_registry(run_dir: str | Path) -> Path:
    """``RUN/../tags.json``: the registry of the runs folder holding ``run_dir``."""
    return Path(run_dir).resolve().parent / TAGS_FILE
