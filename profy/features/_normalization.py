"""Global normalization: per-channel mean/std over a fold's training takes, fitted streaming.

The plan's Phase 1 replaces per-sample z-scores with statistics of the *training* takes
only (fitting on everything was one of the original leaks). :class:`NormFitter` sees one
take at a time and merges its ``(count, mean, M2)`` per channel into the running totals
with Chan et al.'s parallel update in float64, so the corpus is never concatenated and
the result equals a two-pass computation up to round-off. Only valid frames count:
audio frames in the silence-aware mask, sensor frames that hold sensor rows.

A channel whose std is at most ``STD_FLOOR * max(1, |mean|)`` (constant up to float
round-off, e.g. a mel band always on the floor, or a key that never moves) gets std 1:
it is centred but not scaled, so an unseen value stays finite and of moderate size
instead of being divided by ~0.

The artifact, ``norm_stats/fold_K.json``, names the ids it was fitted on (and their
SHA-256), the feature-config hash and a version; :meth:`NormStats.from_json` refuses a
file whose structure, values or id hash do not check out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import profy.features.functional as F
from profy.contract.atomic import atomic_write_json, json_bytes
from profy.errors import FeatureError, LeakageError, MalformedFileError

__all__ = ["NORM_STATS_VERSION", "STD_FLOOR", "NormFitter", "NormStats", "apply_global_norm",
           "apply_sensor_norm", "check_config_hash", "sample_ids_sha256"]

NORM_STATS_VERSION = 1
STD_FLOOR = 1e-6  # relative to max(1, |mean|): below it a channel counts as constant


def sample_ids_sha256(ids: Iterable[str]) -> str:
    """SHA-256 hex of the sorted ids joined by newlines."""
    return hashlib.sha256("\n".join(sorted(ids)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NormStats:
    """Per-channel statistics fitted on one fold's training takes.

    Attributes:
        version: artifact layout version (:data:`NORM_STATS_VERSION`).
        fold: the fold whose training takes were used, or ``None`` for a whole-set fit.
        feature_config_hash: hash of the :class:`~profy.config.FeatureConfig` used.
        n_samples: number of takes fitted on (``len(sample_ids)``).
        sample_ids_sha256: :func:`sample_ids_sha256` of ``sample_ids``.
        sample_ids: the takes fitted on, sorted.
        audio_mean, audio_std: per mel channel, ``n_mels`` values each.
        sensor_mean, sensor_std: per key, 88 values each.
        n_frames_audio, n_frames_sensor: valid frames that entered the fit.
        created_at: ISO-8601 UTC time of the fit.
    """

    version: int
    fold: int | None
    feature_config_hash: str
    n_samples: int
    sample_ids_sha256: str
    sample_ids: tuple[str, ...]
    audio_mean: tuple[float, ...]
    audio_std: tuple[float, ...]
    sensor_mean: tuple[float, ...]
    sensor_std: tuple[float, ...]
    n_frames_audio: int
    n_frames_sensor: int
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    def to_json(self, path: str | Path) -> Path:
        """Write atomically as JSON and return the path."""
        return atomic_write_json(path, self.to_dict())

    def to_json_bytes(self) -> bytes:
        """The bytes :meth:`to_json` writes."""
        return json_bytes(self.to_dict())

    @classmethod
    def from_json(cls, path: str | Path, *, n_mels: int | None = None) -> NormStats:
        """Read and validate an artifact written by :meth:`to_json`.

        Args:
            path: the JSON file.
            n_mels: expected audio channels; ``None`` accepts any positive count.

        Raises:
            MalformedFileError: unreadable JSON, a missing or unknown key, a wrong type or
                length, a non-finite value, a std <= 0, or ids that do not match their hash.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedFileError(path, f"not readable as JSON ({exc})") from None
        return cls.from_dict(data, source=path, n_mels=n_mels)

    @classmethod
    def from_dict(cls, data: Any, *, source: str | Path = "<dict>",
                  n_mels: int | None = None) -> NormStats:
        """Validate a dict as :meth:`from_json` does (``source`` names it in errors)."""
        def bad(problem: str) -> MalformedFileError:
            return MalformedFileError(source, f"normalization stats: {problem}")

        if not isinstance(data, dict):
            raise bad(f"expected a JSON object, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        missing, unknown = sorted(set(names) - set(data)), sorted(set(data) - set(names))
        if missing or unknown:
            raise bad(f"missing key(s) {missing}, unknown key(s) {unknown}")
        if data["version"] != NORM_STATS_VERSION:
            raise bad(f"version {data['version']!r} is not {NORM_STATS_VERSION}")
        fold = data["fold"]
        if fold is not None and (not _is_int(fold) or fold < 0):
            raise bad(f"fold must be a non-negative integer or null, got {fold!r}")
        for key in ("feature_config_hash", "sample_ids_sha256", "created_at"):
            if not isinstance(data[key], str) or not data[key]:
                raise bad(f"{key} must be a non-empty string, got {data[key]!r}")
        ids = data["sample_ids"]
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise bad("sample_ids must be a list of non-empty strings")
        if ids != sorted(set(ids)):
            raise bad("sample_ids must be sorted and unique")
        if data["n_samples"] != len(ids) or not _is_int(data["n_samples"]):
            raise bad(f"n_samples={data['n_samples']!r} but {len(ids)} sample_ids")
        if sample_ids_sha256(ids) != data["sample_ids_sha256"]:
            raise bad("sample_ids do not match sample_ids_sha256 (edited id list?)")
        lengths = {"audio_mean": n_mels, "audio_std": n_mels,
                   "sensor_mean": F.N_KEYS, "sensor_std": F.N_KEYS}
        for key, want in lengths.items():
            values = data[key]
            if not isinstance(values, list) or not values or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                raise bad(f"{key} must be a non-empty list of numbers")
            if want is not None and len(values) != want:
                raise bad(f"{key} has {len(values)} values, expected {want}")
            if not all(math.isfinite(v) for v in values):
                raise bad(f"{key} holds a non-finite value")
            if key.endswith("_std") and min(values) <= 0:
                raise bad(f"{key} holds a value <= 0: {min(values)!r}")
        if len(data["audio_mean"]) != len(data["audio_std"]):
            raise bad(f"audio_mean has {len(data['audio_mean'])} values, audio_std "
                      f"{len(data['audio_std'])}")
        for key in ("n_frames_audio", "n_frames_sensor"):
            if not _is_int(data[key]) or data[key] < 1:
                raise bad(f"{key} must be a positive integer, got {data[key]!r}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def check_fitted_on(self, train_ids: Iterable[str], *, held_out: Iterable[str] = ()) -> None:
        """Check the stats were fitted on exactly ``train_ids`` and on none of ``held_out``.

        Raises:
            LeakageError: a held-out id was fitted on, or the fitted set differs from
                ``train_ids``.
        """
        fitted = set(self.sample_ids)
        leaked = sorted(fitted & set(held_out))
        if leaked:
            raise LeakageError(f"normalization stats (fold {self.fold}) were fitted on "
                               f"{len(leaked)} held-out take(s), e.g. {leaked[:3]}")
        train = set(train_ids)
        if fitted != train:
            raise LeakageError(f"normalization stats (fold {self.fold}) were fitted on other "
                               f"takes than the training set: {len(fitted - train)} extra, "
                               f"{len(train - fitted)} missing, e.g. extra "
                               f"{sorted(fitted - train)[:3]}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Moments:
    """Running per-channel count/mean/M2 in float64, merged with Chan's parallel update."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def add(self, x: Tensor) -> None:
        """Merge the rows of ``x`` `(n, channels)` (one take's valid frames)."""
        n = x.shape[0]
        if n == 0:
            return
        x = x.to(torch.float64)
        mean_b = x.mean(0)
        m2_b = (x - mean_b).square().sum(0)
        mean_b, m2_b = mean_b.numpy(), m2_b.numpy()
        if self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = n, mean_b, m2_b
            return
        if mean_b.shape != self.mean.shape:
            raise FeatureError(f"a take has {mean_b.shape[0]} channels, earlier ones "
                               f"{self.mean.shape[0]}")
        total = self.count + n
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2_b + delta * delta * (self.count * n / total)
        self.count = total

    def result(self, what: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if self.mean is None or self.m2 is None or self.count == 0:
            raise FeatureError(f"no valid {what} frame in any fitted take; cannot normalize")
        std = np.sqrt(self.m2 / self.count)
        constant = std <= STD_FLOOR * np.maximum(1.0, np.abs(self.mean))
        std = np.where(constant, 1.0, std)
        return tuple(self.mean.tolist()), tuple(std.tolist())


class NormFitter:
    """Fit :class:`NormStats` one take at a time over valid frames only.

    Args:
        feature_config_hash: hash of the feature config the takes were extracted with.

    Example:
        >>> fitter = NormFitter(config_hash(cfg))
        >>> for sid in train_ids:
        ...     f = features[sid]
        ...     fitter.update(sid, f.logmel, f.audio_mask, f.sensor, f.sensor_mask)
        >>> fitter.finalize(fold=0).to_json(run / "norm_stats" / "fold_0.json")
    """

    def __init__(self, feature_config_hash: str) -> None:
        if not isinstance(feature_config_hash, str) or not feature_config_hash:
            raise ValueError(f"feature_config_hash must be a non-empty string, got "
                             f"{feature_config_hash!r}")
        self.feature_config_hash = feature_config_hash
        self._ids: set[str] = set()
        self._audio, self._sensor = _Moments(), _Moments()

    @property
    def sample_ids(self) -> frozenset[str]:
        """Ids seen so far."""
        return frozenset(self._ids)

    def update(self, sample_id: str, logmel: Any, audio_mask: Any, sensor: Any,
               sensor_mask: Any) -> None:
        """Add one take (tensors or numpy arrays).

        Args:
            sample_id: the take's id; each id may be added once.
            logmel: un-normalized log-mel `(n_mels, frames)`.
            audio_mask: bool `(frames,)`, the valid audio frames.
            sensor: framed sensor `(frames_s, 88)`.
            sensor_mask: bool `(frames_s,)`, the frames holding sensor rows.

        Raises:
            FeatureError: a repeated id, mismatched shapes, or non-finite valid values.
        """
        if not isinstance(sample_id, str) or not sample_id:
            raise FeatureError(f"sample_id must be a non-empty string, got {sample_id!r}")
        if sample_id in self._ids:
            raise FeatureError(f"take {sample_id!r} was already added to this fit")
        logmel, audio_mask = torch.as_tensor(logmel), torch.as_tensor(audio_mask, dtype=torch.bool)
        sensor, sensor_mask = torch.as_tensor(sensor), torch.as_tensor(sensor_mask,
                                                                       dtype=torch.bool)
        if logmel.dim() != 2 or audio_mask.shape != (logmel.shape[1],):
            raise FeatureError(f"take {sample_id!r}: logmel must be (n_mels, frames) with a "
                               f"(frames,) mask, got {tuple(logmel.shape)} and "
                               f"{tuple(audio_mask.shape)}")
        if sensor.dim() != 2 or sensor.shape[1] != F.N_KEYS or sensor_mask.shape != (
                sensor.shape[0],):
            raise FeatureError(f"take {sample_id!r}: sensor must be (frames, {F.N_KEYS}) with a "
                               f"(frames,) mask, got {tuple(sensor.shape)} and "
                               f"{tuple(sensor_mask.shape)}")
        audio_rows, sensor_rows = logmel.transpose(0, 1)[audio_mask], sensor[sensor_mask]
        if not bool(torch.isfinite(audio_rows).all() and torch.isfinite(sensor_rows).all()):
            raise FeatureError(f"take {sample_id!r} has non-finite values in valid frames")
        # validate before merging, so a rejected take leaves the fit untouched
        if self._audio.mean is not None and audio_rows.shape[1] != self._audio.mean.shape[0]:
            raise FeatureError(f"take {sample_id!r} has {audio_rows.shape[1]} mel channels, "
                               f"earlier takes {self._audio.mean.shape[0]}")
        self._audio.add(audio_rows)
        self._sensor.add(sensor_rows)
        self._ids.add(sample_id)

    def finalize(self, fold: int | None = None, *, created_at: str | None = None) -> NormStats:
        """The fitted statistics.

        Args:
            fold: fold number recorded in the artifact. (Default: ``None``)
            created_at: ISO time to record. (Default: now, UTC)

        Raises:
            FeatureError: no take, or no valid audio or sensor frame, was added.
        """
        if fold is not None and (not _is_int(fold) or fold < 0):
            raise ValueError(f"fold must be a non-negative integer or None, got {fold!r}")
        if not self._ids:
            raise FeatureError("no take was added to the normalization fit")
        audio_mean, audio_std = self._audio.result("audio")
        sensor_mean, sensor_std = self._sensor.result("sensor")
        ids = tuple(sorted(self._ids))
        return NormStats(
            version=NORM_STATS_VERSION, fold=fold, feature_config_hash=self.feature_config_hash,
            n_samples=len(ids), sample_ids_sha256=sample_ids_sha256(ids), sample_ids=ids,
            audio_mean=audio_mean, audio_std=audio_std, sensor_mean=sensor_mean,
            sensor_std=sensor_std, n_frames_audio=self._audio.count,
            n_frames_sensor=self._sensor.count,
            created_at=created_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


def check_config_hash(stats: NormStats, feature_config_hash: str) -> None:
    """Raise :class:`FeatureError` unless ``stats`` were fitted with ``feature_config_hash``."""
    if stats.feature_config_hash != feature_config_hash:
        raise FeatureError(f"normalization stats were fitted with feature config "
                           f"{stats.feature_config_hash}, features use {feature_config_hash}")


def apply_global_norm(logmel: Any, mask: Any, stats: NormStats, *,
                      feature_config_hash: str) -> Tensor:
    """Normalize a log-mel with fitted stats; frames outside ``mask`` become 0.

    Args:
        logmel: log-mel `(..., n_mels, frames)` (tensor or array).
        mask: bool `(..., frames)`; always pass it on to the model with the result.
        stats: the fold's :class:`NormStats`.
        feature_config_hash: hash of the config the log-mel was made with.

    Returns:
        Tensor: float32 `(..., n_mels, frames)`.

    Raises:
        FeatureError: the stats come from another feature config or channel count.
    """
    return _apply(logmel, mask, stats.audio_mean, stats.audio_std, channel_dim=-2,
                  what="log-mel", unit="mel channels", stats=stats,
                  feature_config_hash=feature_config_hash)


def apply_sensor_norm(sensor: Any, mask: Any, stats: NormStats, *,
                      feature_config_hash: str) -> Tensor:
    """Normalize framed sensor data with fitted stats; frames outside ``mask`` become 0.

    Args:
        sensor: framed sensor `(..., frames, 88)`.
        mask: bool `(..., frames)`.
        stats: the fold's :class:`NormStats`.
        feature_config_hash: hash of the config the sensor frames were made with.

    Returns:
        Tensor: float32 `(..., frames, 88)`.

    Raises:
        FeatureError: the stats come from another feature config, or the key count differs.
    """
    return _apply(sensor, mask, stats.sensor_mean, stats.sensor_std, channel_dim=-1,
                  what="sensor", unit="keys", stats=stats, feature_config_hash=feature_config_hash)


def _apply(values: Any, mask: Any, mean: Any, std: Any, *, channel_dim: int, what: str,
           unit: str, stats: NormStats, feature_config_hash: str) -> Tensor:
    """Shared body of the two ``apply_*`` functions: check, then normalize valid frames."""
    check_config_hash(stats, feature_config_hash)
    x = torch.as_tensor(values, dtype=torch.float32)
    if x.dim() < 2 or x.shape[channel_dim] != len(mean):
        raise FeatureError(f"{what} has shape {tuple(x.shape)}; the stats have "
                           f"{len(mean)} {unit}")
    mean_t = torch.tensor(mean, dtype=torch.float32, device=x.device)
    std_t = torch.tensor(std, dtype=torch.float32, device=x.device)
    return F.normalize(x, torch.as_tensor(mask, dtype=torch.bool, device=x.device), mean_t,
                       std_t, channel_dim=channel_dim)
