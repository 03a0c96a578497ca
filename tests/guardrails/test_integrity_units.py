"""Issue 18, items 3, 5, 6 and 9 without a run folder: one declared std convention, what
a delta message may claim, per-channel drift of normalization statistics, players
paired by id and resampled within (fold, label) strata."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrails.gates._evidence import MIXED, FoldPlayers, pair_folds, resample_weights
from guardrails.gates._metrics import stratified_player_weights
from guardrails.gates.baseline import PairedInterval, delta_message, paired_bootstrap
from guardrails.gates.drift import channel_shift

# --- item 3: the std convention is declared once ----------------------------------------


def test_the_std_ddof_is_declared_once_and_shared():
    import guardrails
    import profy.evaluation.results as writer
    from guardrails.gates import _evidence
    from profy.contract import schemas

    root = Path(guardrails.__file__).resolve().parents[1]
    declared = sorted(str(p.relative_to(root)) for pkg in ("profy", "guardrails")
                      for p in (root / pkg).rglob("*.py")
                      if re.search(r"^STD_DDOF\s*[:=]", p.read_text(encoding="utf-8"), re.M))
    assert declared == ["profy/contract/schemas.py"]
    assert writer.STD_DDOF is schemas.STD_DDOF and _evidence.STD_DDOF is schemas.STD_DDOF
    assert "STD_DDOF" in writer.__all__ and "STD_DDOF" in schemas.__all__


# --- item 9: pairing by id, stratified resamples --------------------------------------


@st.composite
def two_runs(draw, min_players: int = 3):
    """Per fold, the same players' confusion counts in two runs (ids in sorted order)."""
    n_folds = draw(st.integers(1, 3))
    cand, base = [], []
    for k in range(n_folds):
        g = draw(st.integers(min_players, 8))
        ids = np.array([f"f{k}p{i:02d}" for i in range(g)])
        # each player is amateur (takes in n00/n01) or pro (n10/n11): label strata
        pro = np.array(draw(st.lists(st.booleans(), min_size=g, max_size=g)))
        c = np.array(draw(st.lists(st.integers(0, 5), min_size=4 * g, max_size=4 * g))
                     ).reshape(g, 4)
        b = np.array(draw(st.lists(st.integers(0, 5), min_size=4 * g, max_size=4 * g))
                     ).reshape(g, 4)
        for arr in (c, b):
            arr[pro, :2] = 0
            arr[~pro, 2:] = 0
            arr[pro, 3] += 1  # at least one take each
            arr[~pro, 0] += 1
        cand.append(FoldPlayers.from_counts(ids, c))
        base.append(FoldPlayers.from_counts(ids, b))
    return cand, base


def _boot(cand, base, seed=0):
    return paired_bootstrap(cand, base, n_boot=150, confidence=0.9,
                            rng=np.random.default_rng(seed))


@settings(max_examples=40, deadline=None)
@given(two_runs(), st.randoms(use_true_random=False))
def test_permuting_player_order_in_one_run_does_not_change_the_result(runs, rnd):
    cand, base = runs
    shuffled = []
    for f in base:
        order = list(range(f.players.size))
        rnd.shuffle(order)
        shuffled.append(f.take(np.array(order)))
    one, two = _boot(cand, base), _boot(cand, shuffled)
    assert one.delta == two.delta and (one.low, one.high) == (two.low, two.high)
    np.testing.assert_array_equal(one.samples, two.samples)
    assert two.n_players == sum(f.players.size for f in cand)
    assert two.dropped["n_first_only"] == two.dropped["n_second_only"] == 0


@settings(max_examples=40, deadline=None)
@given(two_runs(min_players=4), st.data())
def test_runs_missing_different_players_pair_the_rest_by_id(runs, data):
    """The candidate lacks player i and the baseline player j of a fold (same counts of
    players on both sides, so position would misalign): the rest pair correctly."""
    cand, base = runs
    k = data.draw(st.integers(0, len(cand) - 1))
    g = cand[k].players.size
    i = data.draw(st.integers(0, g - 1))
    j = data.draw(st.integers(0, g - 1).filter(lambda x: x != i))
    keep = np.array([x for x in range(g) if x not in (i, j)])
    cand_missing = [f if n != k else f.take(np.array([x for x in range(g) if x != i]))
                    for n, f in enumerate(cand)]
    base_missing = [f if n != k else f.take(np.array([x for x in range(g) if x != j]))
                    for n, f in enumerate(base)]
    got = _boot(cand_missing, base_missing)
    # the truth: both runs restricted, by id, to the players both hold
    want = _boot([f if n != k else f.take(keep) for n, f in enumerate(cand)],
                 [f if n != k else f.take(keep) for n, f in enumerate(base)])
    assert got.delta == want.delta
    np.testing.assert_array_equal(got.samples, want.samples)
    assert got.dropped["n_first_only"] == 1 and got.dropped["n_second_only"] == 1
    assert got.dropped["first_only"] == {k: [str(cand[k].players[j])]}
    assert got.dropped["second_only"] == {k: [str(cand[k].players[i])]}
    assert got.n_players == sum(f.players.size for f in cand) - 2


def test_a_fold_without_a_shared_player_cannot_be_paired():
    a = [FoldPlayers.from_counts(np.array(["a", "b"]), np.ones((2, 4)))]
    b = [FoldPlayers.from_counts(np.array(["c", "d"]), np.ones((2, 4)))]
    _, _, dropped, problems = pair_folds(a, b)
    assert problems and "no player held out in both" in problems[0]
    assert dropped["n_first_only"] == 2 and dropped["n_second_only"] == 2
    with pytest.raises(ValueError, match="nothing to pair"):
        _boot(a, b)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0, 1, MIXED]), min_size=1, max_size=20),
       st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_resamples_keep_every_label_stratum_size(strata, n_boot, seed):
    strata = np.array(strata)
    w = stratified_player_weights(strata, n_boot, np.random.default_rng(seed))
    assert w.shape == (n_boot, strata.size) and (w >= 0).all()
    for key in np.unique(strata):
        assert (w[:, strata == key].sum(axis=1) == (strata == key).sum()).all()


def test_fold_resamples_are_stratified_by_the_players_labels():
    # 4 amateur players (all takes class 0) and 1 pro player (all takes class 1): every
    # resample keeps exactly one pro player (unstratified draws would often lose it)
    c = np.array([[3, 1, 0, 0]] * 4 + [[0, 0, 1, 2]])
    fold = FoldPlayers.from_counts(np.array(list("abcde")), c)
    assert fold.strata.tolist() == [0, 0, 0, 0, 1]
    (w,) = resample_weights([fold], 500, np.random.default_rng(0))
    assert (w[:, 4] == 1).all() and (w[:, :4].sum(axis=1) == 4).all()
    mixed = FoldPlayers.from_counts(np.array(["x"]), np.array([[1, 0, 0, 1]]))
    assert mixed.strata.tolist() == [MIXED]


# --- item 5: what a passing delta may claim ----------------------------------------------


def _iv(low, high, delta=None):
    delta = (low + high) / 2 if delta is None else delta
    return PairedInterval(delta, low, high, 0.95, 2000, np.array([low, high]), n_players=30)


def test_rule_worse_never_claims_non_inferiority():
    wide = _iv(-0.25, 0.03)
    text = delta_message("multimodal", wide, rule="worse", margin=0.02)
    assert "not shown worse than the baseline by more than the margin 0.02" in text
    assert "not a claim of non-inferiority" in text
    assert "allows a loss of up to 0.2500" in text
    assert "not worse than" not in text and "non-inferior within" not in text
    narrow = delta_message("multimodal", _iv(-0.01, 0.03), rule="worse", margin=0.02)
    assert "not shown worse" in narrow and "allows a loss" not in narrow
    assert "non-inferior within" not in narrow
    bad = delta_message("multimodal", _iv(-0.3, -0.05), rule="worse", margin=0.02)
    assert "WORSE than the baseline by more than 0.02" in bad


def test_only_rule_non_inferior_claims_non_inferiority():
    ok = delta_message("audio", _iv(-0.01, 0.03), rule="non_inferior", margin=0.02)
    assert "audio" in ok and ": non-inferior within margin 0.02" in ok
    no = delta_message("audio", _iv(-0.25, 0.03), rule="non_inferior", margin=0.02)
    assert "not shown non-inferior" in no and "-0.2500" in no
    with pytest.raises(ValueError, match="rule"):
        delta_message("audio", _iv(0.0, 0.1), rule="better", margin=0.02)


# --- item 6: per-channel drift of normalization statistics ---------------------------------


def _stats(rng, c=128):
    return rng.normal(-4.0, 2.0, c), rng.uniform(0.5, 3.0, c)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.floats(1.5, 10.0))
def test_shifting_a_few_channels_is_found_and_named(seed, n_shift, sds):
    rng = np.random.default_rng(seed)
    mean, std = _stats(rng)
    moved = rng.choice(mean.size, n_shift, replace=False)
    cand = mean.copy()
    cand[moved] += sds * std[moved] * rng.choice([-1, 1], n_shift)
    shift = channel_shift(cand, mean, std)
    assert sorted(np.flatnonzero(shift > 1.0)) == sorted(moved)
    assert shift.max() == pytest.approx(sds)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.permutations(list(range(16))))
def test_channel_identity_is_kept(seed, perm):
    rng = np.random.default_rng(seed)
    mean, std = _stats(rng, 16)
    perm = np.array(perm)
    # permuting every array the same way only permutes the shifts ...
    np.testing.assert_allclose(channel_shift(mean[perm], mean[perm], std[perm]), 0.0)
    # ... but reordering the candidate's channels against the baseline's is a shift
    if (perm != np.arange(16)).any() and not np.allclose(mean[perm], mean):
        assert channel_shift(mean[perm], mean, std).max() > 0


def test_reversed_channel_order_is_a_large_shift():
    rng = np.random.default_rng(3)
    mean = np.sort(rng.normal(-4.0, 2.0, 128))  # log-mel means fall with frequency
    std = np.full(128, 0.8)
    assert channel_shift(mean[::-1], mean, std).max() > 5


@pytest.mark.parametrize("cand,base,std,why", [
    (np.zeros(64), np.zeros(128), np.ones(128), "channel counts differ"),
    (np.zeros(3), np.zeros(3), np.array([1.0, 0.0, 1.0]), "std <= 0 at channel 1"),
    (np.array([0.0, np.nan]), np.zeros(2), np.ones(2), "not finite"),
    (np.zeros(0), np.zeros(0), np.zeros(0), "no per-channel values"),
])
def test_statistics_that_cannot_be_compared_say_so(cand, base, std, why):
    with pytest.raises(ValueError, match=why):
        channel_shift(cand, base, std)
