"""Shared tail of every replay: turn measurements into results and a history row.

Every result a replay returns names what was replayed (``details``): the run
(``run``), whether it is the judged run's own export (``candidate``) or a tag's, the
model label (``model``: the tag, or the run's folder name for a candidate), each ONNX
file with its sha256 (``onnx_files``), and how the fold was chosen (``fold_choice``).
The history row stores the same under ``metrics_json["evidence"]`` (its ``run_dir`` and
``model_sha256`` columns hold the run and the hash too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from guardrails._result import CheckResult
from guardrails.replay._features import batch_sha256
from guardrails.replay._history import append_history, history_row
from guardrails.replay._setup import Replay, history_path

__all__ = ["evidence", "record", "short"]


def short(path: str | Path, sha256: str, run_dir: str | Path | None = None) -> str:
    """``RUN/onnx/x.onnx sha256 0123456789ab``: a file and its hash, for a message."""
    path = Path(path)
    name = f"{Path(run_dir).name}/{path.relative_to(run_dir)}" if run_dir is not None \
        and path.is_relative_to(run_dir) else str(path)
    return f"{name} sha256 {sha256[:12]}"


def evidence(replay: Replay, onnx_files: Mapping[str, str]) -> dict[str, Any]:
    """What was replayed: run, model label, ONNX files with their sha256, fold choice."""
    return {"run": str(Path(replay.model.run_dir)), "candidate": replay.candidate,
            "model": replay.model.tag, "mode": replay.model.mode,
            "onnx_files": dict(onnx_files), "fold_choice": replay.fold_choice,
            "baseline": replay.baseline.tag if replay.baseline else None,
            "baseline_run": str(replay.baseline.run_dir) if replay.baseline else None}


def record(kind: str, replay: Replay, *, model_sha256: str, results: list[CheckResult],
           metrics: dict[str, Any], macro_f1: float | None, latency_ms: float | None,
           baseline_f1: float | None, history: str, data_sha256: str | None = None,
           n_takes: int | None = None, fold: int | None = -1,
           onnx_files: Mapping[str, str] | None = None) -> list[CheckResult]:
    """Append one history row for this replay and note it in every result's details.

    ``data_sha256``, ``n_takes`` and ``fold`` override the replay's own (a benchmark
    over several folds passes its combined set; ``fold=None`` records no single fold).
    ``onnx_files`` (path -> sha256) lists every ONNX file the replay ran (default: the
    model's file at the replay's fold). The row's verdict is ``fail`` when any result
    failed (whatever its severity: the history records what was measured; the criteria
    decide what fails a release).
    """
    path = history_path(replay.registry, history)
    verdict = "pass" if all(r.passed for r in results) else "fail"
    fold = replay.fold if fold == -1 else fold
    what = evidence(replay, onnx_files or {str(replay.onnx()): model_sha256})
    row = history_row(kind=kind, tag=replay.model.tag, model_sha256=model_sha256,
                      data_sha256=data_sha256 or batch_sha256(replay.batch),
                      n_takes=len(replay.batch) if n_takes is None else n_takes,
                      macro_f1=macro_f1, latency_ms=latency_ms,
                      metrics={**metrics, "evidence": what}, verdict=verdict,
                      baseline_tag=replay.baseline.tag if replay.baseline else None,
                      fold=fold, baseline_f1=baseline_f1,
                      run_dir=str(Path(replay.model.run_dir)))
    n_rows = append_history(path, row)
    note = {"history": str(path), "history_rows": n_rows, "model_sha256": model_sha256,
            "data_sha256": row["data_sha256"], "fold": fold, **what}
    return [dataclasses.replace(r, details={**r.details, **note}) for r in results]
