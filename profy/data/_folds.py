"""Player-wise, label-stratified cross-validation folds and the leakage check.

A sample is a take; takes of one player are not independent (same hands, same
habits), so every split groups by player: a player's takes all sit on one side.

Outer folds come from scikit-learn's ``StratifiedGroupKFold`` (groups = players,
stratified by label). Inside each fold, a player-grouped early-stopping split
(``val``) is drawn from the training players of each label separately, so both
labels stay represented. Roles are documented in :mod:`profy.contract.schemas`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from profy.contract.atomic import write_parquet_atomic
from profy.contract.schemas import SPLITS_SCHEMA
from profy.errors import ConfigError, LeakageError

__all__ = ["check_no_leakage", "make_folds", "write_splits"]

_REQUIRED = ("sample_id", "player_id", "piece", "label")


def _player_labels(takes: pd.DataFrame) -> pd.Series:
    """One label per player (the majority over its takes; real players have one tag)."""
    return takes.groupby("player_id")["label"].agg(lambda s: s.value_counts().idxmax())


def _inner_val_players(players: pd.Series, *, val_fraction: float,
                       rng: np.random.Generator) -> set[str]:
    """Pick ~``val_fraction`` of the training players of each label for early stopping."""
    chosen: set[str] = set()
    for label in sorted(players.unique()):
        ids = np.array(sorted(players.index[players == label]))
        if len(ids) < 2:  # a lone player of a label stays in train: training needs it more
            continue
        n_val = min(len(ids) - 1, max(1, round(val_fraction * len(ids))))
        chosen.update(rng.permutation(ids)[:n_val].tolist())
    return chosen


def make_folds(takes: pd.DataFrame, *, n_folds: int = 3, seed: int = 0,
               val_fraction: float = 0.2) -> pd.DataFrame:
    """Assign every take a role (train / val / test) in each of ``n_folds`` folds.

    Args:
        takes: one row per take with ``sample_id``, ``player_id``, ``piece``, ``label``.
        n_folds: number of player-wise folds. (Default: ``3``)
        seed: seeds both the outer fold shuffle and the inner early-stopping draw.
        val_fraction: share of each label's training players used for early stopping.

    Returns:
        DataFrame in ``splits.parquet`` form: ``n_folds * len(takes)`` rows with
        ``sample_id, player_id, piece, label, fold, role``; each take is ``test`` in
        exactly one fold.

    Raises:
        ConfigError: bad ``n_folds``/``val_fraction``, duplicate sample ids, missing
            columns, or fewer players of a label than folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    missing = [c for c in _REQUIRED if c not in takes.columns]
    if missing:
        raise ConfigError(f"takes table lacks column(s) {missing}")
    if n_folds < 2:
        raise ConfigError(f"n_folds must be >= 2, got {n_folds}")
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
    dup = takes["sample_id"][takes["sample_id"].duplicated()].unique()
    if len(dup):
        raise ConfigError(f"{len(dup)} duplicate sample ids, e.g. {list(dup[:5])}")
    takes = takes.sort_values("sample_id").reset_index(drop=True)
    players = _player_labels(takes)
    counts = players.value_counts()
    short = {label: int(n) for label, n in counts.items() if n < n_folds}
    if short:
        raise ConfigError(
            f"need at least {n_folds} players of each label for {n_folds} player-wise folds, "
            f"got {short}")

    # Stratify on the player's label so a mixed-label player cannot split the grouping.
    strata = takes["player_id"].map(players).to_numpy()
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    rng = np.random.default_rng(seed)
    frames = []
    for fold, (train_idx, test_idx) in enumerate(
            splitter.split(np.zeros(len(takes)), strata, groups=takes["player_id"])):
        train_players = players[players.index.isin(takes["player_id"].iloc[train_idx])]
        val_players = _inner_val_players(train_players, val_fraction=val_fraction, rng=rng)
        role = np.full(len(takes), "train", dtype=object)
        role[test_idx] = "test"
        is_val = takes["player_id"].isin(val_players).to_numpy()
        role[is_val & (role == "train")] = "val"
        frame = takes[list(_REQUIRED)].copy()
        frame["fold"] = np.int32(fold)
        frame["role"] = role
        frames.append(frame)
    splits = pd.concat(frames, ignore_index=True)
    check_no_leakage(splits)
    return splits


def check_no_leakage(splits: pd.DataFrame) -> None:
    """Raise if any take or player sits on both sides of a split, or coverage is wrong.

    Checks, per fold: no take in two roles; no player in two roles. Across folds:
    every take is ``test`` in exactly one fold.

    Raises:
        LeakageError: naming the fold and the first offending ids.
    """
    for fold, part in splits.groupby("fold"):
        for key in ("sample_id", "player_id"):
            roles = part.groupby(key)["role"].nunique()
            bad = roles[roles > 1].index.tolist()
            if bad:
                what = "take(s)" if key == "sample_id" else "player(s)"
                raise LeakageError(
                    f"fold {fold}: {len(bad)} {what} on both sides of a split, e.g. {bad[:5]}")
    test_counts = (splits[splits["role"] == "test"].groupby("sample_id").size()
                   .reindex(splits["sample_id"].unique(), fill_value=0))
    wrong = test_counts[test_counts != 1]
    if len(wrong):
        raise LeakageError(
            f"{len(wrong)} take(s) are held out (role 'test') in {sorted(set(wrong))} folds "
            f"instead of exactly one, e.g. {wrong.index[:5].tolist()}")


def write_splits(splits: pd.DataFrame, path: str | Path) -> Path:
    """Validate and write ``splits.parquet`` atomically (schema: :mod:`profy.contract.schemas`)."""
    check_no_leakage(splits)
    table = pa.Table.from_pandas(splits[SPLITS_SCHEMA.names], schema=SPLITS_SCHEMA,
                                 preserve_index=False)
    return write_parquet_atomic(table, path)
