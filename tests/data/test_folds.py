"""Player-wise folds: no leakage, full coverage, label balance, determinism."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profy.contract.schemas import SPLITS_SCHEMA
from profy.data._folds import check_no_leakage, make_folds, write_splits
from profy.errors import ConfigError, LeakageError


def _takes(takes_per_player: list[int], labels: list[str]) -> pd.DataFrame:
    rows = []
    for p, (n, label) in enumerate(zip(takes_per_player, labels)):
        for t in range(n):
            rows.append({"sample_id": f"s{p:03d}_{t:02d}", "player_id": f"p{p:03d}",
                         "piece": "Scale C-dur" if t % 2 else "Arpeggio D-dur", "label": label})
    return pd.DataFrame(rows)


@st.composite
def corpora(draw, min_players_per_label=3):
    n_pro = draw(st.integers(min_players_per_label, 12))
    n_am = draw(st.integers(min_players_per_label, 12))
    sizes = draw(st.lists(st.integers(1, 15), min_size=n_pro + n_am, max_size=n_pro + n_am))
    return _takes(sizes, ["pro"] * n_pro + ["amateur"] * n_am)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(takes=corpora(), seed=st.integers(0, 2**31 - 1), k=st.integers(2, 3))
def test_folds_invariants(takes, seed, k):
    splits = make_folds(takes, n_folds=k, seed=seed)
    assert len(splits) == k * len(takes)
    # every sample is held out in exactly one fold
    held = splits[splits.role == "test"].groupby("sample_id").size()
    assert set(held.index) == set(takes.sample_id) and (held == 1).all()
    for _, part in splits.groupby("fold"):
        # no take and no player on two sides
        assert (part.groupby("player_id").role.nunique() == 1).all()
        assert part.sample_id.is_unique
        # every fold has training data of both labels and a held-out set of both labels
        assert set(part[part.role == "train"].label) == {"pro", "amateur"}
        assert set(part[part.role == "test"].label) == {"pro", "amateur"}
    # label balance: each fold's held-out count of a label is within one player's takes
    # of the ideal share (the grouping makes finer balance impossible in general)
    max_takes = takes.groupby("player_id").size().max()
    for label, group in takes.groupby("label"):
        ideal = len(group) / k
        counts = splits[(splits.role == "test") & (splits.label == label)].groupby("fold").size()
        counts = counts.reindex(range(k), fill_value=0)
        assert (abs(counts - ideal) <= max_takes).all(), (label, counts.tolist(), ideal)


@settings(max_examples=20, deadline=None)
@given(takes=corpora(), seed=st.integers(0, 1000))
def test_folds_deterministic_and_order_invariant(takes, seed):
    a = make_folds(takes, seed=seed)
    b = make_folds(takes.sample(frac=1.0, random_state=1), seed=seed)
    pd.testing.assert_frame_equal(a, b)


def test_different_seeds_give_different_folds():
    takes = _takes([5] * 20, ["pro"] * 10 + ["amateur"] * 10)
    a = make_folds(takes, seed=0)
    b = make_folds(takes, seed=1)
    assert not a.role.equals(b.role)


def test_inner_val_is_player_grouped_and_has_both_labels():
    takes = _takes([6] * 24, ["pro"] * 12 + ["amateur"] * 12)
    splits = make_folds(takes, seed=3, val_fraction=0.25)
    for _, part in splits.groupby("fold"):
        val = part[part.role == "val"]
        assert set(val.label) == {"pro", "amateur"}
        assert not set(val.player_id) & set(part[part.role != "val"].player_id)


def test_too_few_players_is_a_clear_error():
    takes = _takes([4] * 4, ["pro", "pro", "amateur", "amateur"])
    with pytest.raises(ConfigError, match="at least 3 players of each label"):
        make_folds(takes, n_folds=3)


def test_duplicate_ids_rejected():
    takes = _takes([3] * 6, ["pro"] * 3 + ["amateur"] * 3)
    takes = pd.concat([takes, takes.iloc[:1]])
    with pytest.raises(ConfigError, match="duplicate sample ids"):
        make_folds(takes)


def test_leakage_check_catches_shared_player_and_double_holdout():
    splits = make_folds(_takes([4] * 9, ["pro"] * 5 + ["amateur"] * 4), seed=0)
    leaky = splits.copy()
    fold0 = leaky.index[(leaky.fold == 0) & (leaky.role == "test")]
    leaky.loc[fold0[0], "role"] = "train"  # one take of a held-out player moves to train
    with pytest.raises(LeakageError, match="player"):
        check_no_leakage(leaky)
    double = splits.copy()
    sid = double[(double.fold == 0) & (double.role == "test")].sample_id.iloc[0]
    player = double[double.sample_id == sid].player_id.iloc[0]
    double.loc[(double.fold == 1) & (double.player_id == player), "role"] = "test"
    with pytest.raises(LeakageError, match="exactly one"):
        check_no_leakage(double)


def test_write_splits_round_trip(tmp_path):
    splits = make_folds(_takes([3] * 8, ["pro"] * 4 + ["amateur"] * 4), seed=0)
    path = write_splits(splits, tmp_path / "splits.parquet")
    table = pq.read_table(path)
    assert table.schema.equals(SPLITS_SCHEMA, check_metadata=False)
    assert np.array_equal(table.column("sample_id").to_numpy(), splits.sample_id.to_numpy())
    assert not list(tmp_path.glob(".*tmp"))
