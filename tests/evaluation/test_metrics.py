"""Metric tests in scikit-learn's ``test_common`` style, with scikit-learn as the reference.

Note toward developers about metric testing
-------------------------------------------
Every metric registered in ``profy.evaluation.metrics.METRICS`` must belong to exactly
one property set below (``LABEL_METRICS`` or ``PROBA_METRICS``);
``test_every_registered_metric_is_in_a_property_set`` fails otherwise, so a new metric
cannot skip the common tests. Each entry pairs the metric with its scikit-learn
reference. Array-valued functions that are not registered (``confusion_matrix``,
per-class scores) are listed in ``ARRAY_FUNCTIONS`` and go through the same tests.

Label vectors come from Hypothesis and include folds missing a class, all-one-class
vectors and single samples; ``labels`` is ``None``, the full class list, or a
permutation of it.
"""

import doctest
import math
import subprocess
import sys
import textwrap
from functools import partial

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve

import profy.evaluation as evaluation
from profy.errors import ConfigError
from profy.evaluation import metrics as M

# scikit-learn's own hint for one-class inputs without `labels`; the reference, not ours
pytestmark = pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")

# --- property sets ----------------------------------------------------------------------


def _sk_prf(y_true, y_pred, *, labels=None, zero_division=0.0):
    return skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None,
                                               zero_division=zero_division)


# name -> sklearn reference taking (y_true, y_pred, *, labels, zero_division)
LABEL_METRICS = {
    "accuracy": lambda t, p, *, labels, zero_division: skm.accuracy_score(t, p),
    "macro_f1": lambda t, p, *, labels, zero_division: skm.f1_score(
        t, p, labels=labels, average="macro", zero_division=zero_division),
    "weighted_f1": lambda t, p, *, labels, zero_division: skm.f1_score(
        t, p, labels=labels, average="weighted", zero_division=zero_division),
}
# name -> reference taking (y_true, prob_pos, *, n_bins)
PROBA_METRICS = {
    "ece": lambda t, p, *, n_bins: _sk_ece(t, p, n_bins=n_bins),
}
# not registered (not scalar) but held to the same contract: ours, reference
ARRAY_FUNCTIONS = {
    "confusion_matrix": (
        lambda t, p, *, labels, zero_division: M.confusion_matrix(t, p, labels=labels),
        lambda t, p, *, labels, zero_division: skm.confusion_matrix(t, p, labels=labels)),
    "precision_recall_f1_support": (M.precision_recall_f1_support, _sk_prf),
    "f1_score_per_class": (
        partial(M.f1_score, average=None),
        lambda t, p, *, labels, zero_division: skm.f1_score(
            t, p, labels=labels, average=None, zero_division=zero_division)),
}
ZERO_DIVISIONS = [0.0, 1.0, np.nan]


def _ours(name):
    if name in ARRAY_FUNCTIONS:
        return ARRAY_FUNCTIONS[name][0]
    return M.get_metric(name).fn


def _call(name, t, p, *, labels=None, zero_division=0.0):
    fn = _ours(name)
    if name == "accuracy":
        return fn(t, p, labels=labels)
    return fn(t, p, labels=labels, zero_division=zero_division)


def _sk_ece(y_true, prob, *, n_bins):
    """ECE from scikit-learn's calibration curve, bin counts from its own edges."""
    prob_true, prob_pred = calibration_curve(y_true, prob, n_bins=n_bins, strategy="uniform")
    ids = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], prob)
    counts = np.bincount(ids, minlength=n_bins)
    counts = counts[counts > 0]
    return float(np.sum(counts * np.abs(prob_true - prob_pred)) / len(prob))


def _close(a, b):
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y)
        return
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               rtol=1e-12, atol=1e-12, equal_nan=True)


def test_every_registered_metric_is_in_a_property_set():
    sets = [set(LABEL_METRICS), set(PROBA_METRICS)]
    assert set().union(*sets) == set(M.METRICS)
    assert not set(LABEL_METRICS) & set(PROBA_METRICS)
    for name, spec in M.METRICS.items():
        assert spec.name == name
        assert spec.needs_proba == (name in PROBA_METRICS)


def test_registry_metadata():
    assert {n: s.higher_is_better for n, s in M.METRICS.items()} == {
        "accuracy": True, "macro_f1": True, "weighted_f1": True, "ece": False}
    assert all(s.version == "1" for s in M.METRICS.values())
    # the *_score / *_error naming contract holds for the functions behind the names
    for spec in M.METRICS.values():
        assert spec.fn.__name__.endswith("_score" if spec.higher_is_better else "_error")


# --- strategies -------------------------------------------------------------------------


@st.composite
def label_cases(draw, *, max_classes=4, max_len=25):
    """``(y_true, y_pred, labels, zero_division)``: int vectors over ``0..k-1``, often with
    a class missing from one side, sometimes one class only, sometimes one sample."""
    k = draw(st.integers(2, max_classes))
    n = draw(st.integers(1, max_len))
    true_classes = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=k, unique=True))
    pred_classes = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=k, unique=True))
    y_true = draw(st.lists(st.sampled_from(true_classes), min_size=n, max_size=n))
    y_pred = draw(st.lists(st.sampled_from(pred_classes), min_size=n, max_size=n))
    labels = draw(st.sampled_from(["none", "all", "permuted"]))
    if labels == "none":
        labels = None
    elif labels == "all":
        labels = list(range(k))
    else:
        labels = draw(st.permutations(list(range(k))))
    return y_true, y_pred, labels, draw(st.sampled_from(ZERO_DIVISIONS))


@st.composite
def proba_cases(draw, *, max_len=40):
    """``(y_true, prob_pos, n_bins)`` with probabilities often on bin edges, 0 or 1."""
    n = draw(st.integers(1, max_len))
    n_bins = draw(st.integers(1, 12))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    edges = [float(e) for e in np.linspace(0, 1, n_bins + 1)]
    p = draw(st.lists(st.one_of(st.floats(0, 1), st.sampled_from(edges)), min_size=n,
                      max_size=n))
    return y, p, n_bins


ALL_LABEL_FUNCTIONS = sorted(LABEL_METRICS) + sorted(ARRAY_FUNCTIONS)


# --- common tests: agreement with scikit-learn ------------------------------------------


@pytest.mark.parametrize("name", ALL_LABEL_FUNCTIONS)
@settings(deadline=None, max_examples=80)
@given(case=label_cases())
def test_matches_sklearn(name, case):
    y_true, y_pred, labels, zd = case
    ref = LABEL_METRICS.get(name) or ARRAY_FUNCTIONS[name][1]
    _close(_call(name, y_true, y_pred, labels=labels, zero_division=zd),
           ref(y_true, y_pred, labels=labels, zero_division=zd))


@pytest.mark.parametrize("name", sorted(PROBA_METRICS))
@settings(deadline=None, max_examples=80)
@given(case=proba_cases())
def test_proba_metric_matches_sklearn(name, case):
    y, p, n_bins = case
    _close(M.get_metric(name).fn(y, p, n_bins=n_bins), PROBA_METRICS[name](y, p, n_bins=n_bins))


@settings(deadline=None, max_examples=60)
@given(case=proba_cases())
def test_reliability_table_matches_calibration_curve(case):
    y, p, n_bins = case
    table = M.reliability_table(y, p, n_bins=n_bins)
    assert len(table) == n_bins and table["count"].sum() == len(y)
    full = table[table["count"] > 0]
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    _close(full["fraction_positive"].to_numpy(), prob_true)
    _close(full["mean_predicted"].to_numpy(), prob_pred)
    assert table.loc[table["count"] == 0, "gap"].isna().all()


# --- common tests: invariances ----------------------------------------------------------


@pytest.mark.parametrize("name", ALL_LABEL_FUNCTIONS)
@settings(deadline=None, max_examples=40)
@given(case=label_cases(), seed=st.integers(0, 2**16))
def test_sample_order_invariance(name, case, seed):
    y_true, y_pred, labels, zd = case
    order = np.random.default_rng(seed).permutation(len(y_true))
    shuffled = [y_true[i] for i in order], [y_pred[i] for i in order]
    _close(_call(name, y_true, y_pred, labels=labels, zero_division=zd),
           _call(name, *shuffled, labels=labels, zero_division=zd))


@pytest.mark.parametrize("name", ALL_LABEL_FUNCTIONS)
@settings(deadline=None, max_examples=30)
@given(case=label_cases())
def test_format_invariance(name, case):
    """List, 1-D array, column vector, float dtype and string labels all agree."""
    y_true, y_pred, labels, zd = case
    expected = _call(name, y_true, y_pred, labels=labels, zero_division=zd)
    t, p = np.array(y_true), np.array(y_pred)
    variants = [(t, p, labels), (t[:, None], p[:, None], labels),
                (t.astype(float), p.astype(np.int32), labels)]
    # "c0" < "c1" < ... keeps the class order, so string labels give the same numbers
    as_str = [f"c{v}" for v in y_true], [f"c{v}" for v in y_pred]
    variants.append((*as_str, None if labels is None else [f"c{v}" for v in labels]))
    for a, b, lab in variants:
        _close(_call(name, a, b, labels=lab, zero_division=zd), expected)


@pytest.mark.parametrize("name", sorted(PROBA_METRICS))
@settings(deadline=None, max_examples=30)
@given(case=proba_cases(), seed=st.integers(0, 2**16))
def test_proba_order_and_format_invariance(name, case, seed):
    y, p, n_bins = case
    fn = M.get_metric(name).fn
    order = np.random.default_rng(seed).permutation(len(y))
    expected = fn(y, p, n_bins=n_bins)
    _close(fn(np.array(y)[order], np.array(p)[order], n_bins=n_bins), expected)
    _close(fn(np.array(y, dtype=bool)[:, None], np.array(p)[:, None], n_bins=n_bins), expected)
    assert 0.0 <= expected <= 1.0


# --- common tests: bad input ------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_LABEL_FUNCTIONS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_rejected(name, bad):
    good = [0.0, 1.0, 1.0]
    with pytest.raises(ConfigError, match="finite"):
        _call(name, [0.0, bad, 1.0], good)
    with pytest.raises(ConfigError, match="finite"):
        _call(name, good, [bad, 1.0, 1.0])


@pytest.mark.parametrize("name", ALL_LABEL_FUNCTIONS)
@pytest.mark.parametrize(("y_true", "y_pred", "labels", "match"), [
    ([0, 1, 1], [0, 1], None, "differ in length: 3 != 2"),
    ([], [], None, "empty"),
    ([[0, 1], [1, 0]], [[0, 1], [1, 0]], None, "1-D"),
    ([0, 0.5], [0, 1], None, "continuous"),
    ([0, None], [0, 1], None, "None"),
    ([0, 1], ["a", "b"], None, "numbers but y_pred holds strings"),
    ([0, 2], [0, 1], [0, 1], "y_true holds 2, which is not in labels"),
    ([0, 1], [0, 1], [0, 1, 1], "repeat"),
    ([0, 1], [0, 1], [], "labels is empty"),
    ([0, 1], [0, 1], ["a", "b"], "labels hold strings"),
])
def test_misuse_raises_config_error(name, y_true, y_pred, labels, match):
    with pytest.raises(ConfigError, match=match) as info:
        _call(name, y_true, y_pred, labels=labels)
    assert isinstance(info.value, ValueError)  # old `except ValueError` keeps working


@pytest.mark.parametrize("name", sorted(PROBA_METRICS))
@pytest.mark.parametrize(("y", "p", "kw", "match"), [
    ([0, 1], [0.2, np.nan], {}, "prob_pos holds nan"),
    ([0, 1], [0.2, np.inf], {}, "prob_pos holds inf"),
    ([0, 1], [0.2, 1.5], {}, r"\[0, 1\]"),
    ([0, np.nan], [0.2, 0.3], {}, "finite"),
    ([0, 1, 1], [0.2, 0.3], {}, r"shape \(3,\)"),
    ([0, 2], [0.2, 0.3], {}, "not in labels"),
    ([0, 1], [0.2, 0.3], {"n_bins": 0}, "n_bins"),
    ([0, 1], [0.2, 0.3], {"n_bins": 2.5}, "n_bins"),
])
def test_proba_misuse_raises(name, y, p, kw, match):
    with pytest.raises(ConfigError, match=match):
        M.get_metric(name).fn(y, p, **kw)


@pytest.mark.parametrize("zd", ["warn", 0.5, True, None])
def test_zero_division_values(zd):
    with pytest.raises(ConfigError, match="zero_division"):
        M.f1_score([0, 1], [0, 1], zero_division=zd)


def test_unknown_average():
    with pytest.raises(ConfigError, match="average must be one of .* got 'binary'"):
        M.f1_score([0, 1], [0, 1], average="binary")


# --- specific cases ---------------------------------------------------------------------


def test_macro_and_weighted_differ_on_imbalanced_fold():
    # 8 pro, 2 amateur, a model that always says pro: pro F1 = 16/18, amateur F1 = 0
    y_true, y_pred = [1] * 8 + [0] * 2, [1] * 10
    macro = M.macro_f1_score(y_true, y_pred, labels=[0, 1])
    weighted = M.weighted_f1_score(y_true, y_pred, labels=[0, 1])
    assert macro == pytest.approx(8 / 18, abs=1e-15)
    assert weighted == pytest.approx(0.8 * 16 / 18, abs=1e-15)
    assert weighted - macro > 0.25  # the leak: weighted flatters the majority class
    assert macro == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"), abs=1e-15)
    assert weighted == pytest.approx(skm.f1_score(y_true, y_pred, average="weighted"),
                                     abs=1e-15)
    assert M.f1_score(y_true, y_pred) == macro  # the default average is macro


@pytest.mark.parametrize(("zd", "macro"), [(0.0, 0.5), (1.0, 1.0), (np.nan, 1.0)])
def test_degenerate_fold_with_one_class(zd, macro):
    """All takes pro and all predicted pro: amateur has neither support nor predictions."""
    y = [1, 1, 1]
    assert M.macro_f1_score(y, y, labels=[0, 1], zero_division=zd) == macro
    assert skm.f1_score(y, y, labels=[0, 1], average="macro", zero_division=zd) == macro
    assert M.macro_f1_score(y, y) == 1.0  # labels inferred: only "pro" is averaged
    p, r, f, s = M.precision_recall_f1_support(y, y, labels=[0, 1], zero_division=zd)
    assert s.tolist() == [0, 3] and s.dtype == np.int64
    _close(f, [zd, 1.0])


def test_zero_division_only_applies_to_zero_over_zero():
    # amateur never predicted but present: precision 0/0 -> zero_division, F1 = 0 anyway
    p, r, f, s = M.precision_recall_f1_support([0, 1], [1, 1], labels=[0, 1], zero_division=1.0)
    assert p.tolist() == [1.0, 0.5] and r.tolist() == [0.0, 1.0]
    assert f.tolist() == [0.0, pytest.approx(2 / 3)]


def test_confusion_matrix_layout_and_label_order():
    cm = M.confusion_matrix([0, 1, 1, 1], [0, 0, 1, 1], labels=[0, 1])
    assert cm.tolist() == [[1, 0], [1, 2]] and cm.dtype == np.int64  # rows true
    assert M.confusion_matrix([0, 1, 1, 1], [0, 0, 1, 1], labels=[1, 0]).tolist() == [
        [2, 1], [0, 1]]
    assert M.confusion_matrix([1], [1], labels=[0, 1]).tolist() == [[0, 0], [0, 1]]


def test_accuracy_normalize_false_counts():
    assert M.accuracy_score([0, 1, 1], [0, 0, 1], normalize=False) == 2.0


def test_ece_hand_computed():
    # bin (0.1, 0.2]: p 0.2, 0.2, y 0, 1 -> |0.5 - 0.2|; bin (0.9, 1]: p 1.0, y 1 -> 0
    assert M.expected_calibration_error([0, 1, 1], [0.2, 0.2, 1.0]) == pytest.approx(0.2)
    assert M.expected_calibration_error([0, 1], [0.0, 1.0]) == 0.0
    assert M.expected_calibration_error([1, 0], [0.0, 1.0]) == 1.0


# --- registry ---------------------------------------------------------------------------


def test_get_metric_suggests_close_names():
    with pytest.raises(ConfigError) as info:
        M.get_metric("macro-f1")
    msg = str(info.value)
    assert msg.startswith("Unknown metric 'macro-f1'. Did you mean: macro_f1")
    assert "Available: accuracy, ece, macro_f1, weighted_f1" in msg
    with pytest.raises(ConfigError, match=r"Unknown metric 'zzz'\. Available: "):
        M.get_metric("zzz")


def test_register_metric_and_duplicates():
    @M.register_metric("test_constant", higher_is_better=False, version="3")
    def constant_error(y_true, y_pred):
        return 0.0
    try:
        spec = M.get_metric("test_constant")
        assert (spec.fn, spec.higher_is_better, spec.needs_proba, spec.version) == (
            constant_error, False, False, "3")
        with pytest.raises(ConfigError, match="already registered"):
            M.register_metric("test_constant", higher_is_better=True)(constant_error)
    finally:
        M.METRICS.pop("test_constant")


# --- package hygiene --------------------------------------------------------------------


def test_all_lists_exactly_the_public_names():
    from profy.evaluation import results

    for module in (evaluation, M, results):
        # functions and classes defined here (the package: anywhere inside it)
        home = "profy.evaluation" if module is evaluation else module.__name__
        public = {n for n, v in vars(module).items() if not n.startswith("_")
                  and callable(v) and getattr(v, "__module__", "").startswith(home)}
        assert public <= set(module.__all__), public - set(module.__all__)
        assert all(hasattr(module, n) for n in module.__all__)


def test_docstring_examples():
    from profy.evaluation import results

    for module in (M, results):
        failed, _ = doctest.testmod(module, verbose=False)
        assert failed == 0


def test_evaluation_is_torch_and_sklearn_free():
    code = textwrap.dedent("""
        import sys
        import profy.evaluation
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "sklearn"))
        assert not heavy, heavy
        print("OK")
    """)
    result = subprocess.run([sys.executable, "-"], input=code, text=True, capture_output=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_macro_f1_is_nan_free_for_valid_zero_division():
    assert not math.isnan(M.macro_f1_score([1], [0], labels=[0, 1]))
