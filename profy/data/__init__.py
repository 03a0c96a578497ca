"""Profy's data layer: the real corpus layout, a synthetic corpus, manifest and folds.

Torch-free: reading, deduplicating, validating and splitting a corpus needs numpy,
pandas, pyarrow and soundfile only.
"""

from profy.data._folds import check_no_leakage, make_folds, write_splits
from profy.data._inspect import CorpusReport, inspect_corpus, render_report, report_from_manifest
from profy.data._labels import TakeLabels, read_labels
from profy.data._manifest import (
    Manifest,
    Problem,
    build_manifest,
    read_manifest,
    write_manifest,
    write_quarantine,
)
from profy.data._paths import audio_path, sensor_path, take_dir
from profy.data._policy import InputPolicy
from profy.data._prepare import PreparedCorpus, prepare_corpus
from profy.data._readers import (
    AudioData,
    AudioInfo,
    SensorData,
    audio_info,
    read_audio,
    read_sensor,
)
from profy.data._synth import SIZES, SynthConfig, SynthSummary, synthesize_corpus

__all__ = [
    "SIZES",
    "AudioData",
    "AudioInfo",
    "CorpusReport",
    "InputPolicy",
    "Manifest",
    "PreparedCorpus",
    "Problem",
    "SensorData",
    "SynthConfig",
    "SynthSummary",
    "TakeLabels",
    "audio_info",
    "audio_path",
    "build_manifest",
    "check_no_leakage",
    "inspect_corpus",
    "make_folds",
    "prepare_corpus",
    "read_audio",
    "read_labels",
    "read_manifest",
    "read_sensor",
    "render_report",
    "report_from_manifest",
    "sensor_path",
    "synthesize_corpus",
    "take_dir",
    "write_manifest",
    "write_quarantine",
    "write_splits",
]
