"""Helpers of the dashboard notebook (``profy/docs/dashboard.ipynb``).

Kept in the package, not in the notebook, so they are tested and ruff-checked like the
rest of the code and the notebook stays a thin layout of calls.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from profy.contract.layout import COMPLETE_RESULTS_FILE, GATE_LOG_FILE
from profy.errors import MissingInputError
from profy.visualization._artifacts import read_table

__all__ = ["gate_log_summary", "latest_run", "notebook_path"]


def notebook_path() -> Path:
    """Where the dashboard notebook ships (package data)."""
    return Path(__file__).resolve().parent.parent / "docs" / "dashboard.ipynb"


def latest_run(runs_dir: str | Path) -> Path:
    """The newest finished run under ``runs_dir`` (or ``runs_dir`` itself if it is one).

    A run is finished when it holds ``complete_results.json``; newest means the latest
    ``complete_results.json`` modification time, the folder name breaking ties (run
    names are ``experiment_YYYYMMDD_HHMMSS``). Folders of interrupted runs are skipped.

    Raises:
        MissingInputError: ``runs_dir`` is absent or holds no finished run.
    """
    root = Path(runs_dir)
    if (root / COMPLETE_RESULTS_FILE).is_file():
        return root.resolve()
    if not root.is_dir():
        raise MissingInputError(root, "runs folder not found (set PROFY_RUNS)")
    runs = [p for p in root.iterdir() if (p / COMPLETE_RESULTS_FILE).is_file()]
    if not runs:
        raise MissingInputError(root, "no finished run folder (with complete_results.json)")
    return max(runs, key=lambda p: ((p / COMPLETE_RESULTS_FILE).stat().st_mtime_ns,
                                    p.name)).resolve()


def gate_log_summary(run: str | Path) -> pd.DataFrame:
    """Mean gate outputs per fold and epoch from ``gate_log.parquet`` (training batches).

    Returns:
        DataFrame indexed by ``(fold, epoch)`` with ``takes``, mean ``sensor_weight``,
        min ``sensor_weight``, mean ``snr_db`` and mean ``temperature``.
    """
    frame = read_table(Path(run), GATE_LOG_FILE,
                       ("fold", "epoch", "sensor_weight", "snr_db", "temperature"))
    grouped = frame.groupby(["fold", "epoch"], sort=True)
    return pd.DataFrame({
        "takes": grouped.size(),
        "sensor_weight": grouped["sensor_weight"].mean(),
        "sensor_weight_min": grouped["sensor_weight"].min(),
        "snr_db": grouped["snr_db"].mean(),
        "temperature": grouped["temperature"].mean(),
    })
