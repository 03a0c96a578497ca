"""Verdict stability is calibrated: runs reported at x pass in about x of fresh evaluations.

Covered gates (the estimators they call, on simulated arrays): ``gate.multimodal_f1``
and ``gate.audio_f1`` (mean and std over folds, :func:`fold_stability` with
:func:`f1_rule`), ``gate.multimodal_vs_sensor`` (paired fold delta, :func:`delta_rule`),
``gate.sensor_weight_share`` (pooled share, :func:`pivot_pass_rate`), ``gate.slices``
(worst-slice F1, a minimum) and ``gate.calibration`` (ECE, biased upward at small n):
:func:`bounded_pivot_pass_rate` on the gates' own array functions
(``worst_f1_from_counts``, ``ece_from_sums``) with players resampled within (fold,
label) strata by :func:`rescaled_player_weights`.

The simulator (``sim_grouped.py``) draws thousands of 3-fold evaluations at the demo's
size with known truth; every reliability bin holding >= 100 runs (standard error of its
mean true pass rate about 0.03) must lie within 0.1 of its mean reported stability.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sim_grouped as sim
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrails import RunContext, criteria_from_dict, run_checks
from guardrails.gates._stability import (
    bounded_pivot_pass_rate,
    decidability,
    fold_predictive,
    pivot_pass_rate,
    players_needed,
    rescaled_player_weights,
)

COVERED = ("gate.multimodal_f1", "gate.audio_f1", "gate.multimodal_vs_sensor",
           "gate.sensor_weight_share")
MAX_GAP, MIN_RUNS = 0.1, 100


def _assert_calibrated(gate: str, out: dict) -> None:
    """At least 4 populated reliability bins, each within MAX_GAP of the true pass rate."""
    rows = sim.reliability(out["calibrated"], out["truth"], min_count=MIN_RUNS)
    assert len(rows) >= 4, f"{gate}: too few populated bins to judge calibration: {rows}"
    off = [r for r in rows if abs(r[4] - r[3]) > MAX_GAP]
    assert not off, f"{gate}: bins (low, high, runs, reported, true) off by > {MAX_GAP}: {off}"


@pytest.fixture(scope="module")
def simulated():
    return {g: sim.simulate_gate(g, np.random.default_rng(11), n_runs=4000, n_fresh=40,
                                 n_boot=200, n_draws=400) for g in COVERED}


@pytest.mark.parametrize("gate", COVERED)
def test_reported_stability_is_calibrated(simulated, gate):
    _assert_calibrated(gate, simulated[gate])


def test_the_resample_share_was_not_calibrated_for_the_std_gates(simulated):
    """Why the estimator changed: the share of player resamples that pass (the figure
    before issue 19) under-reports the audio gate's pass rate by more than 0.1."""
    out = simulated["gate.audio_f1"]
    rows = sim.reliability(out["today"], out["truth"], min_count=MIN_RUNS)
    assert max(r[4] - r[3] for r in rows) > MAX_GAP, rows


@pytest.fixture(scope="module")
def simulated_pooled():
    return {g: sim.simulate_pooled_gate(g, np.random.default_rng(11), n_runs=3000, n_fresh=30,
                                        n_boot=150) for g in sim.POOLED_GATES}


@pytest.mark.parametrize("gate", sim.POOLED_GATES)
def test_pooled_gate_stability_is_calibrated(simulated_pooled, gate):
    _assert_calibrated(gate, simulated_pooled[gate])


@pytest.mark.parametrize("gate", sim.POOLED_GATES)
def test_the_resample_share_was_not_calibrated_for_the_pooled_gates(simulated_pooled, gate):
    """Why the estimator changed: the share of player resamples (drawn within folds) that
    pass, the figure before, under-reports the worst slice's and the ECE's pass rate."""
    out = simulated_pooled[gate]
    rows = sim.reliability(out["today"], out["truth"], min_count=MIN_RUNS)
    assert max(r[4] - r[3] for r in rows) > MAX_GAP, rows


def test_rescaled_weights_keep_strata_and_unbias_the_variance():
    rng = np.random.default_rng(0)
    strata = np.array([0] * 5 + [1] * 4 + [-1])
    w = rescaled_player_weights(strata, 20000, rng)
    for key, n in ((0, 5), (1, 4)):
        assert np.allclose(w[:, strata == key].sum(axis=1), n)
    assert (w[:, strata == -1] == 1).all()  # one player: never varies
    # Rao-Wu: each weight has mean 1 and variance 1 (the plain bootstrap's is (n-1)/n)
    assert w[:, :9].mean() == pytest.approx(1.0, abs=0.01)
    assert w[:, :5].var(axis=0) == pytest.approx(np.ones(5), abs=0.05)
    plain = rng.multinomial(5, np.full(5, 0.2), size=20000)
    assert plain.var(axis=0).mean() == pytest.approx(0.8, abs=0.05)


DYADIC = st.integers(-64, 64).map(lambda i: i / 64)  # exact sums: ties are real ties


@settings(max_examples=60, deadline=None)
@given(obs=DYADIC, thr=DYADIC, higher=st.booleans(),
       samples=st.lists(st.one_of(DYADIC, st.just(float("nan"))), min_size=1, max_size=12))
def test_pivot_pass_rate_counts_every_pair(obs, thr, higher, samples):
    fresh = [obs + a - b for a, b in itertools.product(samples, samples)]
    want = np.mean([(f >= thr) if higher else (f <= thr) for f in fresh])  # NaN -> False
    assert pivot_pass_rate(obs, samples, thr, higher_is_better=higher) == pytest.approx(want)
    batched = pivot_pass_rate([obs, obs], [samples, samples], thr, higher_is_better=higher)
    assert batched == pytest.approx([want, want])


def test_fold_predictive_centres_on_the_mean_and_keeps_the_noise_once():
    rng = np.random.default_rng(0)
    obs = np.array([0.80, 0.78, 0.91])
    fresh = fold_predictive(obs, np.full(3, 0.07 ** 2), 20000, rng)
    assert fresh.shape == (20000, 3)
    assert fresh.mean() == pytest.approx(obs.mean(), abs=0.005)
    # a fresh fold varies by the noise and at most the prior's between-fold sd, not twice
    sd = fresh.std(axis=1, ddof=1).mean()
    assert 0.05 < sd < np.sqrt(0.07 ** 2 + 0.07 ** 2) + 0.01


def test_decidability_names_the_noise_and_the_players_needed():
    info, note = decidability("fold F1", 0.056, 0.02, 0.07, 10, spread=True)
    assert info["decidable"] is False and info["players_needed"] == players_needed(10, 0.07,
                                                                                   0.02)
    assert note.startswith("undecidable at 10 players per fold: fold F1 noise sd 0.070 > "
                           "the 0.02 limit; about 123 players per fold")
    assert decidability("fold F1", 0.01, 0.02, 0.005, 10, spread=True)[1] is None
    info, note = decidability("mean fold F1", 0.79, 0.78, 0.03, 10)
    assert info["distance"] == pytest.approx(0.01) and "within its noise sd 0.030" in note
    assert decidability("mean fold F1", 0.90, 0.78, 0.03, 10)[1] is None
    assert decidability("mean fold F1", None, 0.78, 0.03, 10)[0]["decidable"] is None


def test_f1_gate_reports_noise_and_says_when_its_limit_is_undecidable(tiny_run, tmp_path):
    import mutations as mut

    run = mut.takes_as_players(tiny_run)
    crit = criteria_from_dict({"version": 1, "checks": {
        "gate.multimodal_f1": {"min_mean": 0.0, "max_std": 0.001},
        "gate.multimodal_vs_sensor": {"min_delta": -1.0}}})
    res = {r.name: r for r in run_checks(RunContext(run, report_dir=tmp_path / "r"), crit)}
    f1 = res["gate.multimodal_f1"]
    noise = f1.details["noise"]
    assert noise["std"]["sd"] > 0.001 and noise["std"]["decidable"] is False
    assert "undecidable at" in f1.message and "fold F1 noise sd" in f1.message
    assert noise["mean"]["decidable"] is True  # 0.0 is far below any mean
    delta = res["gate.multimodal_vs_sensor"]
    assert delta.details["noise"]["sd"] > 0 and "undecidable" not in delta.message
    assert 0.0 <= f1.details["stability"] <= 1.0


def test_baseline_delta_reports_the_nadeau_bengio_second_opinion(tiny_run, tmp_path):
    import mutations as mut

    run = mut.takes_as_players(tiny_run)
    preds = mut.read(run, "predictions")
    flip = (preds["mode"] == "multimodal") & (preds.index % 3 == 0)
    preds.loc[flip, "prediction"] = 1 - preds.loc[flip, "prediction"]  # differ from base
    base = tmp_path / "base" / run.name
    import shutil

    shutil.copytree(tiny_run, base)
    mut.write(run, "predictions", preds)
    ctx = RunContext(run, report_dir=tmp_path / "r", baseline=RunContext(base))
    crit = criteria_from_dict({"version": 1, "checks": {"baseline.f1_delta": {}}})
    res = {r.name: r for r in run_checks(ctx, crit)}["baseline.f1_delta[multimodal]"]
    nb = res.details["nadeau_bengio"]
    splits = mut.read(run, "splits")
    sizes = splits.groupby(["fold", "role"]).size().unstack()
    assert nb["test_train_ratio"] == pytest.approx((sizes["test"] / sizes["train"]).mean())
    assert nb["df"] == 2 and len(nb["ci"]) == 2
    assert "Nadeau-Bengio corrected t-test" in res.message and "not gating" in res.message
    mean = np.mean(list(res.details["per_fold_delta"].values()))
    assert np.mean(nb["ci"]) == pytest.approx(mean)


@settings(max_examples=60, deadline=None)
@given(obs=st.integers(0, 64).map(lambda i: i / 64), thr=DYADIC, higher=st.booleans(),
       samples=st.lists(st.one_of(st.integers(0, 64).map(lambda i: i / 64),
                                  st.just(float("nan"))), min_size=1, max_size=12))
def test_bounded_pivot_clips_fresh_values_to_the_range(obs, thr, higher, samples):
    fresh = [min(max(obs + a - b, 0.0), 1.0) for a, b in itertools.product(samples, samples)]
    want = np.mean([(f >= thr) if higher else (f <= thr) for f in fresh])  # NaN -> False
    got = bounded_pivot_pass_rate(obs, samples, thr, higher_is_better=higher, bounds=(0, 1))
    assert got == pytest.approx(want)
