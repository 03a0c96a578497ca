"""The evidence the gates read, with every gap turned into a readable problem.

A missing mode, fold or value, or a NaN, is a *problem string* the calling gate turns
into a failure ("multimodal: fold 2 missing from complete_results.json"); nothing here
fills a gap with a default.

The figures a gate decides on are recomputed here from the artifacts
(:func:`recomputed_metric`: a count metric per fold from ``predictions.parquet`` - macro
F1, accuracy, ``per_class.pro.recall``, ... - then the mean and the std over folds with
``ddof = STD_DDOF``, the constant profy's results writer uses too);
:func:`results_metric` reads what ``complete_results.json`` *publishes* at the same
metric path, for display and cross-checking only. Derived frames are kept in the run
context's memo (``ctx.memo["gates"]``).

Held-out predictions are ``predictions.parquet`` joined to ``splits.parquet`` on
``(sample_id, fold)``: each row gains the take's ``player_id``, ``piece`` and
``piece_kind`` (from ``manifest.parquet`` when present, else from the piece name).
Player resamples pair players by id (:func:`pair_folds`) and draw them within
(fold, label) strata (:func:`resample_weights`).
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrails.errors import ArtifactError
from guardrails.gates._metrics import (
    CountMetric,
    count_metric,
    counts,
    counts_by_group,
    macro_f1,
    stratified_player_weights,
    weighted_f1,
)
from guardrails.gates._stability import resample_fold_metric as resample_fold_metric_counts
from profy.contract.layout import (
    COMPLETE_RESULTS_FILE,
    CONFIG_FILE,
    MANIFEST_FILE,
    PREDICTIONS_FILE,
    SPLITS_FILE,
)
from profy.contract.schemas import LABELS, MODES, STD_DDOF

if TYPE_CHECKING:
    from guardrails._context import RunContext

__all__ = ["MIN_STRATUM_PLAYERS", "MIXED", "MODES", "STD_DDOF", "FoldPlayers",
           "expected_folds", "expected_modes", "fold_lines", "fold_players", "gate_rng",
           "held_out", "pair_folds", "recompute", "recompute_or_say", "recomputed_f1",
           "recomputed_metric", "resample_fold_f1", "resample_fold_metric", "resample_weights",
           "results_metric", "thin_strata"]

RESULTS = COMPLETE_RESULTS_FILE
PREDICTIONS = PREDICTIONS_FILE
MIXED = -1  # the stratum of a player whose takes carry both labels
MIN_STRATUM_PLAYERS = 2  # fewer, and a (fold, label) stratum never varies in a resample
_STRATUM_NAMES = {0: LABELS[0], 1: LABELS[1], MIXED: "mixed-label"}
_FOLD_LINE = re.compile(r"^FOLD (.*)$", re.MULTILINE)


def _cache(ctx: RunContext) -> dict[str, Any]:
    # derived frames live in the context's memo, beside its artifact cache (one ctx = one run)
    return ctx.memo.setdefault("gates", {})


def gate_rng(ctx: RunContext, name: str) -> np.random.Generator:
    """A generator seeded by ``ctx.seed`` and the check name: order-independent, repeatable."""
    return np.random.default_rng([int(ctx.seed), zlib.crc32(name.encode("utf-8"))])


def expected_modes(ctx: RunContext) -> list[str]:
    """Modes the run's config trained (``train.modes``)."""
    modes = (ctx.config.get("train") or {}).get("modes")
    if not isinstance(modes, list) or not modes:
        raise ArtifactError(ctx.path(CONFIG_FILE), "train.modes is missing or empty")
    return [str(m) for m in modes]


def expected_folds(ctx: RunContext) -> list[int]:
    """Folds the run's config asked for (``train.n_folds``) -> ``[0, ..., n-1]``."""
    n = (ctx.config.get("train") or {}).get("n_folds")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ArtifactError(ctx.path(CONFIG_FILE), f"train.n_folds must be >= 1, got {n!r}")
    return list(range(n))


def _finite(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _at(block: Any, path: str) -> Any:
    """The value at a dotted ``path`` inside nested mappings, or None where it is absent."""
    for key in path.split("."):
        block = block.get(key) if isinstance(block, dict) else None
    return block


def results_metric(ctx: RunContext, mode: str, metric: str = "macro_f1"
                   ) -> tuple[dict[int, float], float | None, float | None, list[str]]:
    """Per-fold, mean and std of ``metric`` for ``mode`` as ``complete_results.json`` publishes.

    ``metric`` is a path inside a fold block (``macro_f1``, ``per_class.pro.recall``).
    The file publishes a mean and std over folds for flat metrics only; for a nested
    path they are ``None`` and their absence is no problem. Read for display and
    cross-checks; gates decide on :func:`recomputed_metric`.

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
        value = _at(folds.get(str(k)), metric)
        if str(k) not in folds:
            problems.append(f"{mode}: fold {k} missing from {RESULTS}")
        elif not _finite(value):
            problems.append(f"{mode}: fold {k} {metric} is {value!r} (not a finite number)")
        else:
            per_fold[k] = float(value)
    out: list[float | None] = []
    for stat in ("mean", "std"):
        value = _at(block.get(stat), metric)
        if not _finite(value):
            if "." not in metric:  # flat metrics are aggregated over folds
                problems.append(f"{mode}: {stat} {metric} is {value!r} (not a finite number)")
            out.append(None)
        else:
            out.append(float(value))
    return per_fold, out[0], out[1], problems


def recompute(preds, mode: str, fold: int) -> dict[str, float] | None:
    """``{macro_f1, weighted_f1, accuracy, n_samples}`` of one mode/fold, or None if empty.

    ``preds`` is ``predictions.parquet`` as a frame; raises ValueError on a class id
    outside {0, 1}.
    """
    rows = preds[(preds["mode"] == mode) & (preds["fold"] == fold)]
    if rows.empty:
        return None
    y, p = rows["label"].to_numpy(), rows["prediction"].to_numpy()
    return {"macro_f1": macro_f1(y, p), "weighted_f1": weighted_f1(y, p),
            "accuracy": float(np.mean(y == p)), "n_samples": int(len(rows))}


def recompute_or_say(preds, mode: str, fold: int,
                     problems: list[str]) -> dict[str, float] | None:
    """:func:`recompute`, or ``None`` with the reason appended to ``problems``."""
    try:
        fresh = recompute(preds, mode, fold)
    except ValueError as exc:  # a class id outside {0, 1}
        problems.append(f"{mode}: fold {fold}: {PREDICTIONS} {exc}")
        return None
    if fresh is None:
        problems.append(f"{mode}: fold {fold} has no rows in {PREDICTIONS}")
    return fresh


def recomputed_metric(ctx: RunContext, mode: str, metric: str | CountMetric = "macro_f1"
                      ) -> tuple[dict[int, float], float | None, float | None, list[str]]:
    """Per-fold, mean and std of a count ``metric`` for ``mode``, recomputed from the predictions.

    Every fold's score is the metric (:func:`~guardrails.gates._metrics.count_metric`:
    ``macro_f1``, ``accuracy``, ``per_class.pro.recall``, ...) of the confusion counts of
    its rows of ``predictions.parquet`` (the gates' own numpy metrics); the mean and the
    std over folds follow with ``ddof=STD_DDOF`` (the one convention profy's results
    writer also uses). Nothing is read from ``complete_results.json``: what it publishes
    is checked against these figures by ``gate.results_match_predictions``.

    Returns:
        ``(per_fold, mean, std, problems)``; mean and std are ``None`` unless every
        expected fold has predictions, and ``problems`` says which do not.
    """
    spec = count_metric(metric) if isinstance(metric, str) else metric
    cache = _cache(ctx).setdefault("recomputed", {})
    if (mode, spec.path) in cache:
        return cache[(mode, spec.path)]
    preds = ctx.frame(PREDICTIONS)
    per_fold: dict[int, float] = {}
    problems: list[str] = []
    for k in expected_folds(ctx):
        rows = preds[(preds["mode"] == mode) & (preds["fold"] == k)]
        if rows.empty:
            problems.append(f"{mode}: fold {k} has no rows in {PREDICTIONS}")
            continue
        try:
            value = float(spec(counts(rows["label"].to_numpy(), rows["prediction"].to_numpy())))
        except ValueError as exc:  # a class id outside {0, 1}
            problems.append(f"{mode}: fold {k}: {PREDICTIONS} {exc}")
            continue
        if not math.isfinite(value):
            problems.append(f"{mode}: fold {k} {spec.path} recomputed as {value!r}")
        else:
            per_fold[k] = value
    mean = std = None
    if not problems:
        values = np.array([per_fold[k] for k in sorted(per_fold)])
        mean, std = float(np.mean(values)), float(np.std(values, ddof=STD_DDOF))
        if not (math.isfinite(mean) and math.isfinite(std)):  # ddof >= n_folds
            problems.append(f"{mode}: std over {values.size} fold(s) with ddof={STD_DDOF} "
                            f"is {std!r}")
            mean = std = None
    cache[(mode, spec.path)] = (per_fold, mean, std, problems)
    return per_fold, mean, std, problems


def recomputed_f1(ctx: RunContext, mode: str, metric: str = "macro_f1"
                  ) -> tuple[dict[int, float], float | None, float | None, list[str]]:
    """:func:`recomputed_metric` (its historical name)."""
    return recomputed_metric(ctx, mode, metric)


def held_out(ctx: RunContext):
    """Held-out predictions with players and slices (pandas, cached per context).

    Columns: ``mode, fold, sample_id, label, probability, prediction, player_id,
    piece, piece_kind``. Rows whose take has no test-role split row are dropped and
    counted in ``frame.attrs["unmatched"]`` (the integrity audit names them).
    """
    import pandas as pd

    cache = _cache(ctx)
    if "held_out" in cache:
        return cache["held_out"]
    preds = ctx.frame(PREDICTIONS_FILE)
    splits = ctx.frame(SPLITS_FILE)
    test = splits[splits["role"] == "test"][["sample_id", "fold", "player_id", "piece"]]
    try:
        frame = preds.merge(test, on=["sample_id", "fold"], how="inner", validate="many_to_one")
    except pd.errors.MergeError:
        raise ArtifactError(ctx.path(SPLITS_FILE),
                            "a take is held out twice in one fold (duplicate test rows)") from None
    if ctx.exists(MANIFEST_FILE):
        kinds = ctx.frame(MANIFEST_FILE)[["sample_id", "piece_kind"]].drop_duplicates(
            "sample_id")
        frame = frame.merge(kinds, on="sample_id", how="left")
    else:
        frame["piece_kind"] = None
    derived = frame["piece"].astype(str).str.split(" ").str[0].str.lower()
    frame["piece_kind"] = frame["piece_kind"].fillna(derived)
    frame.attrs["unmatched"] = int(len(preds) - len(frame))
    cache["held_out"] = frame
    return frame


@dataclass(frozen=True)
class FoldPlayers:
    """One fold's held-out players of one mode: ids, label strata, confusion counts.

    Attributes:
        players: player ids, ``(G,)`` str, unique (a pairing matches on them, never on
            position).
        strata: each player's label stratum, ``(G,)`` int: 0 (amateur) or 1 (pro) when
            every take of the player carries that label, :data:`MIXED` otherwise.
        counts: confusion counts per player, ``(G, 4)`` int64 (see ``_metrics``).
    """

    players: np.ndarray
    strata: np.ndarray
    counts: np.ndarray

    def __post_init__(self) -> None:
        g = len(self.players)
        if self.strata.shape != (g,) or self.counts.shape != (g, 4):
            raise ValueError(f"{g} players need strata ({g},) and counts ({g}, 4); got "
                             f"{self.strata.shape} and {self.counts.shape}")
        if len(np.unique(self.players)) != g:
            raise ValueError("player ids of a fold must be unique")

    @classmethod
    def from_counts(cls, players, counts) -> FoldPlayers:
        """Players and their counts ``(G, 4)``; strata follow from the counts' true classes."""
        c = np.asarray(counts, dtype=np.int64).reshape(-1, 4)
        n_amateur, n_pro = c[:, 0] + c[:, 1], c[:, 2] + c[:, 3]
        strata = np.where(n_pro == 0, 0, np.where(n_amateur == 0, 1, MIXED)).astype(np.int64)
        return cls(np.asarray(players).astype(str), strata, c)

    def take(self, index: np.ndarray) -> FoldPlayers:
        """The players at ``index`` (in that order)."""
        return FoldPlayers(self.players[index], self.strata[index], self.counts[index])


def fold_players(frame, mode: str, folds: list[int]) -> tuple[list[FoldPlayers], list[str]]:
    """Per fold, ``mode``'s held-out players (those with at least one prediction).

    Returns:
        ``(per_fold, problems)``; ``problems`` names folds without predictions of ``mode``
        (their entry holds no players).
    """
    out, problems = [], []
    for k in folds:
        rows = frame[(frame["fold"] == k) & (frame["mode"] == mode)]
        if rows.empty:
            problems.append(f"{mode}: fold {k} has no held-out predictions")
            out.append(FoldPlayers.from_counts(np.array([], dtype=str), np.zeros((0, 4))))
            continue
        names, per = counts_by_group(rows["player_id"].to_numpy().astype(str),
                                     rows["label"].to_numpy(), rows["prediction"].to_numpy())
        out.append(FoldPlayers.from_counts(names, per))
    return out, problems


def pair_folds(first: list[FoldPlayers], second: list[FoldPlayers]
               ) -> tuple[list[FoldPlayers], list[FoldPlayers], dict[str, Any], list[str]]:
    """Match two sets of per-fold players by player id (never by position).

    Each fold keeps the players both sides hold, sorted by id; a player's stratum is its
    label when both sides agree on it, :data:`MIXED` otherwise.

    Returns:
        ``(first_paired, second_paired, dropped, problems)``: ``dropped`` holds
        ``n_first_only``, ``n_second_only`` and per fold the ids only one side held
        (``first_only``/``second_only``); ``problems`` names folds sharing no player.
    """
    if len(first) != len(second):
        raise ValueError(f"{len(first)} folds cannot be paired with {len(second)}")
    a_out, b_out, problems = [], [], []
    dropped: dict[str, Any] = {"n_first_only": 0, "n_second_only": 0, "first_only": {},
                               "second_only": {}}
    for k, (a, b) in enumerate(zip(first, second, strict=True)):
        shared, ia, ib = np.intersect1d(a.players, b.players, assume_unique=True,
                                        return_indices=True)
        for side, own in (("first", a), ("second", b)):
            only = sorted(set(own.players.tolist()) - set(shared.tolist()))
            if only:
                dropped[f"{side}_only"][k] = only
                dropped[f"n_{side}_only"] += len(only)
        if shared.size == 0:
            problems.append(f"fold {k}: no player held out in both ({a.players.size} vs "
                            f"{b.players.size} players): nothing to pair")
        pa_, pb_ = a.take(ia), b.take(ib)
        strata = np.where(pa_.strata == pb_.strata, pa_.strata, MIXED)
        a_out.append(FoldPlayers(shared, strata, pa_.counts))
        b_out.append(FoldPlayers(shared, strata, pb_.counts))
    return a_out, b_out, dropped, problems


def thin_strata(folds: list[FoldPlayers], fold_ids: list[int] | None = None) -> list[str]:
    """Folds where a label stratum holds fewer than :data:`MIN_STRATUM_PLAYERS` players.

    Players are resampled within (fold, label) strata, so a stratum of one player is the
    same in every resample: the bootstrap cannot estimate its variability, and an
    interval or a verdict stability computed from it would claim a precision it lacks.

    Returns:
        One line per such fold, e.g. ``"fold 0: 1 amateur player, 1 pro player"``.
    """
    fold_ids = list(range(len(folds))) if fold_ids is None else fold_ids
    out = []
    for k, f in zip(fold_ids, folds, strict=True):
        keys, sizes = np.unique(f.strata, return_counts=True)
        thin = [f"{n} {_STRATUM_NAMES.get(int(key), str(key))} player" + ("s" if n != 1 else "")
                for key, n in zip(keys, sizes, strict=True) if n < MIN_STRATUM_PLAYERS]
        if thin:
            out.append(f"fold {k}: " + ", ".join(thin))
    return out


def resample_weights(folds: list[FoldPlayers], n_boot: int, rng: np.random.Generator
                     ) -> list[np.ndarray]:
    """Player multiplicities per fold, ``(n_boot, G_k)`` each.

    Players are drawn with replacement within each (fold, label stratum): a resample
    keeps every fold's number of pro and amateur players.
    """
    return [stratified_player_weights(f.strata, n_boot, rng) for f in folds]


def resample_fold_metric(folds: list[FoldPlayers], weights: list[np.ndarray],
                         metric: str | CountMetric = "macro_f1") -> np.ndarray:
    """A count metric per resample and fold, ``(n_boot, n_folds)``."""
    spec = count_metric(metric) if isinstance(metric, str) else metric
    return resample_fold_metric_counts([f.counts for f in folds], weights, spec)


def resample_fold_f1(folds: list[FoldPlayers], weights: list[np.ndarray]) -> np.ndarray:
    """Macro F1 per resample and fold, ``(n_boot, n_folds)``."""
    return resample_fold_metric(folds, weights, "macro_f1")


def fold_lines(ctx: RunContext) -> list[dict[str, str]]:
    """``FOLD key=value ...`` lines of ``training.log`` as dicts."""
    out = []
    for body in _FOLD_LINE.findall(ctx.text("training.log")):
        out.append(dict(tok.split("=", 1) for tok in body.split() if "=" in tok))
    return out
