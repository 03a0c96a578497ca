"""Property tests of the gates' metrics and decision rules (no run folder needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from sklearn.metrics import f1_score

from guardrails.gates._metrics import (
    counts,
    ece_table,
    macro_f1,
    macro_f1_from_counts,
    percentile_interval,
    weighted_f1,
)
from guardrails.gates.acceptance import delta_verdict, stability_of, threshold_verdict
from guardrails.gates.drift import psi

labels = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=60)
finite = st.floats(0.0, 1.0, allow_nan=False)
maybe_nan = st.one_of(finite, st.just(float("nan")), st.just(float("inf")), st.none())


@given(labels)
def test_macro_and_weighted_f1_match_sklearn(pairs):
    y, p = np.array(pairs).T
    want = f1_score(y, p, labels=[0, 1], average="macro", zero_division=0)
    assert macro_f1(y, p) == pytest.approx(want, abs=1e-12)
    want_w = f1_score(y, p, labels=[0, 1], average="weighted", zero_division=0)
    assert weighted_f1(y, p) == pytest.approx(want_w, abs=1e-12)


@given(st.lists(labels, min_size=1, max_size=5))
def test_vectorised_counts_score_like_one_at_a_time(batches):
    stacked = np.stack([counts(*np.array(b).T) for b in batches])
    got = macro_f1_from_counts(stacked)
    assert got.shape == (len(batches),)
    for g, b in zip(got, batches, strict=True):
        assert g == pytest.approx(macro_f1(*np.array(b).T))


def test_empty_counts_are_nan_and_bad_labels_raise():
    assert math.isnan(float(macro_f1_from_counts(np.zeros(4))))
    with pytest.raises(ValueError, match="classes are 0"):
        macro_f1([0, 2], [0, 1])


@given(finite, finite, finite, finite, st.floats(0.0, 0.5))
def test_threshold_gate_is_monotonic(mean, std, min_mean, max_std, gain):
    """A better F1 (higher mean, same or lower std) never turns a pass into a fail."""
    passed, _ = threshold_verdict(mean, std, min_mean=min_mean, max_std=max_std)
    better, _ = threshold_verdict(mean + gain, std * 0.5, min_mean=min_mean, max_std=max_std)
    assert not (passed and not better)


@given(finite, st.floats(0.0, 0.5), finite)
def test_delta_gate_is_monotonic(delta, gain, min_delta):
    assert not (delta_verdict(delta, min_delta=min_delta)[0]
                and not delta_verdict(delta + gain, min_delta=min_delta)[0])


@given(maybe_nan, maybe_nan)
def test_nan_never_passes(mean, std):
    bad = not all(isinstance(v, float) and math.isfinite(v) for v in (mean, std))
    passed, reason = threshold_verdict(mean, std, min_mean=0.0, max_std=1.0)
    if bad:
        assert not passed and "not a finite number" in reason
    assert not delta_verdict(float("nan"), min_delta=-1.0)[0]
    assert not delta_verdict(None, min_delta=-1.0)[0]


@given(finite, finite)
def test_boundaries_are_inclusive_and_exact(mean, std):
    """Documented: mean == min_mean passes, std == max_std passes, no rounding."""
    assert threshold_verdict(mean, std, min_mean=mean, max_std=std)[0]
    above = np.nextafter(mean, 2.0)
    assert not threshold_verdict(mean, std, min_mean=above, max_std=std)[0]
    below = np.nextafter(std, -1.0)
    assert not threshold_verdict(mean, std, min_mean=mean, max_std=below)[0]
    assert delta_verdict(mean, min_delta=mean)[0]
    assert not delta_verdict(mean, min_delta=above)[0]


def test_stability_counts_nan_resamples_as_fails():
    means = np.array([0.8, float("nan"), 0.9, 0.7])
    assert stability_of(means >= 0.78) == 0.5


@given(st.lists(st.tuples(st.integers(0, 1), st.floats(0.0, 1.0)), min_size=1, max_size=80),
       st.integers(1, 15))
def test_ece_table_matches_sklearn_calibration_curve(pairs, n_bins):
    y, p = np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])
    ece, rows = ece_table(y, p, n_bins)
    frac, mean_p = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    assert [r["fraction_pro"] for r in rows] == pytest.approx(list(frac))
    assert [r["mean_predicted"] for r in rows] == pytest.approx(list(mean_p))
    want = sum(r["count"] * abs(f - m) for r, f, m in zip(rows, frac, mean_p, strict=True))
    assert ece == pytest.approx(want / len(y))
    assert 0.0 <= ece <= 1.0


def test_percentile_interval_and_psi():
    assert percentile_interval(np.arange(101.0), 0.9) == pytest.approx((5.0, 95.0))
    with pytest.raises(ValueError):
        percentile_interval(np.arange(3.0), 1.0)
    rng = np.random.default_rng(0)
    a = rng.normal(size=2000)
    assert psi(a, rng.normal(size=2000)) < 0.05
    assert psi(a, rng.normal(loc=1.5, size=2000)) > 0.25
    assert math.isnan(psi(np.array([]), a))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_same_seed_same_interval(seed):
    from guardrails.gates._evidence import FoldPlayers
    from guardrails.gates.baseline import paired_bootstrap

    rng = np.random.default_rng(1)
    ids = np.array([f"p{i}" for i in range(6)])
    cand = [FoldPlayers.from_counts(ids, rng.integers(0, 4, size=(6, 4))) for _ in range(3)]
    base = [FoldPlayers.from_counts(ids, rng.integers(0, 4, size=(6, 4))) for _ in range(3)]
    one = paired_bootstrap(cand, base, n_boot=200, confidence=0.9,
                           rng=np.random.default_rng(seed))
    two = paired_bootstrap(cand, base, n_boot=200, confidence=0.9,
                           rng=np.random.default_rng(seed))
    assert (one.low, one.high, one.delta) == (two.low, two.high, two.delta)
    assert one.low <= one.high


def test_nadeau_bengio_is_the_plain_t_test_inflated_by_the_training_overlap():
    from scipy import stats

    from guardrails.gates.baseline import nadeau_bengio

    d = np.array([0.02, 0.05, -0.01])
    plain = stats.ttest_1samp(d, 0.0)
    same = nadeau_bengio(d, 0.0, 0.95)  # no overlap correction: Student's one-sample t
    assert same["t"] == pytest.approx(plain.statistic) and same["df"] == 2
    assert same["p_value"] == pytest.approx(plain.pvalue)
    nb = nadeau_bengio(d, 0.5, 0.95)  # 1/3 of the takes held out: n_test/n_train = 0.5
    assert nb["t"] == pytest.approx(plain.statistic / np.sqrt(1 + 3 * 0.5))
    assert nb["p_value"] > same["p_value"]
    half = stats.t.ppf(0.975, 2) * np.sqrt((1 / 3 + 0.5) * d.var(ddof=1))
    assert nb["ci"] == pytest.approx([d.mean() - half, d.mean() + half])
    assert nadeau_bengio([0.1], 0.5, 0.95)["ci"] is None
    flat = nadeau_bengio([0.1, 0.1, 0.1], 0.5, 0.95)
    assert flat["p_value"] is None and flat["ci"] == pytest.approx([0.1, 0.1])
