"""Verdict stability of ``gate.slices`` and ``gate.calibration`` (player resamples + pivot).

The tiny corpus holds one player per (fold, label): players are resampled within those
strata, so there the stability is unknown (None, with the reason). With every take its
own player (``mutations.takes_as_players``) and the thresholds at the values the run
shows, the verdict is a pass on the boundary, the fresh values fall on both sides of
it, and the threshold lies within the noise (the undecidable note). On small synthetic
frames Hypothesis checks that the bootstrap at the identity weights reproduces the
reported worst F1 / ECE and that a laxer threshold never lowers the stability.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrails import RunContext, criteria_from_dict, run_checks
from guardrails.gates._evidence import held_out
from guardrails.gates._metrics import ece_table
from guardrails.gates.slices import (
    bootstrap_ece,
    bootstrap_worst_f1,
    calibration,
    slice_table,
    slices,
    thin_strata,
)
from guardrails.report._json import stability_text

GATES = ("gate.slices", "gate.calibration")


def run_gates(run, tmp_path, params, seed=0):
    crit = criteria_from_dict({"version": 1, "checks": {n: params.get(n, {}) for n in GATES}})
    ctx = RunContext(run, report_dir=tmp_path / "rep", seed=seed)
    return {r.name: r for r in run_checks(ctx, crit)}, ctx


def _boundary(tiny_run_ro, tmp_path):
    """Thresholds equal to what the tiny run shows: both gates pass on the boundary."""
    res, _ = run_gates(tiny_run_ro, tmp_path, {"gate.slices": {"min_worst_f1": 0.0},
                                               "gate.calibration": {"max_ece": 1.0}})
    worst = res["gate.slices"].details["worst_by_mode"]["multimodal"]["f1"]
    ece = res["gate.calibration"].details["per_mode"]["multimodal"]["ece"]
    return {"gate.slices": {"min_worst_f1": worst}, "gate.calibration": {"max_ece": ece}}


@pytest.fixture
def resamplable_run(tiny_run):
    import mutations as mut

    return mut.takes_as_players(tiny_run)


def test_one_player_per_stratum_leaves_the_stability_unknown(tiny_run_ro, tmp_path):
    params = _boundary(tiny_run_ro, tmp_path)
    res, _ = run_gates(tiny_run_ro, tmp_path, params)
    for name in GATES:
        r = res[name]
        assert r.passed and r.details["stability"] is None, r.message
        assert "cannot be estimated" in r.details["stability_note"]
        assert "1 pro player" in r.details["stability_note"]
    strict = {n: {**params[n], "min_stability": 0.5} for n in GATES}
    bad, _ = run_gates(tiny_run_ro, tmp_path, strict)
    for name in GATES:
        assert not bad[name].passed and "stability unknown" in bad[name].message


def test_stability_is_reported_repeatable_and_tied_to_the_reported_value(resamplable_run,
                                                                         tmp_path):
    tiny_run_ro = resamplable_run
    params = _boundary(tiny_run_ro, tmp_path)
    res, ctx = run_gates(tiny_run_ro, tmp_path, params)
    rows = held_out(ctx)
    rows = rows[rows["mode"] == "multimodal"]
    sl, cal = res["gate.slices"], res["gate.calibration"]
    for r in (sl, cal):
        assert r.passed, r.message
        stab = r.details["stability"]
        assert 0.0 <= stab <= 1.0 and r.observed["stability"] == round(stab, 4)
        assert r.details["n_boot"] == 1000 and stability_text(r).endswith("%")
        # on the boundary fresh values fall on both sides: about half pass
        assert 0.2 < stab < 0.8
        # and the threshold lies within the noise: the message says so
        noise = r.details["noise"]
        assert noise["sd"] > 0 and noise["decidable"] is False and noise["unit"] == "in all"
        assert "undecidable at" in r.message and "players in all" in r.message
    # the bootstrap at the identity weights is the reported statistic
    assert bootstrap_worst_f1(rows, 5)[0] == sl.details["worst_by_mode"]["multimodal"]["f1"]
    assert bootstrap_ece(rows, 10)[0] == pytest.approx(
        cal.details["per_mode"]["multimodal"]["ece"], rel=1e-12, abs=1e-15)
    again, _ = run_gates(tiny_run_ro, tmp_path, params)
    for name in GATES:
        assert again[name].details["stability"] == res[name].details["stability"]


def test_min_stability_above_the_measured_stability_turns_the_pass_into_a_fail(
        resamplable_run, tmp_path):
    tiny_run_ro = resamplable_run
    params = _boundary(tiny_run_ro, tmp_path)
    res, _ = run_gates(tiny_run_ro, tmp_path, params)
    stab = {n: res[n].details["stability"] for n in GATES}
    at = {n: {**params[n], "min_stability": stab[n]} for n in GATES}
    ok, _ = run_gates(tiny_run_ro, tmp_path, at)
    assert all(ok[n].passed for n in GATES), [r.message for r in ok.values()]
    above = {n: {**params[n], "min_stability": min(1.0, stab[n] + 0.01)} for n in GATES}
    bad, _ = run_gates(tiny_run_ro, tmp_path, above)
    for name in GATES:
        r = bad[name]
        assert not r.passed and "verdict stability" in r.message, r.message
        assert r.expected["stability"] == f">= {above[name]['min_stability']}"


def _ctx(frame: pd.DataFrame, seed: int) -> SimpleNamespace:
    # what the gates read from a RunContext: modes, seed and the cached held-out frame
    return SimpleNamespace(seed=seed, config={"train": {"modes": ["multimodal"]}},
                           memo={"gates": {"held_out": frame}})


@st.composite
def frames(draw) -> pd.DataFrame:
    """Held-out rows of one mode: 1-3 folds, 1-6 takes per player; either 1-4 players
    per fold with a random label per take, or 1-4 players per (fold, label)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    per_player = draw(st.booleans())
    rows = []
    for fold in range(draw(st.integers(1, 3))):
        players = ([int(lab) for lab in (0, 1) for _ in range(draw(st.integers(1, 4)))]
                   if per_player else [None] * draw(st.integers(1, 4)))
        for player, player_label in enumerate(players):
            for _ in range(draw(st.integers(1, 6))):
                label = int(rng.integers(2)) if player_label is None else player_label
                prob = float(rng.choice([rng.random(), 0.0, 0.5, 1.0], p=[.7, .1, .1, .1]))
                piece = str(rng.choice(["Scale C-dur", "Scale a-moll", "Arpeggio G-dur"]))
                rows.append({"mode": "multimodal", "fold": fold,
                             "sample_id": f"s{len(rows)}", "player_id": f"f{fold}p{player}",
                             "label": label, "probability": prob,
                             "prediction": int(rng.random() < 0.7) ^ (1 - label),
                             "piece": piece, "piece_kind": piece.split(" ")[0].lower()})
    return pd.DataFrame(rows)


@settings(max_examples=40, deadline=None)
@given(frame=frames(), min_samples=st.integers(0, 6), n_bins=st.integers(1, 12))
def test_identity_weights_reproduce_slice_table_and_ece_table(frame, min_samples, n_bins):
    table = slice_table(frame)
    big = [s for s in table if s["n"] >= min_samples] or table
    assert bootstrap_worst_f1(frame, min_samples)[0] == min(s["f1"] for s in big)
    ece, _ = ece_table(frame["label"].to_numpy(), frame["probability"].to_numpy(), n_bins)
    assert bootstrap_ece(frame, n_bins)[0] == pytest.approx(ece, rel=1e-12, abs=1e-15)


@settings(max_examples=30, deadline=None)
@given(frame=frames(), seed=st.integers(0, 100),
       f1s=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=2),
       eces=st.lists(st.floats(0.0, 0.6), min_size=2, max_size=2))
def test_a_laxer_threshold_never_lowers_stability(frame, seed, f1s, eces):
    why = thin_strata(frame)
    lo, hi = sorted(f1s)
    common = {"mode": "multimodal", "min_samples": 3, "min_stability": 0.0, "n_boot": 200}
    # a lower min_worst_f1 is laxer
    lax = slices(_ctx(frame, seed), min_worst_f1=lo, **common)
    strict = slices(_ctx(frame, seed), min_worst_f1=hi, **common)
    ends = [slices(_ctx(frame, seed), min_worst_f1=t, **common) for t in (0.0, 1.01)]
    lo, hi = sorted(eces)
    common = {"mode": "multimodal", "n_bins": 5, "min_stability": 0.0, "n_boot": 200}
    # a higher max_ece is laxer
    c_strict = calibration(_ctx(frame, seed), max_ece=lo, **common)
    c_lax = calibration(_ctx(frame, seed), max_ece=hi, **common)
    c_ends = [calibration(_ctx(frame, seed), max_ece=t, **common) for t in (1.0, -0.01)]
    results = [lax, strict, *ends, c_strict, c_lax, *c_ends]
    if why is not None:  # a stratum of one player: unknown, with the reason, never a number
        assert all(r.details["stability"] is None and r.details["stability_note"] == why
                   for r in results)
        return
    stab = [r.details["stability"] for r in results]
    assert 0.0 <= stab[1] <= stab[0] <= 1.0
    assert stab[2:4] == [1.0, 0.0]  # F1 lies in [0, 1]: so does every fresh value
    assert 0.0 <= stab[4] <= stab[5] <= 1.0
    assert stab[6:8] == [1.0, 0.0]  # so does the ECE
