"""The evidence the gates read, with every gap turned into a readable problem.

A missing mode, fold or value, or a NaN, is a *problem string* the calling gate turns
into a failure ("multimodal: fold 2 missing from complete_results.json"); nothing here
fills a gap with a default.

Held-out predictions are ``predictions.parquet`` joined to ``splits.parquet`` on
``(sample_id, fold)``: each row gains the take's ``player_id``, ``piece`` and
``piece_kind`` (from ``manifest.parquet`` when present, else from the piece name).
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Any

import numpy as np

from guardrails.errors import ArtifactError
from guardrails.gates._metrics import bootstrap_player_weights, counts_by_group

__all__ = ["MODES", "expected_folds", "expected_modes", "fold_lines", "gate_rng", "held_out",
           "player_counts", "resample_fold_f1", "resample_weights", "results_f1", "std_ddof"]

MODES = ("sensor", "audio", "multimodal")
RESULTS = "complete_results.json"
_FOLD_LINE = re.compile(r"^FOLD (.*)$", re.MULTILINE)


def _cache(ctx) -> dict[str, Any]:
    # derived frames live beside RunContext's own artifact cache (one ctx = one run)
    return ctx.__dict__.setdefault("_gates_cache", {})


def gate_rng(ctx, name: str) -> np.random.Generator:
    """A generator seeded by ``ctx.seed`` and the check name: order-independent, repeatable."""
    return np.random.default_rng([int(ctx.seed), zlib.crc32(name.encode("utf-8"))])


def expected_modes(ctx) -> list[str]:
    """Modes the run's config trained (``train.modes``)."""
    modes = (ctx.config.get("train") or {}).get("modes")
    if not isinstance(modes, list) or not modes:
        raise ArtifactError(ctx.path("config.yaml"), "train.modes is missing or empty")
    return [str(m) for m in modes]


def expected_folds(ctx) -> list[int]:
    """Folds the run's config asked for (``train.n_folds``) -> ``[0, ..., n-1]``."""
    n = (ctx.config.get("train") or {}).get("n_folds")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ArtifactError(ctx.path("config.yaml"), f"train.n_folds must be >= 1, got {n!r}")
    return list(range(n))


def std_ddof(ctx) -> int:
    """The std convention of the results file (``std_ddof``; profy's STD_DDOF is 0)."""
    ddof = ctx.json(RESULTS).get("std_ddof", 0) if isinstance(ctx.json(RESULTS), dict) else 0
    return int(ddof) if isinstance(ddof, int) and not isinstance(ddof, bool) else 0


def _finite(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def results_f1(ctx, mode: str, metric: str = "macro_f1"
               ) -> tuple[dict[int, float], float | None, float | None, list[str]]:
    """Per-fold, mean and std of ``metric`` for ``mode`` from ``complete_results.json``.

    Returns:
        ``(per_fold, mean, std, problems)``; a value is ``None`` where it is missing or
        not finite, and ``problems`` says where (empty when everything is present).
    """
    data = ctx.json(RESULTS)
    problems: list[str] = []
    block = (data.get("modes") or {}).get(mode) if isinstance(data, dict) else None
    if not isinstance(block, dict):
        return {}, None, None, [f"{mode}: mode missing from {RESULTS}"]
    per_fold: dict[int, float] = {}
    folds = block.get("folds") if isinstance(block.get("folds"), dict) else {}
    for k in expected_folds(ctx):
        value = (folds.get(str(k)) or {}).get(metric) if isinstance(folds.get(str(k)),
                                                                     dict) else None
        if str(k) not in folds:
            problems.append(f"{mode}: fold {k} missing from {RESULTS}")
        elif not _finite(value):
            problems.append(f"{mode}: fold {k} {metric} is {value!r} (not a finite number)")
        else:
            per_fold[k] = float(value)
    out = []
    for stat in ("mean", "std"):
        value = (block.get(stat) or {}).get(metric) if isinstance(block.get(stat), dict) else None
        if not _finite(value):
            problems.append(f"{mode}: {stat} {metric} is {value!r} (not a finite number)")
            out.append(None)
        else:
            out.append(float(value))
    return per_fold, out[0], out[1], problems


def held_out(ctx):
    """Held-out predictions with players and slices (pandas, cached per context).

    Columns: ``mode, fold, sample_id, label, probability, prediction, player_id,
    piece, piece_kind``. Rows whose take has no test-role split row are dropped and
    counted in ``frame.attrs["unmatched"]`` (the integrity audit names them).
    """
    import pandas as pd

    cache = _cache(ctx)
    if "held_out" in cache:
        return cache["held_out"]
    preds = ctx.frame("predictions.parquet")
    splits = ctx.frame("splits.parquet")
    test = splits[splits["role"] == "test"][["sample_id", "fold", "player_id", "piece"]]
    try:
        frame = preds.merge(test, on=["sample_id", "fold"], how="inner", validate="many_to_one")
    except pd.errors.MergeError:
        raise ArtifactError(ctx.path("splits.parquet"),
                            "a take is held out twice in one fold (duplicate test rows)") from None
    if ctx.exists("manifest.parquet"):
        kinds = ctx.frame("manifest.parquet")[["sample_id", "piece_kind"]].drop_duplicates(
            "sample_id")
        frame = frame.merge(kinds, on="sample_id", how="left")
    else:
        frame["piece_kind"] = None
    derived = frame["piece"].astype(str).str.split(" ").str[0].str.lower()
    frame["piece_kind"] = frame["piece_kind"].fillna(derived)
    frame.attrs["unmatched"] = int(len(preds) - len(frame))
    cache["held_out"] = frame
    return frame


def player_counts(frame, mode: str, folds: list[int]
                  ) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Per fold, the fold's held-out players and ``mode``'s confusion counts per player.

    Players come from every mode's rows of the fold, so two modes of one run (and two
    comparable runs) share the player axis and one set of resample weights pairs them.

    Returns:
        ``(players, counts, problems)``: per fold a sorted ``(G_k,)`` array of player ids
        and a ``(G_k, 4)`` count array; ``problems`` names folds without predictions.
    """
    players, counts, problems = [], [], []
    for k in folds:
        fold_rows = frame[frame["fold"] == k]
        names = np.unique(fold_rows["player_id"].to_numpy().astype(str))
        rows = fold_rows[fold_rows["mode"] == mode]
        if rows.empty:
            problems.append(f"{mode}: fold {k} has no held-out predictions")
        c = np.zeros((len(names), 4), dtype=np.int64)
        if not rows.empty:
            _, per = counts_by_group(rows["player_id"].to_numpy().astype(str),
                                     rows["label"].to_numpy(), rows["prediction"].to_numpy())
            present = np.unique(rows["player_id"].to_numpy().astype(str))
            c[np.searchsorted(names, present)] = per
        players.append(names)
        counts.append(c)
    return players, counts, problems


def resample_weights(counts: list[np.ndarray], n_boot: int, rng: np.random.Generator
                     ) -> list[np.ndarray]:
    """Player multiplicities per fold, ``(n_boot, G_k)`` each (players within folds)."""
    return [bootstrap_player_weights(len(c), n_boot, rng) for c in counts]


def resample_fold_f1(counts: list[np.ndarray], weights: list[np.ndarray]) -> np.ndarray:
    """Macro F1 per resample and fold, ``(n_boot, n_folds)``."""
    from guardrails.gates._metrics import macro_f1_from_counts

    return np.stack([macro_f1_from_counts(w @ c) for w, c in zip(weights, counts,
                                                                  strict=True)], axis=1)


def fold_lines(ctx) -> list[dict[str, str]]:
    """``FOLD key=value ...`` lines of ``training.log`` as dicts."""
    out = []
    for body in _FOLD_LINE.findall(ctx.text("training.log")):
        out.append(dict(tok.split("=", 1) for tok in body.split() if "=" in tok))
    return out
