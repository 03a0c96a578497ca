"""Telemetry of a training run: ``training.log``, gate-output sampling, weight summaries.

``training.log`` is line-oriented and greppable: every line starts with an upper-case
prefix and carries ``key=value`` pairs (values with spaces are JSON-quoted)::

    RUN id=experiment_20250926_101500 started=2025-09-26T10:15:00+00:00
    CONFIG hash=8cbd... profile=mm-audiofix
    GIT head=3f8155b... dirty=true            (or: GIT head="not a git checkout")
    VERSIONS python=3.11.9 torch=2.14.1 ...
    SEED seed=0 deterministic=true threads=2
    DEVICE device=cpu cuda_available=false
    DATA takes=240 players=30 pro=128 amateur=112 folds=3
    SPLIT fold=0 train=130 val=30 test=80 train_pro=70 train_amateur=60
    AUDIO_STATS n=240 valid_frames_mean=... snr_db_median=... finite_all=true
    NORM_REF fold=0 path=norm_stats/fold_0.json sha256=... fit=train n_samples=130 ...
    EPOCH mode=multimodal fold=0 epoch=3 train_loss=... val_loss=... val_macro_f1=...
    GATE mode=multimodal fold=0 epoch=3 batch=2 n=16 sensor_weight_mean=... snr_db_mean=...
    FOLD mode=multimodal fold=0 kept_epoch=5 best_epoch=5 test_macro_f1=... seconds=...
    WARNING what="..."
    MODALITY_WEIGHTS fold=0 n=80 mean_sensor=... frac_sensor_ge_0.5=...
    RESULT mode=multimodal macro_f1_mean=... macro_f1_std=...
    DONE seconds=...

The file is rewritten atomically on every flush (it is small), so a reader never sees
half a line, and an interrupted run leaves a log that ends where it stopped.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import platform
import subprocess
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from torch import Tensor

from profy.config import RunConfig, config_hash, to_dict
from profy.contract.atomic import atomic_write_text
from profy.contract.layout import CONFIG_FILE
from profy.contract.schemas import GATE_LOG_SCHEMA, QUALITY_FIELDS, STD_DDOF

__all__ = ["GateRecorder", "RunLog", "audio_stats_summary", "git_head", "library_versions",
           "log_run_header", "log_run_summary", "modality_weight_summary", "run_metadata",
           "utc_now"]

_LIBRARIES = ("torch", "torchaudio", "numpy", "pandas", "pyarrow", "safetensors", "pyyaml",
              "scikit-learn", "profy")


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        return "nan" if math.isnan(value) else f"{float(value):.6g}"
    text = str(value)
    return json.dumps(text) if not text or any(c.isspace() or c in '"=' for c in text) else text


class RunLog:
    """Collects ``training.log`` lines and rewrites the file atomically on :meth:`flush`.

    Args:
        path: the log file (``run_dir/training.log``).
        echo: optional callable given each line as it is added (e.g. a console).
    """

    def __init__(self, path: str | Path, *, echo: Any = None) -> None:
        self.path = Path(path)
        self.lines: list[str] = []
        self.echo = echo
        self.warnings: list[str] = []

    def line(self, prefix: str, **fields: Any) -> str:
        """Add ``PREFIX k=v ...`` and return it."""
        text = " ".join([prefix, *(f"{k}={_fmt(v)}" for k, v in fields.items())])
        self.lines.append(text)
        if self.echo is not None:
            self.echo(text)
        return text

    def warn(self, what: str, **fields: Any) -> None:
        """Add a ``WARNING`` line; the message is also kept in :attr:`warnings`."""
        self.warnings.append(what)
        self.line("WARNING", what=what, **fields)

    def flush(self) -> Path:
        """Rewrite the file with every line so far."""
        return atomic_write_text(self.path, "\n".join(self.lines) + "\n")


def git_head(start: str | Path | None = None) -> tuple[str, bool | None]:
    """``(commit, dirty)`` of the checkout holding ``start`` (default: this package).

    Returns ``("not a git checkout", None)`` outside git or without a git binary.
    """
    where = Path(start) if start is not None else Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return "not a git checkout", None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=where, capture_output=True, text=True, timeout=10)
        return head.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout", None


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on ("absent" if missing)."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def run_metadata(cfg: RunConfig, run_id: str, *, profile: str | None, device: str,
                 fold_seconds: dict[str, float] | None = None) -> dict[str, Any]:
    """The ``run`` object of ``complete_results.json``: id, config and its hash, profile,
    git commit, date, library versions, seed, device (and, once known, seconds per fold).

    The one place run metadata is built: by :func:`~profy.training.run_cv` (which also
    logs it, :func:`log_run_header`) and by ``profy collect`` for jobs trained apart.
    """
    head, dirty = git_head()
    meta = {"run_id": run_id, "config": to_dict(cfg), "config_hash": config_hash(cfg),
            "profile": profile, "git_hash": head, "git_dirty": dirty, "date": utc_now(),
            "versions": library_versions(), "seed": cfg.train.seed, "device": device}
    if fold_seconds is not None:
        meta["fold_seconds"] = fold_seconds
    return meta


def log_run_header(log: RunLog, meta: dict[str, Any], cfg: RunConfig, splits: pd.DataFrame,
                   *, cuda_available: bool) -> None:
    """The ``RUN``, ``CONFIG``, ``GIT``, ``VERSIONS``, ``SEED``, ``DEVICE``, ``DATA`` and one
    ``SPLIT`` line per fold, from :func:`run_metadata`'s ``meta`` and the run's splits."""
    log.line("RUN", id=meta["run_id"], started=meta["date"])
    log.line("CONFIG", hash=meta["config_hash"], profile=meta["profile"] or "(none)",
             file=CONFIG_FILE)
    dirty = meta["git_dirty"]
    log.line("GIT", head=meta["git_hash"], **({} if dirty is None else {"dirty": dirty}))
    log.line("VERSIONS", **meta["versions"])
    log.line("SEED", seed=cfg.train.seed, deterministic=cfg.train.deterministic,
             threads=cfg.train.num_threads)
    log.line("DEVICE", device=meta["device"], cuda_available=cuda_available)
    takes = splits.drop_duplicates("sample_id")
    counts = takes["label"].value_counts()
    log.line("DATA", takes=len(takes), players=takes["player_id"].nunique(),
             pro=int(counts.get("pro", 0)), amateur=int(counts.get("amateur", 0)),
             folds=cfg.train.n_folds, modes=",".join(cfg.train.modes))
    for fold, part in splits.groupby("fold"):
        roles = part["role"].value_counts()
        train_labels = part.loc[part["role"] == "train", "label"].value_counts()
        log.line("SPLIT", fold=int(fold), train=int(roles.get("train", 0)),
                 val=int(roles.get("val", 0)), test=int(roles.get("test", 0)),
                 train_pro=int(train_labels.get("pro", 0)),
                 train_amateur=int(train_labels.get("amateur", 0)))


def audio_stats_summary(stats: pd.DataFrame) -> dict[str, Any]:
    """One-line summary of ``audio_stats.parquet`` rows (the takes of this run)."""
    if stats.empty:
        return {"n": 0}
    return {"n": len(stats), "valid_frames_mean": float(stats["valid_frames"].mean()),
            "valid_frames_min": int(stats["valid_frames"].min()),
            "nonzero_frames_min": int(stats["nonzero_frames"].min()),
            "snr_db_median": float(stats["snr_db"].median()),
            "snr_db_min": float(stats["snr_db"].min()),
            "nonsilent_ratio_mean": float(stats["nonsilent_ratio"].mean()),
            "clipping_ratio_max": float(stats["clipping_ratio"].max()),
            "duration_s_mean": float(stats["duration_s"].mean()),
            "finite_all": bool(stats["finite"].all())}


class GateRecorder:
    """Collects gate outputs of sampled training batches for one fold (multimodal).

    Use :meth:`hook` as ``train_fold(on_gate=...)``; rows become ``gate_log.parquet``
    and each sampled batch adds one ``GATE`` line to the run log.
    """

    def __init__(self, fold: int, sample_ids: tuple[str, ...], log: RunLog | None = None,
                 *, mode: str = "multimodal") -> None:
        self.fold, self.sample_ids, self.log, self.mode = fold, sample_ids, log, mode
        self.rows: list[dict[str, Any]] = []

    def hook(self, epoch: int, batch: int, rows: Tensor, weights: Tensor, quality: Tensor,
             temperature: Tensor) -> None:
        """Record one batch: rows ``(B,)``, weights ``(B, 2)``, quality ``(B, 5)``, tau ``(B,)``."""
        w, q, t = weights.double().numpy(), quality.double().numpy(), temperature.double().numpy()
        for i, row in enumerate(rows.tolist()):
            self.rows.append({"epoch": epoch, "batch": batch, "fold": self.fold,
                              "sample_id": self.sample_ids[row], "sensor_weight": w[i, 0],
                              "audio_weight": w[i, 1],
                              **{name: q[i, j] for j, name in enumerate(QUALITY_FIELDS)},
                              "temperature": t[i]})
        if self.log is not None:
            self.log.line("GATE", mode=self.mode, fold=self.fold, epoch=epoch, batch=batch,
                          n=len(rows), sensor_weight_mean=float(w[:, 0].mean()),
                          sensor_weight_min=float(w[:, 0].min()),
                          audio_weight_mean=float(w[:, 1].mean()),
                          snr_db_mean=float(q[:, 0].mean()),
                          nonsilent_ratio_mean=float(q[:, 1].mean()),
                          temperature_mean=float(t.mean()))

    def table(self) -> pa.Table:
        """The rows as a ``GATE_LOG_SCHEMA`` table (possibly empty)."""
        return pa.Table.from_pylist(self.rows, schema=GATE_LOG_SCHEMA)


def modality_weight_summary(weights: pd.DataFrame, *, threshold: float = 0.5
                            ) -> list[dict[str, Any]]:
    """Per fold and over all folds: how the multimodal gate split the held-out takes.

    Args:
        weights: ``modality_weights.parquet`` rows.
        threshold: the sensor share the plan asks most takes to reach. (Default: ``0.5``)

    Returns:
        list[dict]: one dict per fold, then ``fold="all"``: ``n``, ``mean_sensor``,
        ``std_sensor``, ``median_sensor``, ``min_sensor``, ``frac_sensor_ge_0.5``,
        ``mean_audio``, ``mean_temperature``, ``accuracy``.
    """
    def one(fold: Any, part: pd.DataFrame) -> dict[str, Any]:
        s = part["sensor_weight"].to_numpy(dtype=float)
        return {"fold": fold, "n": len(part), "mean_sensor": float(s.mean()),
                "std_sensor": float(s.std()), "median_sensor": float(np.median(s)),
                "min_sensor": float(s.min()),
                f"frac_sensor_ge_{threshold:g}": float((s >= threshold).mean()),
                "mean_audio": float(part["audio_weight"].mean()),
                "mean_temperature": float(part["gate_temperature"].mean()),
                "accuracy": float(part["correct"].mean())}

    if weights.empty:
        return []
    out = [one(int(fold), part) for fold, part in weights.groupby("fold", sort=True)]
    out.append(one("all", weights))
    return out


def log_run_summary(log: RunLog, modes: Sequence[str], weights: pd.DataFrame,
                    folds: Iterable[tuple[str, float, float]]) -> None:
    """The end of ``training.log``: ``MODALITY_WEIGHTS`` lines, the sensor-share warning and
    one ``RESULT`` line per mode. Written by a whole run and by ``profy collect`` alike.

    Args:
        log: the run's log.
        modes: the modes trained, in config order.
        weights: ``modality_weights.parquet`` rows (empty when multimodal did not train).
        folds: ``(mode, held-out macro F1, seconds)`` per trained (mode, fold), fold order.
    """
    for row in modality_weight_summary(weights):
        log.line("MODALITY_WEIGHTS", **row)
    if "multimodal" in modes and not weights.empty:
        share = float((weights["sensor_weight"] >= 0.5).mean())
        if share < 0.8:
            log.warn("sensor weight >= 0.5 for less than 80% of held-out takes",
                     frac_sensor_ge_0_5=share)
    folds = list(folds)
    for mode in modes:
        f1 = np.array([f for m, f, _ in folds if m == mode])
        log.line("RESULT", mode=mode, macro_f1_mean=float(f1.mean()),
                 macro_f1_std=float(f1.std(ddof=STD_DDOF)),
                 per_fold=",".join(f"{v:.4f}" for v in f1),
                 seconds=float(sum(sec for m, _, sec in folds if m == mode)))


def utc_now() -> str:
    """ISO-8601 UTC time, seconds precision."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
