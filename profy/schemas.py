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
    "FEATURE_INDEX_SCHEMA",
    "LABELS",
    "LABEL_COLUMNS",
    "MANIFEST_SCHEMA",
    "PIECE_KINDS",
    "PIECES",
    "QUALITY_FIELDS",
    "RANGES",
    "ROLES",
    "SCHEMA_VERSION",
    "SPLITS_SCHEMA",
    "piece_kind",
]

SCHEMA_VERSION = "1"

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
    "audio_stats": {"nonzero_frames": (120, None), "valid_frames": (0, None),
                    "nonsilent_ratio": (0.0, 1.0), "clipping_ratio": (0.0, 1.0),
                    "peak": (0.0, None), "finite": (True,)},
}
