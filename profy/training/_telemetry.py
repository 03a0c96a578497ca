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
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from torch import Tensor

from profy.contract.atomic import atomic_write_text
from profy.contract.schemas import GATE_LOG_SCHEMA, QUALITY_FIELDS

__all__ = ["GateRecorder", "RunLog", "audio_stats_summary", "git_head", "library_versions",
           "modality_weight_summary", "utc_now"]

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


def utc_now() -> str:
    """ISO-8601 UTC time, seconds precision."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
