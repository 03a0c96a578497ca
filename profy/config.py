"""Profy's typed config: one set of knobs, validated once, hashed for provenance.

Each section is a frozen dataclass whose fields carry a comment saying *why* the
default is what it is. ``from_dict`` rejects unknown keys and wrong types, so a typo
in a YAML profile is an error rather than a silently ignored knob. ``config_hash``
is the SHA-256 of the canonical JSON form, written into every artifact made from it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from profy._config_base import config_hash, from_dict, to_dict
from profy.contract import schemas
from profy.errors import ConfigError

__all__ = ["FeatureConfig", "ModelConfig", "RunConfig", "TrainConfig", "config_hash", "from_dict",
           "load_profile", "profile_dir", "to_dict"]



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


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and switches of ``profy.models.UnifiedAttentionModel`` (one class, three modes).

    The defaults are the small *demo* size (~29k parameters multimodal; nine models train
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
    # "keys": per-key temporal filters shared across the 88 keys, pooled over keys, before
    # any mixing (a small model cannot memorise which keys a piece uses); "linear": the 88
    # keys feed the first Conv1d directly (the original encoder, kept for ablation).
    sensor_frontend: str = "keys"
    key_channels: int = 8  # filters of the shared per-key front end (mean + max over keys: 2x)
    key_kernel: int = 5  # frames: a press, hold wobble or release spans ~3-6 frames of 20 ms
    # Keys per take the front end filters: those that travel furthest. A scale or arpeggio
    # uses a few dozen keys; filtering all 88 cost ~4x the time for idle keys' noise.
    key_slots: int = 24
    # An untouched key's depth is scaled by at least this share of the take's largest key
    # travel, so its sensor noise stays noise instead of being stretched to a full press.
    key_floor: float = 0.2
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
    # Phase 2: the sensor share never drops below this (w_s = m + (1-m) * (1 - p_a)), so a
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
    # adds 1 to tau, flattening an audio-leaning gate toward (1 - m) / 2 audio share (a
    # sensor-leaning one is left as is: lower quality never buys audio more trust).
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
        if self.sensor_frontend not in ("keys", "linear"):
            raise ConfigError(
                f"model.sensor_frontend must be 'keys' or 'linear', got {self.sensor_frontend!r}")
        if self.key_channels < 1 or self.key_slots < 1 or self.key_kernel < 1 \
                or self.key_kernel % 2 == 0:
            raise ConfigError(f"model.key_channels and key_slots must be >= 1 and key_kernel "
                              f"odd and >= 1; got {self.key_channels}/{self.key_slots}/"
                              f"{self.key_kernel}")
        if not 0.0 < self.key_floor <= 1.0:
            raise ConfigError(f"model.key_floor must be in (0, 1], got {self.key_floor}")
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


@dataclass(frozen=True)
class TrainConfig:
    """How ``profy train`` fits and evaluates: cross-validation, optimizer, early stopping.

    The defaults fit the demo: 3 modes x 3 player-wise folds of the ``small`` synthetic
    corpus (~240 takes) on two CPU cores. Two fields switch the pre-plan behaviour back on
    for the ``legacy-20250925`` profile: ``checkpoint: last`` and ``norm_fit: all``.
    """

    # Few epochs: the demo model converges in well under 15 passes over ~130 training
    # takes; early stopping usually ends a fold before the cap.
    epochs: int = 15
    batch_size: int = 16  # ~80 ms forward+backward multimodal on 2 CPU cores
    lr: float = 3e-3  # AdamW; small model, few steps per epoch: a brisk rate
    weight_decay: float = 1e-4  # light: dropout and early stopping do most regularising
    # Epochs without a better checkpoint_metric before stopping; 5 lets a noisy val split
    # (a few players) recover from a few bad epochs.
    patience: int = 5
    seed: int = 0  # seeds folds, weights, shuffling, dropout, SpecAugment: same seed, same run
    n_folds: int = 3  # player-wise outer folds (the plan's acceptance criteria assume 3)
    val_fraction: float = 0.2  # share of each label's training players held for early stopping
    modes: tuple[str, ...] = schemas.MODES  # each mode trains its own model per fold
    # ~55/45 pro/amateur players: "weighted_loss" scales cross-entropy by inverse class
    # frequency of the fold's training takes; "sampler" draws batches class-balanced with
    # replacement; "none" trains on the raw frequencies.
    class_balance: str = "weighted_loss"
    device: str = "auto"  # "auto": CUDA when present, else CPU
    num_threads: int = 2  # torch CPU threads: fixed, because float sums depend on it
    # Deterministic kernels (torch.use_deterministic_algorithms) so one seed gives one
    # result on CPU; costs little at this size.
    deterministic: bool = True
    grad_clip: float = 1.0  # max gradient norm; 0 disables. Guards the first epochs of the gate
    gate_log_fraction: float = 0.2  # the plan's Phase 2: gate outputs for ~20% of batches
    # "best": keep the epoch best by checkpoint_metric (deep copy). "last": LEGACY, the
    # pre-plan bug that kept the final epoch's weights and called them best.
    checkpoint: str = "best"
    # What "best" means. "val_loss": the lowest val cross-entropy (ties: higher val macro
    # F1); with ~30 val takes F1 moves in steps of a few points and often ties, the loss
    # is the smoother signal. "val_f1": the highest val macro F1 (ties: lower val loss).
    # Patience counts epochs without a better value of the same criterion.
    checkpoint_metric: str = "val_loss"
    # "train": normalization fitted on each fold's train role only. "all": LEGACY leak,
    # statistics fitted on every take, held-out ones included.
    norm_fit: str = "train"
    # SpecAugment time masking on training log-mels (width and count from
    # features.spec_augment_*); off until benchmarked on the real corpus.
    spec_augment: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience", "n_folds", "num_threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.n_folds < 2:
            raise ConfigError(f"train.n_folds must be >= 2, got {self.n_folds}")
        if self.lr <= 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ConfigError(f"train.lr must be > 0, weight_decay and grad_clip >= 0; got "
                              f"{self.lr}, {self.weight_decay}, {self.grad_clip}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"train.val_fraction must be in (0, 1), got {self.val_fraction}")
        if not 0.0 <= self.gate_log_fraction <= 1.0:
            raise ConfigError(
                f"train.gate_log_fraction must be in [0, 1], got {self.gate_log_fraction}")
        bad = [m for m in self.modes if m not in schemas.MODES]
        if not self.modes or bad or len(set(self.modes)) != len(self.modes):
            raise ConfigError(f"train.modes must be distinct values of "
                              f"{', '.join(schemas.MODES)}; got {list(self.modes)}")
        choices = {"class_balance": ("weighted_loss", "sampler", "none"),
                   "device": ("auto", "cpu", "cuda"), "checkpoint": ("best", "last"),
                   "checkpoint_metric": ("val_loss", "val_f1"),
                   "norm_fit": ("train", "all")}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ConfigError(f"train.{name} must be one of {', '.join(valid)}; got "
                                  f"{getattr(self, name)!r}")


@dataclass(frozen=True)
class RunConfig:
    """Everything one ``profy train`` run depends on: features, model and training.

    Profiles (``profy/configs/*.yaml``) list only the keys that differ from these
    defaults; :func:`load_profile` applies them and ``--set`` overrides on top.
    """

    features: FeatureConfig = dataclasses.field(default_factory=FeatureConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.model.n_mels_in != self.features.n_mels:
            raise ConfigError(f"model.n_mels_in ({self.model.n_mels_in}) must equal "
                              f"features.n_mels ({self.features.n_mels})")
        if self.train.spec_augment and self.features.spec_augment_time_mask < 1:
            raise ConfigError("train.spec_augment needs features.spec_augment_time_mask >= 1 "
                              "(the largest mask width in frames)")

    def to_yaml(self) -> str:
        """The resolved config as YAML (every key), headed by its hash; loads back equal."""
        import yaml

        plain = json.loads(json.dumps(to_dict(self)))  # tuples -> lists for safe_dump
        body = yaml.safe_dump(plain, sort_keys=False, default_flow_style=False)
        return f"# profy run config, config_hash {config_hash(self)}\n{body}"


def profile_dir() -> Path:
    """Folder of the built-in profiles (``profy/configs``)."""
    return Path(__file__).parent / "configs"


def _resolve_profile(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"profile file {path} does not exist")
        return path
    if path.name != str(name_or_path) or not str(name_or_path):
        raise ConfigError(f"{name_or_path!r} is neither a YAML file nor a profile name")
    builtin = profile_dir() / f"{name_or_path}.yaml"
    if not builtin.is_file():
        names = sorted(p.stem for p in profile_dir().glob("*.yaml"))
        raise ConfigError(f"unknown profile {str(name_or_path)!r}; built-in profiles: "
                          f"{', '.join(names)} (or pass a path to a .yaml file)")
    return builtin


def load_profile(name_or_path: str | Path | None = None, overrides: Sequence[str] = ()
                 ) -> RunConfig:
    """Build a :class:`RunConfig` from a profile and ``section.key=value`` overrides.

    Args:
        name_or_path: a built-in profile name (``mm-audiofix``, ``legacy-20250925``, ...),
            a path to a YAML file, or ``None`` for the defaults.
        overrides: ``"model.hidden=16"``-style strings applied in order after the profile;
            each value is parsed with ``yaml.safe_load`` (``16`` is an int, ``[a, b]`` a list).

    Raises:
        ConfigError: an unknown profile, unreadable YAML, an unknown section or key (named),
            a malformed override, or a value of the wrong type.
    """
    import yaml

    data: dict[str, Any] = {}
    source = "defaults"
    if name_or_path is not None:
        path = _resolve_profile(name_or_path)
        source = f"profile {path}"
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: not readable as YAML ({exc})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of sections, got {loaded!r}")
        data = {k: dict(v) if isinstance(v, dict) else v for k, v in (loaded or {}).items()}
    for item in overrides:
        key, sep, raw = str(item).partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) != 2 or not all(parts):
            raise ConfigError(f"override {item!r} must look like section.key=value, "
                              f"e.g. model.hidden=16")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from None
        section = data.setdefault(parts[0], {})
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: section {parts[0]!r} must be a mapping")
        section[parts[1]] = value
    try:
        return from_dict(RunConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"{source}{' with --set overrides' if overrides else ''}: {exc}"
                          ) from None
