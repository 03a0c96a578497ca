"""Shared tail of every replay: turn measurements into results and a history row."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from guardrails._result import CheckResult
from guardrails.replay._features import batch_sha256
from guardrails.replay._history import append_history, history_row
from guardrails.replay._setup import Replay, history_path

__all__ = ["record"]


def record(kind: str, replay: Replay, *, model_sha256: str, results: list[CheckResult],
           metrics: dict[str, Any], macro_f1: float | None, latency_ms: float | None,
           baseline_f1: float | None, history: str, data_sha256: str | None = None,
           n_takes: int | None = None, fold: int | None = -1) -> list[CheckResult]:
    """Append one history row for this replay and note it in every result's details.

    ``data_sha256``, ``n_takes`` and ``fold`` override the replay's own (a benchmark
    over several folds passes its combined set; ``fold=None`` records no single fold).
    The row's verdict is ``fail`` when any result failed (whatever its severity: the
    history records what was measured; the criteria decide what fails a release).
    """
    path = history_path(replay.registry, history)
    verdict = "pass" if all(r.passed for r in results) else "fail"
    fold = replay.fold if fold == -1 else fold
    row = history_row(kind=kind, tag=replay.model.tag, model_sha256=model_sha256,
                      data_sha256=data_sha256 or batch_sha256(replay.batch),
                      n_takes=len(replay.batch) if n_takes is None else n_takes,
                      macro_f1=macro_f1, latency_ms=latency_ms, metrics=metrics,
                      verdict=verdict,
                      baseline_tag=replay.baseline.tag if replay.baseline else None,
                      fold=fold, baseline_f1=baseline_f1,
                      run_dir=str(Path(replay.model.run_dir)))
    n_rows = append_history(path, row)
    note = {"history": str(path), "history_rows": n_rows, "model_sha256": model_sha256,
            "data_sha256": row["data_sha256"], "fold": fold}
    return [dataclasses.replace(r, details={**r.details, **note}) for r in results]
