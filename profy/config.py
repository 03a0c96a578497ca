"""Profy's typed config: one set of knobs, validated once, hashed for provenance.

Each section is a frozen dataclass whose fields carry a comment saying *why* the
default is what it is. ``from_dict`` rejects unknown keys and wrong types, so a typo
in a YAML profile is an error rather than a silently ignored knob. ``config_hash``
is the SHA-256 of the canonical JSON form, written into every artifact made from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from profy.errors import ConfigError

__all__ = ["FeatureConfig", "config_hash", "from_dict", "to_dict"]

T = TypeVar("T")


@dataclass(frozen=True)
class FeatureConfig:
    """How a take becomes model input: log-mel image, sensor frames, masks, normalization.

    Framing: a fixed hop (``hop_length`` samples at ``sample_rate``) gives one frame rate
    for audio and sensor alike (50 frames/s by default); every take is padded or cut to
    ``frames`` frames and a mask marks which frames hold real signal. A fixed hop keeps
    one frame = 20 ms for every take, so tempo and timing cues mean the same thing in
    short and long takes (the original's "1000 frames over the clip" stretched them).
    """

    # 44.1 kHz -> 16 kHz: partials above 8 kHz carry little, and it is ~3x cheaper.
    sample_rate: int = 16_000
    # 15.6 Hz bins: narrower than the narrowest of 128 Slaney mel filters (~23 Hz below
    # 1 kHz), so no filter is empty (torchaudio warns when one is).
    n_fft: int = 1024
    hop_length: int = 320  # 20 ms -> 50 frames/s; the ~1 kHz sensor averages 20 rows per frame
    n_mels: int = 128  # all 128 channels reach the model (the plan's Phase 1 fix)
    f_min: float = 0.0
    f_max: float = 8_000.0  # Nyquist of 16 kHz
    mel_scale: str = "slaney"  # linear below 1 kHz: low filters stay wide enough for n_fft=1024
    frames: int = 560  # 11.2 s at 50 frames/s: the longest take (~11 s) fits; shorter are masked
    silence_db: float = -45.0  # valid frame: energy within 45 dB of the clip's loudest frame
    top_db: float = 80.0  # log-mel floor relative to the clip's peak, as librosa's power_to_db
    normalization: str = "global"  # "global": train-fold stats artifact; "per_sample": legacy
    sensor_rate_hz: float = 1000.0  # nominal hackkey rate
    sensor_rate_tolerance: float = 0.1  # a take whose measured rate is off by >10% is an error
    spec_augment_time_mask: int = 0  # max width (frames) of SpecAugment time masks; 0 = off
    spec_augment_n_masks: int = 2  # number of time masks per training example when enabled

    def __post_init__(self) -> None:
        if self.n_mels < 1 or self.n_fft < 2 or self.hop_length < 1 or self.frames < 1:
            raise ConfigError(f"feature sizes must be positive, got {self}")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ConfigError(
                f"need 0 <= f_min < f_max <= sample_rate/2, got f_min={self.f_min}, "
                f"f_max={self.f_max}, sample_rate={self.sample_rate}")
        if self.normalization not in ("global", "per_sample"):
            raise ConfigError(
                f"normalization must be 'global' or 'per_sample', got {self.normalization!r}")
        if self.mel_scale not in ("slaney", "htk"):
            raise ConfigError(f"mel_scale must be 'slaney' or 'htk', got {self.mel_scale!r}")
        if self.silence_db >= 0:
            raise ConfigError(f"silence_db must be negative (dB below peak), got {self.silence_db}")

    @property
    def frame_rate_hz(self) -> float:
        """Frames per second shared by audio and sensor."""
        return self.sample_rate / self.hop_length


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-dict form of a config dataclass (nested sections included)."""
    return dataclasses.asdict(cfg)


def config_hash(cfg: Any) -> str:
    """SHA-256 (hex) of the canonical JSON form of a config dataclass or dict."""
    payload = to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} matches none of {annotation}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(annotation)
        item_types = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(item_types) != len(value):
            raise ConfigError(f"{where}: expected {len(item_types)} items, got {value!r}")
        return tuple(_coerce(v, t, f"{where}[{i}]") for i, (v, t) in enumerate(
            zip(value, item_types, strict=True)))
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(annotation, value, where=where)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: dict[str, Any], *, where: str = "config") -> T:
    """Build config dataclass ``cls`` from ``data``; unknown keys and wrong types are errors.

    Raises:
        ConfigError: naming the key path (e.g. ``config.features.n_mel``) and the bad value.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
