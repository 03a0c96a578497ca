"""The model's inputs and outputs, and the feature-cache entry that feeds them.

One definition, read by the trainer, the ONNX exporter, the ONNX checks and the replays:
which modes exist, which named tensors each mode takes (dims and dtype), which it
returns, and the layout version of a cached feature entry. Adding an input channel (say
a second audio feature) is an edit here plus the code that computes it.

Dims: ``"B"`` (takes) and ``"T"`` (frames) are dynamic; ``"n_mels"`` is the feature
config's mel count; numbers are fixed.
"""

from __future__ import annotations

from typing import Final

from profy.contract.schemas import MODES
from profy.contract.schemas import QUALITY_FIELDS as _QUALITY_FIELDS

__all__ = ["CACHE_FORMAT", "CACHE_ARRAYS", "INPUT_LAYOUT", "MODES", "N_KEYS", "TIME_AXIS",
           "input_dtype", "input_names", "inputs_for", "output_names"]

N_KEYS: Final = 88  # the key sensor's channels, one per piano key

# name -> (dims, dtype), in the graphs' positional order.
INPUT_LAYOUT: Final[dict[str, tuple[tuple[str | int, ...], str]]] = {
    "sensor": (("B", "T", N_KEYS), "float32"),
    "sensor_mask": (("B", "T"), "bool"),
    "logmel": (("B", "n_mels", "T"), "float32"),
    "audio_mask": (("B", "T"), "bool"),
    "quality": (("B", len(_QUALITY_FIELDS)), "float32"),
}
# The frame axis of each input that has one (the quality vector has none).
TIME_AXIS: Final[dict[str, int]] = {name: dims.index("T") for name, (dims, _) in
                                    INPUT_LAYOUT.items() if "T" in dims}

_MODE_INPUTS: Final[dict[str, tuple[str, ...]]] = {
    "sensor": ("sensor", "sensor_mask"),
    "audio": ("logmel", "audio_mask"),
    "multimodal": ("sensor", "sensor_mask", "logmel", "audio_mask", "quality"),
}
assert tuple(_MODE_INPUTS) == MODES

# A cached feature entry: the per-take arrays (no batch axis) and the layout version
# stored with it. Bump CACHE_FORMAT when the entry layout changes: old entries then miss.
CACHE_ARRAYS: Final = ("logmel", "audio_mask", "quality", "sensor", "sensor_mask")
CACHE_FORMAT: Final = "1"


def _check_mode(mode: str) -> str:
    if mode not in _MODE_INPUTS:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    return mode


def input_names(mode: str) -> tuple[str, ...]:
    """ONNX input names of ``mode`` (only the inputs the mode uses), in graph order."""
    return _MODE_INPUTS[_check_mode(mode)]


def output_names(mode: str) -> tuple[str, ...]:
    """ONNX output names: ``logits``, ``probs`` (+ ``modality_weights`` for multimodal)."""
    _check_mode(mode)
    return ("logits", "probs", "modality_weights") if mode == "multimodal" else ("logits",
                                                                                  "probs")


def inputs_for(mode: str) -> dict[str, tuple[tuple[str | int, ...], str]]:
    """``{name: (dims, dtype)}`` of the inputs ``mode`` takes, in graph order."""
    return {name: INPUT_LAYOUT[name] for name in input_names(mode)}


def input_dtype(name: str) -> str:
    """The dtype name (``"float32"`` or ``"bool"``) of input ``name``."""
    return INPUT_LAYOUT[name][1]
