"""Artifact schemas: the contract between ``profy`` (writes) and ``guardrails`` (reads).

This module imports only pyarrow, so the torch-free ``guardrails`` package can use it.
Each schema lists column names, Arrow types and what the column means; ranges that
a gate or audit enforces are declared beside them in ``RANGES``.

Roles in ``splits.parquet`` (one row per fold and take):

- ``train``: fits the model weights and the normalization statistics of that fold.
- ``val``: the player-grouped early-stopping split carved out of the training side.
- ``test``: the fold's held-out takes, on which every metric, prediction and modality
  weight is reported (the "validation fold" of k-fold cross-validation). Each take is
  ``test`` in exactly one fold.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "AUDIO_STATS_SCHEMA",
    "EPOCHS_SCHEMA",
    "FEATURE_INDEX_SCHEMA",
    "GATE_LOG_SCHEMA",
    "LABELS",
    "LABEL_COLUMNS",
    "MANIFEST_SCHEMA",
    "MODALITY_WEIGHTS_SCHEMA",
    "MODES",
    "PIECE_KINDS",
    "PIECES",
    "PREDICTIONS_SCHEMA",
    "QUALITY_FIELDS",
    "RANGES",
    "ROLES",
    "SCHEMA_VERSION",
    "SPLITS_SCHEMA",
    "STD_DDOF",
    "piece_kind",
]

SCHEMA_VERSION = "1"

# The std of a metric over folds, declared once: population std (numpy's default,
# ``np.std(per_fold, ddof=STD_DDOF)``). profy's results writer and every guardrails gate
# that recomputes a std import this constant; ``complete_results.json`` states it.
STD_DDOF = 0

# The real labels file's header, exactly (one row per rater answer).
LABEL_COLUMNS = (
    "user_id", "playdata_id", "updated_at", "is_answered", "score1", "score2",
    "player_id", "piecetask_name", "player_tag", "preparation",
)
LABELS = ("amateur", "pro")  # index = class id: amateur 0, pro 1 (pro is the positive class)
ROLES = ("train", "val", "test")
PIECE_KINDS = ("scale", "arpeggio")
PIECES = (
    "Scale B-dur", "Scale C-dur", "Scale Des-dur", "Scale Es-dur", "Scale Ges-dur",
    "Scale b-moll", "Scale cis-moll", "Scale es-moll", "Scale fis-moll",
    "Arpeggio As-dur", "Arpeggio D-dur", "Arpeggio F-dur", "Arpeggio b-moll",
    "Arpeggio f-moll", "Arpeggio gis-moll",
)


def piece_kind(piece: str) -> str:
    """Return ``"scale"`` or ``"arpeggio"`` from a piece name like ``"Scale Des-dur"``."""
    head = piece.strip().split(" ", 1)[0].lower()
    if head not in PIECE_KINDS:
        raise ValueError(f"piece name {piece!r} starts with neither 'Scale' nor 'Arpeggio'")
    return head


MANIFEST_SCHEMA = pa.schema([
    pa.field("sample_id", pa.string(), nullable=False),    # playdata_id: one take
    pa.field("player_id", pa.string(), nullable=False),
    pa.field("piece", pa.string(), nullable=False),        # e.g. "Scale Des-dur"
    pa.field("piece_kind", pa.string(), nullable=False),   # scale | arpeggio
    pa.field("label", pa.string(), nullable=False),        # pro | amateur
    pa.field("n_ratings", pa.int32(), nullable=False),     # rater rows behind this take
    pa.field("audio_path", pa.string(), nullable=False),   # relative to the data root
    pa.field("sensor_path", pa.string(), nullable=False),  # relative to the data root
    pa.field("duration_s", pa.float64(), nullable=False),  # audio duration
    pa.field("sample_rate", pa.int32(), nullable=False),   # audio sample rate, Hz
    pa.field("channels", pa.int32(), nullable=False),      # audio channels
    pa.field("sensor_rows", pa.int32(), nullable=False),
    pa.field("sensor_rate_hz", pa.float64(), nullable=False),  # from the timestamps
], metadata={"profy_artifact": "manifest", "schema_version": SCHEMA_VERSION})

SPLITS_SCHEMA = pa.schema([
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("player_id", pa.string(), nullable=False),
    pa.field("piece", pa.string(), nullable=False),
    pa.field("label", pa.string(), nullable=False),
    pa.field("fold", pa.int32(), nullable=False),
    pa.field("role", pa.string(), nullable=False),         # train | val | test
], metadata={"profy_artifact": "splits", "schema_version": SCHEMA_VERSION})

QUALITY_FIELDS = ("snr_db", "nonsilent_ratio", "spectral_flatness", "loudness_db",
                  "clipping_ratio")  # the audio-quality vector, in this order everywhere

AUDIO_STATS_SCHEMA = pa.schema([
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("frames", pa.int32(), nullable=False),           # T, the fixed model length
    pa.field("audio_frames", pa.int32(), nullable=False),     # frames holding real audio
    pa.field("nonzero_frames", pa.int32(), nullable=False),   # log-mel frames not all zero
    pa.field("valid_frames", pa.int32(), nullable=False),     # non-silent frames (the mask)
    pa.field("sensor_frames", pa.int32(), nullable=False),    # frames holding sensor rows
    pa.field("snr_db", pa.float64(), nullable=False),         # SNR proxy: active vs silent
    pa.field("nonsilent_ratio", pa.float64(), nullable=False),
    pa.field("spectral_flatness", pa.float64(), nullable=False),
    pa.field("loudness_db", pa.float64(), nullable=False),    # RMS dBFS of the active part
    pa.field("clipping_ratio", pa.float64(), nullable=False),
    pa.field("peak", pa.float64(), nullable=False),           # max |sample|, original scale
    pa.field("duration_s", pa.float64(), nullable=False),
    pa.field("finite", pa.bool_(), nullable=False),           # every feature value finite
    # recording checks (issue 20, profy.quality): raw waveform and sensor, original scale
    pa.field("dc_offset", pa.float64(), nullable=False),      # mean of the worst channel
    pa.field("true_peak_dbtp", pa.float64(), nullable=False),  # 8x oversampled (BS.1770)
    pa.field("clip_runs", pa.int32(), nullable=False),        # runs >= 3 samples at own max
    pa.field("clip_run_max", pa.int32(), nullable=False),     # longest such run, samples
    pa.field("channel_balance_db", pa.float64(), nullable=False),  # quiet/loud channel RMS
    pa.field("stereo_residual_db", pa.float64(), nullable=False),  # R minus best g*L, vs R
    pa.field("bandwidth_hz", pa.float64(), nullable=False),   # cutoff of the spectrum
    pa.field("noise_floor_db", pa.float64(), nullable=False),  # quietest 5% of 10 ms blocks
    pa.field("lead_silence_s", pa.float64(), nullable=False),  # before the first sound
    pa.field("trail_silence_s", pa.float64(), nullable=False),  # after the last sound
    pa.field("digital_silence_s", pa.float64(), nullable=False),  # exact zeros, anywhere
    pa.field("dropout_s", pa.float64(), nullable=False),      # no sound while a key is down
    pa.field("sync_offset_s", pa.float64(), nullable=True),   # sensor - audio; null: unknown
    pa.field("sync_confidence", pa.float64(), nullable=False),  # 1 - 2nd/1st xcorr peak
    pa.field("fingerprint", pa.binary(), nullable=False),     # Haitsma-Kalker words, <u4
], metadata={"profy_artifact": "audio_stats", "schema_version": SCHEMA_VERSION})

FEATURE_INDEX_SCHEMA = pa.schema([
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("cache_key", pa.string(), nullable=False),       # entry in the feature cache
    pa.field("audio_sha256", pa.string(), nullable=False),
    pa.field("sensor_sha256", pa.string(), nullable=False),
], metadata={"profy_artifact": "feature_index", "schema_version": SCHEMA_VERSION})

# Value constraints the audits enforce, per artifact and column.
RANGES: dict[str, dict[str, object]] = {
    "manifest": {
        "label": LABELS, "piece_kind": PIECE_KINDS, "n_ratings": (1, None),
        "duration_s": (0.0, None), "sample_rate": (1, None), "channels": (1, None),
        "sensor_rows": (1, None), "sensor_rate_hz": (0.0, None),
    },
    "splits": {"label": LABELS, "role": ROLES, "fold": (0, None)},
    # structural ranges only: the plan's >= 120 non-zero frames is a data-quality rule whose
    # threshold lives in the criteria file (data.audio_stats, profy.contract.quarantine.TAKE_RULES)
    "audio_stats": {"nonzero_frames": (0, None), "valid_frames": (0, None),
                    "nonsilent_ratio": (0.0, 1.0), "clipping_ratio": (0.0, 1.0),
                    "peak": (0.0, None), "finite": (True,),
                    "clip_runs": (0, None), "clip_run_max": (0, None),
                    "channel_balance_db": (None, 0.0), "stereo_residual_db": (None, 0.0),
                    "bandwidth_hz": (0.0, None), "lead_silence_s": (0.0, None),
                    "trail_silence_s": (0.0, None), "digital_silence_s": (0.0, None),
                    "dropout_s": (0.0, None), "sync_confidence": (0.0, 1.0)},
}

# --- training run artifacts (written by ``profy.training``) -------------------------------

MODES = ("sensor", "audio", "multimodal")  # one model per mode and fold

PREDICTIONS_SCHEMA = pa.schema([
    pa.field("mode", pa.string(), nullable=False),         # sensor | audio | multimodal
    pa.field("fold", pa.int32(), nullable=False),
    pa.field("sample_id", pa.string(), nullable=False),    # a held-out (role test) take
    pa.field("label", pa.int32(), nullable=False),         # 0 amateur, 1 pro (LABELS index)
    pa.field("probability", pa.float64(), nullable=False),  # P(pro) from the kept weights
    pa.field("prediction", pa.int32(), nullable=False),    # argmax class: 0 or 1
], metadata={"profy_artifact": "predictions", "schema_version": SCHEMA_VERSION})

# Fusion weights of every held-out take of the multimodal mode, with the audio-quality
# vector the gate read and the temperature it applied.
MODALITY_WEIGHTS_SCHEMA = pa.schema([
    pa.field("fold", pa.int32(), nullable=False),
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("sensor_weight", pa.float64(), nullable=False),
    pa.field("audio_weight", pa.float64(), nullable=False),
    *[pa.field(name, pa.float64(), nullable=False) for name in QUALITY_FIELDS],
    pa.field("gate_temperature", pa.float64(), nullable=False),
    pa.field("correct", pa.bool_(), nullable=False),       # prediction == label
], metadata={"profy_artifact": "modality_weights", "schema_version": SCHEMA_VERSION})

# Gate outputs in training (multimodal), for a sampled ~20% of batches; one row per take.
GATE_LOG_SCHEMA = pa.schema([
    pa.field("epoch", pa.int32(), nullable=False),         # 1-based
    pa.field("batch", pa.int32(), nullable=False),         # 0-based within the epoch
    pa.field("fold", pa.int32(), nullable=False),
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("sensor_weight", pa.float64(), nullable=False),
    pa.field("audio_weight", pa.float64(), nullable=False),
    *[pa.field(name, pa.float64(), nullable=False) for name in QUALITY_FIELDS],
    pa.field("temperature", pa.float64(), nullable=False),
], metadata={"profy_artifact": "gate_log", "schema_version": SCHEMA_VERSION})

# Epoch history of every mode and fold. ``best`` marks the epoch whose weights were kept
# (the checkpoint); a gate flags a kept last epoch while an earlier one scored higher.
EPOCHS_SCHEMA = pa.schema([
    pa.field("mode", pa.string(), nullable=False),
    pa.field("fold", pa.int32(), nullable=False),
    pa.field("epoch", pa.int32(), nullable=False),         # 1-based
    pa.field("train_loss", pa.float64(), nullable=False),  # mean training loss of the epoch
    pa.field("val_loss", pa.float64(), nullable=False),    # unweighted cross-entropy on val
    pa.field("val_macro_f1", pa.float64(), nullable=False),  # early-stopping criterion
    pa.field("val_accuracy", pa.float64(), nullable=False),
    pa.field("seconds", pa.float64(), nullable=False),     # wall time of the epoch
    pa.field("best", pa.bool_(), nullable=False),          # this epoch's weights were kept
], metadata={"profy_artifact": "epochs", "schema_version": SCHEMA_VERSION})

_QUALITY_RANGES: dict[str, object] = {"nonsilent_ratio": (0.0, 1.0), "clipping_ratio": (0.0, 1.0)}
RANGES.update({
    "predictions": {"mode": MODES, "fold": (0, None), "label": (0, 1), "probability": (0.0, 1.0),
                    "prediction": (0, 1)},
    "modality_weights": {"fold": (0, None), "sensor_weight": (0.0, 1.0),
                         "audio_weight": (0.0, 1.0), "gate_temperature": (1.0, None),
                         **_QUALITY_RANGES},
    "gate_log": {"epoch": (1, None), "batch": (0, None), "fold": (0, None),
                 "sensor_weight": (0.0, 1.0), "audio_weight": (0.0, 1.0),
                 "temperature": (1.0, None), **_QUALITY_RANGES},
    "epochs": {"mode": MODES, "fold": (0, None), "epoch": (1, None), "train_loss": (0.0, None),
               "val_loss": (0.0, None), "val_macro_f1": (0.0, 1.0), "val_accuracy": (0.0, 1.0),
               "seconds": (0.0, None)},
})
