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
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from profy.errors import ConfigError

__all__ = ["FeatureConfig", "ModelConfig", "config_hash", "from_dict", "to_dict"]

_T = TypeVar("_T")


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
    # The corpus's recording rate: another rate means a wrong or re-encoded file, so it is
    # an error naming the file; 0 accepts any rate (it is resampled either way).
    input_sample_rate: int = 44_100
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


def from_dict(cls: type[_T], data: dict[str, Any], *, where: str = "config") -> _T:
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


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and switches of ``profy.models.UnifiedAttentionModel`` (one class, three modes).

    The defaults are the small *demo* size (~44k parameters multimodal; nine models train
    on two CPU cores in about two minutes). ``ModelConfig.preset("paper")`` gives the published size
    (~4.2M parameters: hidden 256, BiLSTM head); it is plain field values, so a YAML
    profile can say the same thing. Time strides must be powers of two so every stage
    divides the (padded) frame count exactly and audio and sensor stay frame-aligned.
    """

    hidden: int = 32  # width of every stream; small so the demo trains 9 models in ~2 min on CPU
    n_keys: int = 88  # sensor channels, one per piano key (A0..C8)
    n_mels_in: int = 128  # log-mel channels the feature layer delivers (FeatureConfig.n_mels)
    # Mel channels that reach the audio CNN: all 128 (Phase 1 fix). The legacy profile sets
    # 64 to reproduce the pre-plan reshape bug that dropped the upper half of the mel axis.
    audio_channels_used: int = 128
    sensor_layers: int = 2  # residual dilated conv blocks after the sensor projection
    sensor_kernel: int = 3  # odd, so blocks are centred and keep the length
    # Conv2d channels of audio_cnn2d. Layers stride TIME only (the mel axis stays whole
    # until the frequency attention collapses it); the first layer's 4x stride keeps the
    # full-resolution 128 x T image out of the wide layers (most of the demo's step time).
    cnn_channels: tuple[int, ...] = (8, 16)
    cnn_time_strides: tuple[int, ...] = (4, 2)  # powers of two; product = audio time stride
    freq_heads: int = 2  # attention heads that collapse the mel axis (each a softmax over mels)
    use_tcn: bool = True  # Phase 3: dilated residual Conv1d blocks after the CNN (rhythm)
    tcn_layers: int = 2  # dilations 1, 2, 4, ...: receptive field grows 2x per layer
    tcn_kernel: int = 3  # odd, so the TCN is centred (non-causal: whole takes are classified)
    fusion_stride: int = 4  # input frames per fused step: 4 x 20 ms = 80 ms, a 16th at 190 bpm
    dropout: float = 0.1  # light: ~1k takes, but the demo trains for few epochs
    gate_hidden: int = 32  # width of the fusion gate MLP
    # Phase 2: the sensor share never drops below this (w_s = m + (1-m) * softmax_s), so a
    # noisy audio branch can at most take 1 - m of the decision.
    min_sensor_weight: float = 0.35
    # Phase 2: per-example whole-modality dropout in training; 0 until audio is reliable.
    modality_dropout_p: float = 0.0
    # Silence-aware masks (Phase 1). False = the legacy zero-padding semantics: masks are
    # ignored and every frame, padded or silent, is attended.
    use_masks: bool = True
    head: str = "linear"  # "linear": attention pool + Linear; "bilstm": BiLSTM first (paper)
    head_layers: int = 1  # BiLSTM layers when head == "bilstm"
    quality_dim: int = 5  # QUALITY_FIELDS: snr_db, nonsilent_ratio, flatness, loudness, clipping
    # Gate temperature tau = clip(1 + (snr_ref - snr_db) / snr_scale, 1, max): audio at or
    # above snr_ref dB is trusted as the gate learned (tau = 1); below it every snr_scale dB
    # adds 1 to tau, flattening the gate so the audio share tends to (1 - m) / 2.
    temperature_snr_ref: float = 25.0
    temperature_snr_scale: float = 10.0
    temperature_max: float = 5.0  # cap: even silence-level SNR keeps a usable gradient

    def __post_init__(self) -> None:
        positive = {"hidden": self.hidden, "n_keys": self.n_keys, "n_mels_in": self.n_mels_in,
                    "audio_channels_used": self.audio_channels_used,
                    "freq_heads": self.freq_heads, "gate_hidden": self.gate_hidden,
                    "head_layers": self.head_layers, "quality_dim": self.quality_dim}
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {value}")
        if self.sensor_layers < 0 or self.tcn_layers < 0:
            raise ConfigError(
                f"model.sensor_layers/tcn_layers must be >= 0, got "
                f"{self.sensor_layers}/{self.tcn_layers}")
        if not self.cnn_channels or any(c < 1 for c in self.cnn_channels):
            raise ConfigError(f"model.cnn_channels must be positive ints, got {self.cnn_channels}")
        if len(self.cnn_time_strides) != len(self.cnn_channels) or any(
                s < 1 or s & (s - 1) for s in self.cnn_time_strides):
            raise ConfigError(
                f"model.cnn_time_strides must be powers of two, one per cnn_channels entry; "
                f"got {self.cnn_time_strides} for {self.cnn_channels}")
        for name, k in (("sensor_kernel", self.sensor_kernel), ("tcn_kernel", self.tcn_kernel)):
            if k < 1 or k % 2 == 0:
                raise ConfigError(f"model.{name} must be odd and >= 1, got {k}")
        if self.fusion_stride < 1 or self.fusion_stride & (self.fusion_stride - 1):
            raise ConfigError(
                f"model.fusion_stride must be a power of two, got {self.fusion_stride}")
        if self.audio_channels_used > self.n_mels_in:
            raise ConfigError(
                f"model.audio_channels_used ({self.audio_channels_used}) exceeds n_mels_in "
                f"({self.n_mels_in})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.min_sensor_weight <= 1.0:
            raise ConfigError(
                f"model.min_sensor_weight must be in [0, 1], got {self.min_sensor_weight}")
        if not 0.0 <= self.modality_dropout_p <= 1.0:
            raise ConfigError(
                f"model.modality_dropout_p must be in [0, 1], got {self.modality_dropout_p}")
        if self.head not in ("linear", "bilstm"):
            raise ConfigError(f"model.head must be 'linear' or 'bilstm', got {self.head!r}")
        if self.temperature_snr_scale <= 0 or self.temperature_max < 1.0:
            raise ConfigError(
                f"model.temperature_snr_scale must be > 0 and temperature_max >= 1, got "
                f"{self.temperature_snr_scale}/{self.temperature_max}")

    @property
    def audio_time_stride(self) -> int:
        """Input frames per audio_cnn2d output step (product of ``cnn_time_strides``)."""
        return math.prod(self.cnn_time_strides)

    @classmethod
    def preset(cls, name: str) -> ModelConfig:
        """Named sizes: ``"demo"`` (the defaults) or ``"paper"`` (~4.2M parameters multimodal).

        Raises:
            ConfigError: for an unknown preset name.
        """
        presets: dict[str, dict[str, Any]] = {
            "demo": {},
            "paper": {"hidden": 256, "sensor_layers": 1, "cnn_channels": (32, 64, 64),
                      "cnn_time_strides": (2, 2, 2), "freq_heads": 4, "tcn_layers": 2,
                      "gate_hidden": 128, "head": "bilstm", "head_layers": 2, "dropout": 0.2},
        }
        if name not in presets:
            raise ConfigError(f"unknown model preset {name!r}; valid: {', '.join(presets)}")
        return from_dict(cls, presets[name], where=f"model preset {name!r}")
