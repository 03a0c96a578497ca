"""Function forms of :class:`~profy.training._run_folder.RunFolder` methods: the public
``profy.training`` names callers used before the run folder became one object."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from profy.config import RunConfig
from profy.contract.layout import shard_dir
from profy.training._merge import merge_shards, read_shard_result
from profy.training._run_folder import RunFolder

__all__ = ["claim_run_dir", "clean_temp_files", "collect", "collect_run", "create_run_dir",
           "missing_shards", "open_run_dir", "profile_of", "read_shard_result", "saved_config",
           "shard_dir", "write_confusion", "write_shard"]

collect_run = merge_shards  # merge every finished shard into the run-level files


def create_run_dir(runs_dir: str | Path, *, now: dt.datetime | None = None) -> Path:
    """Create ``runs_dir/experiment_YYYYMMDD_HHMMSS`` (``_2``, ``_3``... if taken)."""
    return RunFolder.create(runs_dir, now=now).run_dir


def open_run_dir(run_dir: str | Path, *, need_features: bool = True) -> RunFolder:
    """Check and open a run folder made by ``profy train`` (:meth:`RunFolder.open`)."""
    return RunFolder.open(run_dir, need_features=need_features)


def claim_run_dir(cfg: RunConfig, run_dir: str | Path, splits: pd.DataFrame) -> None:
    """Write config, hash and splits into ``run_dir`` under an exclusive claim, or check that
    the ones there are the same (:meth:`RunFolder.claim`).

    Raises:
        ConfigError: the folder holds another config (hash) or other splits.
    """
    RunFolder(run_dir).claim(cfg, splits)


def saved_config(run_dir: str | Path) -> RunConfig:
    """The run's ``config.yaml``, checked against its ``config_hash`` file."""
    return RunFolder(run_dir).saved_config()


def missing_shards(run_dir: str | Path, cfg: RunConfig, splits: pd.DataFrame
                   ) -> tuple[list[str], list[str]]:
    """(mode, fold) shards not finished, and finished ones of another run
    (:meth:`RunFolder.missing`)."""
    return RunFolder(run_dir, cfg, splits).missing()


def collect(run_dir: str | Path, *, run_meta: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    """``profy collect``: merge a run's finished shards into the run-level files.

    Raises:
        MissingInputError, ConfigError: not a run folder, or a folder edited since.
        ConfigError: a shard is missing or belongs to another config (all are listed).
    """
    return RunFolder.open(run_dir, need_features=False).collect(run_meta=run_meta)


def clean_temp_files(run_dir: str | Path) -> list[Path]:
    """Remove ``.*.tmp`` leftovers of interrupted atomic writes; returns what was removed."""
    return RunFolder(run_dir).clean()


def profile_of(run_dir: str | Path) -> str | None:
    """The profile recorded on a ``CONFIG`` line of the run's logs (``None`` if none)."""
    return RunFolder(run_dir).profile()


def write_shard(run_dir: str | Path, mode: str, fold: int, *, tables: dict[str, pa.Table],
                result: dict[str, Any]) -> Path:
    """Write one (mode, fold)'s tables, then its ``result.json`` (the completion marker)."""
    return RunFolder(run_dir).write_shard(mode, fold, tables=tables, result=result)


def write_confusion(run_dir: str | Path, mode: str, fold: int, cm: Any) -> tuple[Path, Path]:
    """``confusion/<mode>_fold<K>.json`` and ``.csv`` for a 2x2 matrix (rows = true label)."""
    return RunFolder(run_dir).write_confusion(mode, fold, cm)

