"""Run exports in fresh spawned processes (one model per process), several in parallel.

A second dynamo export in one process can come out with a fixed time axis, so every
model gets its own process (``max_tasks_per_child=1``); ``workers`` of them run at once.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from profy.contract.layout import CHECKPOINTS_DIR, EPOCHS_FILE, run_checkpoints
from profy.export._export import ExportResult, export_in_process

__all__ = ["export_model", "export_models", "select_models"]


def select_models(run_dir: str | Path, *, modes: Sequence[str] | None = None,
                  fold: int | None = None, all_folds: bool = False) -> list[tuple[str, int]]:
    """The ``(mode, fold)`` pairs to export.

    Default: every mode with checkpoints, each at its best fold by **validation** score
    (the kept epoch's ``val_macro_f1`` in ``epochs.parquet``; ties and a run without it:
    the lowest fold). Held-out (test) scores are never consulted: a release fold picked on
    them carries the best-of-k selection bias into every comparison on those takes (the
    smoke replay's winner's curse). ``fold`` picks one fold, ``all_folds`` all.

    Raises:
        MissingInputError: the run has no checkpoint of a requested mode/fold.
    """
    from profy.errors import MissingInputError

    run_dir = Path(run_dir)
    found = run_checkpoints(run_dir)
    wanted = list(modes) if modes else sorted(found)
    if not wanted:
        raise MissingInputError(run_dir / CHECKPOINTS_DIR, "no checkpoint to export")
    results = _validation_scores(run_dir / EPOCHS_FILE)
    pairs = []
    for mode in wanted:
        folds = sorted(found.get(mode, []))
        if not folds:
            raise MissingInputError(run_dir / CHECKPOINTS_DIR, f"no {mode} checkpoint")
        if all_folds:
            pairs += [(mode, k) for k in folds]
        elif fold is not None:
            if fold not in folds:
                raise MissingInputError(run_dir / CHECKPOINTS_DIR, f"no {mode} fold {fold}")
            pairs.append((mode, fold))
        else:
            pairs.append((mode, _best_fold(results.get(mode, {}), folds)))
    return pairs


def _validation_scores(path: Path) -> dict[str, dict[int, float]]:
    """``mode -> fold -> val_macro_f1`` of the kept epoch (``best``); {} without the file."""
    import pyarrow.parquet as pq

    if not path.is_file():
        return {}
    out: dict[str, dict[int, float]] = {}
    for row in pq.read_table(path, columns=["mode", "fold", "val_macro_f1", "best"]).to_pylist():
        if row["best"]:
            out.setdefault(row["mode"], {})[int(row["fold"])] = float(row["val_macro_f1"])
    return out


def _best_fold(val_f1: dict[int, float], folds: list[int]) -> int:
    """Highest validation macro F1 among ``folds`` (ties, or no score: the lowest fold)."""
    scored = [k for k in sorted(folds) if k in val_f1]
    return max(scored, key=lambda k: val_f1[k]) if scored else sorted(folds)[0]


def export_model(run_dir: str | Path, mode: str, fold: int, *, out_dir: str | Path | None = None,
                 tag: str | None = None) -> ExportResult:
    """Export one model in a fresh process; see :func:`export_in_process`."""
    return export_models(run_dir, [(mode, fold)], out_dir=out_dir, tag=tag, workers=1)[0]


def export_models(run_dir: str | Path, pairs: Sequence[tuple[str, int]], *,
                  out_dir: str | Path | None = None,
                  tag: str | Mapping[tuple[str, int], str] | None = None,
                  workers: int = 2) -> list[ExportResult]:
    """Export ``pairs`` of ``(mode, fold)``, each in its own spawned process.

    ``tag`` goes into every model's metadata; a mapping ``(mode, fold) -> tag`` gives each
    pair its own (a release pair of two tags exports in one parallel batch), ``""`` for a
    pair it lacks. Threads per process = 2 // workers (at least 1), so the machine's 2
    cores are shared. Errors of a worker (``ProfyError``) propagate with their message.
    """
    pairs = [(str(m), int(k)) for m, k in pairs]
    tags = dict(tag) if isinstance(tag, Mapping) else dict.fromkeys(pairs, tag)
    workers = max(1, min(workers, len(pairs)))
    threads = max(1, 2 // workers)
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = [pool.submit(export_in_process, str(run_dir), m, k, out_dir=out_dir,
                               tag=tags.get((m, k)), threads=threads) for m, k in pairs]
        return [f.result() for f in futures]
