"""The run folder (DESIGN.md section 3) as one object: create, claim, open, shards, collect.

A run folder's identity is its ``config.yaml`` (with ``config_hash``) and its
``splits.parquet``. :meth:`RunFolder.claim` writes them into a fresh folder (atomically
against other jobs starting at the same instant, :mod:`profy.training._claim`), or checks
that a folder already holding them was made with the same config and splits, so a resumed
run or a second ``--only-fold`` job can never mix results of two experiments.

A finished (mode, fold) lives in ``folds/<mode>_fold<K>/``: its tables and ``result.json``,
written LAST: a shard without ``result.json`` is incomplete and is never merged. Every
file is written atomically (temporary file + rename, :mod:`profy.contract.atomic`), so a
``kill -9`` leaves at most a ``.<name>.<random>.tmp`` leftover, never a partial file under
its real name; :meth:`RunFolder.clean` removes such leftovers before a run goes on. Its
checkpoint and confusion matrices go straight to ``checkpoints/`` and ``confusion/``.
:meth:`RunFolder.collect` merges the shards (:mod:`profy.training._merge`), so folds
trained by separate jobs (or a resumed run) merge the same way as folds trained at once.

    folder = RunFolder.create("runs/")            # runs/experiment_YYYYMMDD_HHMMSS
    folder.claim(cfg, splits)                     # or RunFolder(path).claim(...) to share
    folder.write_shard("sensor", 0, tables=..., result=...)
    folder.missing()                              # (["sensor fold 1", ...], [])
    folder.collect()                              # complete_results.json
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from profy.config import RunConfig, config_hash, load_profile
from profy.contract.atomic import atomic_write_json, atomic_write_text, write_parquet_atomic
from profy.contract.layout import (
    AUDIO_STATS_FILE,
    CHECKPOINTS_DIR,
    CLAIM_FILE,
    COMPLETE_RESULTS_FILE,
    CONFIG_FILE,
    CONFIG_HASH_FILE,
    CONFUSION_DIR,
    FEATURE_INDEX_FILE,
    FEATURES_DIR,
    FOLDS_DIR,
    MODALITY_WEIGHTS_FILE,
    SHARD_FILES,
    SHARD_RESULT_FILE,
    SPLITS_FILE,
    checkpoint_name,
    shard_dir,
)
from profy.contract.schemas import LABELS, MODES
from profy.errors import ConfigError, MissingInputError
from profy.training._claim import claim
from profy.training._merge import MERGED_SCHEMAS, merge_shards, read_shard_result
from profy.training._telemetry import RunLog, log_run_summary, run_metadata

__all__ = ["LOG_FILE", "LOGS_DIR", "NORM_STATS_DIR", "RunFolder", "fold_log_name"]

LOG_FILE = "training.log"  # the run's log; --only-fold jobs log to logs/ first
LOGS_DIR = "logs"
NORM_STATS_DIR = "norm_stats"  # fold_K.json, written by profy.features.fit_fold_norm_stats
_SPLIT_COLUMNS = ["sample_id", "player_id", "piece", "label", "fold", "role"]


def fold_log_name(folds: Sequence[int]) -> str:
    """``logs/training_fold<K_...>.log``: the log of one ``--only-fold`` job."""
    return f"{LOGS_DIR}/training_fold{'_'.join(map(str, folds))}.log"


def _canonical_splits(splits: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in _SPLIT_COLUMNS if c in splits.columns]
    frame = splits[cols].astype({"fold": "int64"}) if "fold" in cols else splits[cols]
    return frame.sort_values(["fold", "sample_id"], kind="stable").reset_index(drop=True)


class RunFolder:
    """One run folder: its identity (config, splits), shards, merge and cleanup.

    Args:
        run_dir: the folder.
        cfg: its config, once known (:meth:`open` and :meth:`claim` set it).
        splits: its ``splits.parquet`` rows, once known.
    """

    def __init__(self, run_dir: str | Path, cfg: RunConfig | None = None,
                 splits: pd.DataFrame | None = None) -> None:
        self.run_dir, self.cfg, self.splits = Path(run_dir), cfg, splits

    # --- create / open ---------------------------------------------------------------
    @classmethod
    def create(cls, runs_dir: str | Path, *, now: dt.datetime | None = None) -> RunFolder:
        """Create ``runs_dir/experiment_YYYYMMDD_HHMMSS`` (``_2``, ``_3``... if taken)."""
        runs_dir = Path(runs_dir)
        runs_dir.mkdir(parents=True, exist_ok=True)
        stamp = (now or dt.datetime.now()).strftime("experiment_%Y%m%d_%H%M%S")
        for n in range(1, 1000):
            path = runs_dir / (stamp if n == 1 else f"{stamp}_{n}")
            try:
                path.mkdir()
                return cls(path)
            except FileExistsError:
                continue
        raise ConfigError(f"{runs_dir}: cannot find a free run folder name for {stamp}")

    @classmethod
    def open(cls, run_dir: str | Path, *, need_features: bool = True) -> RunFolder:
        """Check and open a run folder made by ``profy train`` (for ``--resume`` / collect).

        Raises:
            MissingInputError: no such folder, or it lacks config, splits or feature index.
            ConfigError: ``config.yaml`` no longer matches ``config_hash``, or the splits do
                not have the config's number of folds.
        """
        folder = cls(Path(run_dir).resolve())
        if not folder.run_dir.is_dir():
            raise MissingInputError(folder.run_dir, "run folder does not exist")
        folder.cfg = folder.saved_config()
        if not folder.splits_path.is_file():
            raise MissingInputError(folder.splits_path, f"run folder has no {SPLITS_FILE}")
        folder.splits = pq.read_table(folder.splits_path).to_pandas()
        folds = sorted(int(k) for k in folder.splits["fold"].unique())
        if folds != list(range(folder.cfg.train.n_folds)):
            raise ConfigError(f"{folder.splits_path}: folds {folds}, config has "
                              f"{folder.cfg.train.n_folds}")
        if need_features and not folder.feature_index.is_file():
            raise MissingInputError(folder.feature_index,
                                    "run folder has no feature index; it cannot be resumed")
        return folder

    # --- paths -----------------------------------------------------------------------
    @property
    def splits_path(self) -> Path:
        return self.run_dir / SPLITS_FILE

    @property
    def feature_index(self) -> Path:
        """``features/feature_index.parquet`` written by ``profy train``."""
        return self.run_dir / FEATURES_DIR / FEATURE_INDEX_FILE

    @property
    def audio_stats(self) -> Path | None:
        """The run's ``audio_stats.parquet`` (features/ copy first), if any."""
        for path in (self.run_dir / FEATURES_DIR / AUDIO_STATS_FILE,
                     self.run_dir / AUDIO_STATS_FILE):
            if path.is_file():
                return path
        return None

    def shard_dir(self, mode: str, fold: int) -> Path:
        """``folds/<mode>_fold<K>``: one (mode, fold)'s shard."""
        return shard_dir(self.run_dir, mode, fold)

    def checkpoint_path(self, mode: str, fold: int) -> Path:
        return self.run_dir / CHECKPOINTS_DIR / checkpoint_name(mode, fold)

    def norm_stats_path(self, fold: int) -> Path:
        return self.run_dir / NORM_STATS_DIR / f"fold_{int(fold)}.json"

    # --- identity: config and splits -------------------------------------------------
    def saved_config(self) -> RunConfig:
        """The run's ``config.yaml``, checked against its ``config_hash`` file."""
        yaml_path, hash_path = self.run_dir / CONFIG_FILE, self.run_dir / CONFIG_HASH_FILE
        for path in (yaml_path, hash_path):
            if not path.is_file():
                raise MissingInputError(path, f"{self.run_dir} is not a run folder "
                                              f"(no {path.name})")
        cfg = load_profile(yaml_path)
        recorded = hash_path.read_text(encoding="utf-8").strip()
        if config_hash(cfg) != recorded:
            raise ConfigError(f"{self.run_dir}: {CONFIG_FILE} hashes to {config_hash(cfg)} but "
                              f"the run's {CONFIG_HASH_FILE} is {recorded}; the folder was "
                              "edited, refusing to continue it")
        return cfg

    def claim(self, cfg: RunConfig, splits: pd.DataFrame, *, timeout: float | None = None,
              stale_after: float | None = None) -> bool:
        """Make this folder ``cfg``'s run with ``splits``, or check that it already is.

        The first of several jobs writes ``config.yaml``, ``config_hash`` and
        ``splits.parquet`` under an exclusive claim; the others wait for it, then verify
        (:func:`profy.training._claim.claim`; ``timeout`` defaults to
        ``$PROFY_CLAIM_TIMEOUT_S`` or 300 s, ``stale_after`` to ``$PROFY_CLAIM_STALE_S`` or
        120 s). Returns ``True`` for the job that wrote them.

        Raises:
            ConfigError: the folder holds another config (hash) or other splits.
            MissingInputError: another job's claim did not complete within ``timeout``.
        """
        self.cfg, self.splits = cfg, splits
        return claim(self.run_dir, config_hash=config_hash(cfg),
                     write=lambda: self._write_identity(cfg, splits),
                     verify=lambda: self._verify_identity(cfg, splits),
                     timeout=timeout, stale_after=stale_after)

    def is_claimed(self) -> bool:
        """Whether a job has claimed the folder (its claim may still be in progress)."""
        return (self.run_dir / CLAIM_FILE).is_file()

    def _write_identity(self, cfg: RunConfig, splits: pd.DataFrame) -> None:
        """(Claimer) write config, hash and splits; a complete set already there (a folder
        made before claims existed) is verified instead, never overwritten."""
        from profy.data import write_splits

        names = (CONFIG_FILE, CONFIG_HASH_FILE, SPLITS_FILE)
        if all((self.run_dir / n).is_file() for n in names):
            self._verify_identity(cfg, splits)
            return
        atomic_write_text(self.run_dir / CONFIG_FILE, cfg.to_yaml())
        atomic_write_text(self.run_dir / CONFIG_HASH_FILE, config_hash(cfg) + "\n")
        write_splits(splits, self.splits_path)

    def _verify_identity(self, cfg: RunConfig, splits: pd.DataFrame) -> None:
        saved = self.saved_config()
        if config_hash(saved) != config_hash(cfg):
            raise ConfigError(f"{self.run_dir} holds a run with config hash "
                              f"{config_hash(saved)}; this job's config hashes to "
                              f"{config_hash(cfg)}. Use another --run-dir, or the same config")
        if not self.splits_path.is_file():
            raise MissingInputError(self.splits_path, f"run folder has no {SPLITS_FILE}")
        saved_splits = pq.read_table(self.splits_path).to_pandas()
        if not _canonical_splits(saved_splits).equals(_canonical_splits(splits)):
            raise ConfigError(f"{self.splits_path}: this job's splits differ from the run's "
                              "(another corpus, seed or fold count); refusing to mix them")

    # --- shards ----------------------------------------------------------------------
    def write_shard(self, mode: str, fold: int, *, tables: dict[str, pa.Table],
                    result: dict[str, Any]) -> Path:
        """Write one (mode, fold)'s tables, then its ``result.json`` (the completion marker).

        Args:
            tables: file name (one of ``SHARD_FILES``) -> table in its declared schema.
            result: JSON-ready summary (metrics, epochs, seconds, model summary, ...).
        """
        out = self.shard_dir(mode, fold)
        for name, table in tables.items():
            if name not in MERGED_SCHEMAS:
                raise ValueError(f"unknown shard file {name!r}; expected one of {SHARD_FILES}")
            if not table.schema.equals(MERGED_SCHEMAS[name], check_metadata=True):
                raise ValueError(f"{name}: schema differs from the declared one")
            write_parquet_atomic(table, out / name)
        return atomic_write_json(out / SHARD_RESULT_FILE,
                                 {"mode": mode, "fold": int(fold), **result})

    def write_confusion(self, mode: str, fold: int, cm: Any) -> tuple[Path, Path]:
        """``confusion/<mode>_fold<K>.json`` and ``.csv`` for a 2x2 matrix (rows = true)."""
        from profy.evaluation.results import confusion_csv

        base = self.run_dir / CONFUSION_DIR / f"{mode}_fold{int(fold)}"
        matrix = [[int(v) for v in row] for row in cm]
        json_path = atomic_write_json(base.with_suffix(".json"), {
            "mode": mode, "fold": int(fold), "labels": list(LABELS), "rows": "true label",
            "columns": "predicted label", "matrix": matrix})
        csv_path = atomic_write_text(base.with_suffix(".csv"), confusion_csv(cm))
        return json_path, csv_path

    def is_finished(self, mode: str, fold: int) -> bool:
        return (self.shard_dir(mode, fold) / SHARD_RESULT_FILE).is_file()

    def read_result(self, mode: str, fold: int) -> dict[str, Any]:
        """A finished shard's ``result.json`` (see :func:`_merge.read_shard_result`)."""
        return read_shard_result(self.run_dir, mode, fold)

    def missing(self) -> tuple[list[str], list[str]]:
        """Names of the (mode, fold) shards not finished, and of finished ones that do not
        belong to this run (another config hash, or another held-out set size)."""
        cfg, splits = self._identity()
        missing, mismatched = [], []
        want = config_hash(cfg)
        modes = [m for m in MODES if m in cfg.train.modes]
        for fold in range(cfg.train.n_folds):
            n_test = int(((splits["fold"] == fold) & (splits["role"] == "test")).sum())
            for mode in modes:
                name = f"{mode} fold {fold}"
                if not self.is_finished(mode, fold):
                    missing.append(name)
                    continue
                result = self.read_result(mode, fold)
                if result.get("config_hash", want) != want:
                    mismatched.append(f"{name} (config {result['config_hash']})")
                elif int(result.get("n_test", n_test)) != n_test:
                    mismatched.append(f"{name} ({result['n_test']} held-out takes, splits "
                                      f"have {n_test})")
        return missing, mismatched

    def _identity(self) -> tuple[RunConfig, pd.DataFrame]:
        if self.cfg is None or self.splits is None:
            raise ConfigError(f"{self.run_dir}: config and splits are not known yet "
                              "(open or claim the folder first)")
        return self.cfg, self.splits

    # --- merge, cleanup, logs --------------------------------------------------------
    def merge(self, *, run_meta: dict[str, Any], modes: Sequence[str] | None = None,
              n_folds: int | None = None, slices: pd.DataFrame | None = None
              ) -> dict[str, Any]:
        """Merge every finished shard into the run-level files (:func:`merge_shards`)."""
        if modes is None or n_folds is None:
            cfg, _ = self._identity()
            modes, n_folds = cfg.train.modes, cfg.train.n_folds
        return merge_shards(self.run_dir, modes=modes, n_folds=n_folds, run_meta=run_meta,
                            slices=slices)

    def collect(self, *, run_meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """``profy collect``: check every shard is in, merge them, join the jobs' logs.

        Writes ``complete_results.json``, the merged Parquet files and (when the folds were
        trained as separate jobs) a ``training.log`` joining the jobs' logs.

        Raises:
            ConfigError: a shard is missing or belongs to another config (all are listed).
        """
        cfg, _ = self._identity()
        self.clean()
        missing, mismatched = self.missing()
        if missing or mismatched:
            parts = ([f"missing: {', '.join(missing)}"] if missing else []) + \
                ([f"mismatched: {', '.join(mismatched)}"] if mismatched else [])
            raise ConfigError(f"{self.run_dir}: cannot collect, {'; '.join(parts)}")
        if run_meta is None:
            results = {(m, k): self.read_result(m, k) for m in cfg.train.modes
                       for k in range(cfg.train.n_folds)}
            device = str(next(iter(results.values())).get("device", "unknown"))
            run_meta = run_metadata(cfg, self.run_dir.name, profile=self.profile(),
                                    device=device, fold_seconds={
                                        f"{m}_fold{k}": float(r["seconds"])
                                        for (m, k), r in results.items()})
        obj = self.merge(run_meta=run_meta)
        self._join_job_logs()
        return obj

    def _join_job_logs(self) -> None:
        """``training.log`` = the ``--only-fold`` jobs' logs and the run's summary (as a
        whole run ends its log: :func:`log_run_summary`), when there is none yet."""
        logs = sorted((self.run_dir / LOGS_DIR).glob("*.log"))
        if not logs or (self.run_dir / LOG_FILE).is_file():
            return
        cfg, _ = self._identity()
        log = RunLog(self.run_dir / LOG_FILE)
        log.lines = "".join(p.read_text("utf-8") for p in logs).splitlines()
        weights = pq.read_table(self.run_dir / MODALITY_WEIGHTS_FILE).to_pandas()
        results = [self.read_result(m, k) for m in cfg.train.modes
                   for k in range(cfg.train.n_folds)]
        log_run_summary(log, cfg.train.modes, weights,
                        [(r["mode"], float(r["test_macro_f1"]), float(r["seconds"]))
                         for r in results])
        log.line("COLLECT", jobs=len(logs), results=COMPLETE_RESULTS_FILE)
        log.flush()

    def clean(self, folds: Iterable[int] | None = None) -> list[Path]:
        """Remove ``.*.tmp`` leftovers of interrupted atomic writes; returns what was removed.

        With ``folds``, only the leftovers of those folds' shards, checkpoints, confusion
        matrices and job log: other jobs sharing the folder may be writing theirs now.
        """
        own = None if folds is None else tuple(
            f".{mode}_fold{int(k)}." for mode in MODES for k in folds) + (
            f".{Path(fold_log_name(sorted(folds))).name}.",)
        removed = []
        for path in sorted(self.run_dir.rglob(".*.tmp")):
            if own is not None and not (path.name.startswith(own) or self._in_shard(path, own)):
                continue
            if path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    def _in_shard(self, path: Path, own: tuple[str, ...]) -> bool:
        """Whether ``path`` lies in one of the shard folders ``own`` names."""
        rel = path.relative_to(self.run_dir).parts
        return len(rel) > 2 and rel[0] == FOLDS_DIR and f".{rel[1]}." in own

    def profile(self) -> str | None:
        """The profile recorded on a ``CONFIG`` line of the run's logs (``None`` if none)."""
        logs = [self.run_dir / LOG_FILE, *sorted((self.run_dir / LOGS_DIR).glob("*.log"))]
        for log in logs:
            if log.is_file():
                found = re.search(r"^CONFIG hash=\S+ profile=(\S+)", log.read_text("utf-8"),
                                  re.M)
                if found and found.group(1) != "(none)":
                    return found.group(1)
        return None
