"""complete_results.json: build from predictions, validate, write/read round trip, tampering."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as st

from profy.contract.schemas import PIECES, piece_kind
from profy.errors import ConfigError, MalformedFileError, MissingInputError
from profy.evaluation import results as R
from profy.evaluation._schema import schema_problem

RUN_META = {"config_hash": "abc123", "git_hash": "deadbeef", "date": "2025-01-01T00:00:00Z",
            "versions": {"numpy": np.__version__}, "seed": 7, "profile": "test"}


def make_predictions(*, modes=("sensor", "multimodal"), n_folds=3, per_fold=12, seed=0,
                     accuracy=0.8) -> pd.DataFrame:
    """Deterministic predictions: each take held out once per mode, ~``accuracy`` correct."""
    rng = np.random.default_rng(seed)
    rows = []
    for mode in modes:
        for k in range(n_folds):
            for i in range(per_fold):
                label = int(rng.random() < 0.5)
                correct = rng.random() < accuracy
                pred = label if correct else 1 - label
                prob = rng.uniform(0.5, 1.0) if pred else rng.uniform(0.0, 0.5)
                rows.append({"mode": mode, "fold": k, "sample_id": f"take{k:02d}{i:03d}",
                             "label": label, "probability": prob, "prediction": pred})
    return pd.DataFrame(rows)


def make_slices(predictions: pd.DataFrame) -> pd.DataFrame:
    ids = sorted(predictions["sample_id"].unique())
    return pd.DataFrame({"sample_id": ids, "piece": [PIECES[i % 4 * 4] for i in range(len(ids))]})


def build(predictions=None, **kw):
    predictions = make_predictions() if predictions is None else predictions
    kw.setdefault("modes", list(dict.fromkeys(predictions["mode"])))
    kw.setdefault("n_folds", int(predictions["fold"].max()) + 1)
    kw.setdefault("run_meta", RUN_META)
    return R.build_complete_results(predictions, **kw)


@pytest.fixture(scope="module")
def results():
    preds = make_predictions()
    return build(preds, slices=make_slices(preds))


# --- build ------------------------------------------------------------------------------


def test_fold_scores_match_sklearn(results):
    preds = make_predictions()
    for (mode, k), part in preds.groupby(["mode", "fold"]):
        fold = results["modes"][mode]["folds"][str(k)]
        y, p = part["label"], part["prediction"]
        assert fold["n_samples"] == len(part)
        assert fold["macro_f1"] == pytest.approx(skm.f1_score(y, p, average="macro"), abs=1e-12)
        assert fold["weighted_f1"] == pytest.approx(skm.f1_score(y, p, average="weighted"),
                                                    abs=1e-12)
        assert fold["accuracy"] == pytest.approx(skm.accuracy_score(y, p), abs=1e-12)
        assert fold["confusion_matrix"] == skm.confusion_matrix(y, p, labels=[0, 1]).tolist()
        prec, rec, f1, sup = skm.precision_recall_fscore_support(y, p, labels=[0, 1],
                                                                 zero_division=0.0)
        for i, name in enumerate(("amateur", "pro")):
            assert fold["per_class"][name] == pytest.approx(
                {"precision": prec[i], "recall": rec[i], "f1": f1[i], "support": sup[i]})


def test_top_level_keys_and_conventions(results):
    assert set(results) == {"schema_version", "run", "n_folds", "class_names", "zero_division",
                            "ece_n_bins", "std_ddof", "std_warning", "higher_is_better",
                            "metric_versions", "modes", "warnings"}
    assert results["schema_version"] == "1" and results["std_ddof"] == 0
    assert results["higher_is_better"] == {"accuracy": True, "macro_f1": True,
                                           "weighted_f1": True, "ece": False}
    assert results["run"] == RUN_META
    for block in results["modes"].values():
        f1 = [block["folds"][str(k)]["macro_f1"] for k in range(3)]
        assert block["mean"]["macro_f1"] == np.mean(f1)
        assert block["std"]["macro_f1"] == np.std(f1)  # population std, ddof=0
        assert set(block["mean"]) == set(block["std"]) == {"accuracy", "macro_f1",
                                                            "weighted_f1", "ece"}


def test_macro_and_weighted_reported_under_their_own_names():
    # one imbalanced fold (9 pro, 3 amateur) where the model always says pro
    preds = pd.DataFrame({"mode": "audio", "fold": 0, "sample_id": [f"s{i}" for i in range(12)],
                          "label": [1] * 9 + [0] * 3, "probability": 0.9, "prediction": 1})
    fold = build(preds)["modes"]["audio"]["folds"]["0"]
    assert fold["macro_f1"] == pytest.approx(skm.f1_score(preds.label, preds.prediction,
                                                          average="macro"))
    assert fold["weighted_f1"] == pytest.approx(skm.f1_score(preds.label, preds.prediction,
                                                             average="weighted"))
    assert fold["weighted_f1"] - fold["macro_f1"] > 0.2
    # and a file that reports weighted F1 as macro F1 does not validate
    obj = build(preds)
    obj["modes"]["audio"]["folds"]["0"]["macro_f1"] = fold["weighted_f1"]
    with pytest.raises(MalformedFileError, match=r"modes\.audio\.folds\.0\.macro_f1"):
        R.validate_complete_results(obj)


def test_per_piece_slices(results):
    preds = make_predictions()
    pieces = make_slices(preds).set_index("sample_id")["piece"]
    for mode, block in results["modes"].items():
        part = preds[preds["mode"] == mode].assign(piece=lambda d: d["sample_id"].map(pieces))
        assert set(block["per_piece"]) == set(part["piece"])
        for piece, g in part.groupby("piece"):
            got = block["per_piece"][piece]
            assert got["n_samples"] == len(g)
            assert got["macro_f1"] == pytest.approx(skm.f1_score(
                g.label, g.prediction, labels=[0, 1], average="macro", zero_division=0.0))
        kinds = part["piece"].map(piece_kind)
        assert {k: v["n_samples"] for k, v in block["per_piece_kind"].items()} == \
            kinds.value_counts().to_dict()


def test_accepts_predictions_parquet_types(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from profy.contract.schemas import PREDICTIONS_SCHEMA

    preds = make_predictions()
    table = pa.Table.from_pandas(preds, schema=PREDICTIONS_SCHEMA, preserve_index=False)
    pq.write_table(table, tmp_path / "predictions.parquet")
    typed = pq.read_table(tmp_path / "predictions.parquet").to_pandas()
    assert typed["label"].dtype == np.int32
    assert build(typed) == build(preds)


def test_without_slices_per_piece_is_empty():
    obj = build()
    assert all(b["per_piece"] == {} == b["per_piece_kind"] for b in obj["modes"].values())
    R.validate_complete_results(obj)


def test_degenerate_fold_is_scored_and_warned():
    preds = make_predictions(modes=("audio",), n_folds=2)
    preds.loc[preds["fold"] == 1, ["label", "prediction"]] = 1  # fold 1: all pro, all right
    obj = build(preds, std_warning=1.0)
    fold = obj["modes"]["audio"]["folds"]["1"]
    assert fold["macro_f1"] == 0.5  # amateur: no support, no predictions -> zero_division 0
    assert fold["per_class"]["amateur"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                            "support": 0}
    warnings = obj["modes"]["audio"]["warnings"]
    assert any(w.startswith("fold 1: no amateur takes") for w in warnings)
    assert any(w.startswith("fold 1: no take predicted amateur") for w in warnings)
    assert obj["warnings"] == [f"audio: {w}" for w in warnings]
    R.validate_complete_results(obj)


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 2**16), n_folds=st.integers(1, 4), threshold=st.floats(0, 0.3))
def test_std_warning_exactly_when_std_exceeds_threshold(seed, n_folds, threshold):
    preds = make_predictions(modes=("multimodal",), n_folds=n_folds, per_fold=8, seed=seed,
                             accuracy=0.7)
    obj = build(preds, std_warning=threshold)
    f1 = [skm.f1_score(g.label, g.prediction, labels=[0, 1], average="macro",
                       zero_division=0.0) for _, g in preds.groupby("fold")]
    flagged = [w for w in obj["modes"]["multimodal"]["warnings"] if w.startswith("std(")]
    assert len(flagged) == int(np.std(f1) > threshold)
    if flagged:
        assert flagged[0] == (f"std(macro F1) = {np.std(f1):.4f} > {threshold:g} over "
                              f"{n_folds} folds (std_ddof=0)")
    R.validate_complete_results(obj)


def test_std_warning_threshold_is_strict():
    obj = build()
    std = obj["modes"]["sensor"]["std"]["macro_f1"]
    assert std > 0
    for threshold, expected in ((std - 1e-12, True), (std, False), (std + 1e-12, False)):
        obj = build(std_warning=threshold)
        assert any(w.startswith("std(") for w in obj["modes"]["sensor"]["warnings"]) == expected
        assert any(w.startswith("sensor: std(") for w in obj["warnings"]) == expected


@pytest.mark.parametrize(("mutate", "match"), [
    (lambda d: d.drop(d[(d["mode"] == "sensor") & (d["fold"] == 2)].index),
     "mode 'sensor' has no predictions for fold 2"),
    (lambda d: d.assign(label=d["label"].astype(float).where(d.index != 5)),
     "'label' holds NaN/None at row 5"),
    (lambda d: d.assign(probability=d["probability"].where(d.index != 3)),
     "'probability' holds NaN/None at row 3"),
    (lambda d: d.assign(prediction=d["prediction"].replace({1: 2})), "'prediction' holds 2"),
    (lambda d: d.assign(probability=d["probability"] + 1.0), "P\\(pro\\) in \\[0, 1\\]"),
    (lambda d: d.assign(probability=np.inf), "'probability' holds inf"),
    (lambda d: d.assign(fold=d["fold"].replace({2: 3})), "hold fold 3"),
    (lambda d: d.drop(columns="probability"), "lack columns \\['probability'\\]"),
    (lambda d: pd.concat([d, d.iloc[[0]]]), "predicted twice in mode 'sensor'"),
    (lambda d: d.assign(mode=d["mode"].replace({"sensor": "audio"})), "modes \\['audio'\\]"),
])
def test_build_rejects_bad_predictions(mutate, match):
    with pytest.raises(ConfigError, match=match):
        build(mutate(make_predictions()), modes=["sensor", "multimodal"], n_folds=3)


@pytest.mark.parametrize(("kw", "match"), [
    ({"modes": []}, "modes must be"),
    ({"modes": ["sensor", "sensor"]}, "modes must be"),
    ({"modes": ["video"]}, "modes must be"),
    ({"n_folds": 0}, "n_folds"),
    ({"std_warning": float("nan")}, "std_warning"),
    ({"run_meta": {"seed": 1}}, "run_meta lacks"),
    ({"run_meta": {**RUN_META, "seed": "7"}}, "run_meta: run.seed: expected integer"),
    ({"run_meta": {**RUN_META, "extra": float("nan")}}, "not JSON-serializable"),
    ({"slices": pd.DataFrame({"sample_id": ["x"], "piece": ["Scale C-dur"]})}, "slices miss"),
    ({"slices": pd.DataFrame({"sample_id": ["x"], "piece": ["Etude"]})}, "Etude"),
])
def test_build_rejects_bad_arguments(kw, match):
    with pytest.raises(ConfigError, match=match):
        build(**kw)


# --- write / read -----------------------------------------------------------------------


def test_round_trip(results, tmp_path):
    path = R.write_complete_results(results, tmp_path / "run" / "complete_results.json")
    assert R.read_complete_results(path) == results
    assert json.loads(path.read_text()) == results
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temp left


def test_invalid_object_is_not_written(results, tmp_path):
    path = tmp_path / "complete_results.json"
    R.write_complete_results(results, path)
    before = path.read_bytes()
    bad = copy.deepcopy(results)
    bad["modes"]["sensor"]["folds"]["0"]["accuracy"] = 1.3
    with pytest.raises(MalformedFileError, match="complete_results.json: .*accuracy: 1.3"):
        R.write_complete_results(bad, path)
    assert path.read_bytes() == before
    with pytest.raises(MalformedFileError):
        R.write_complete_results(bad, tmp_path / "other.json")
    assert not (tmp_path / "other.json").exists()


def _set(path):
    def mutate(obj, value):
        *head, last = path
        for key in head:
            obj = obj[key]
        if value is _DELETE:
            del obj[last]
        else:
            obj[last] = value(obj.get(last)) if callable(value) else value
    return mutate


_DELETE = object()
M, F = ("modes", "multimodal"), ("modes", "multimodal", "folds")

TAMPERS = {
    "mean changed": (_set((*M, "mean", "macro_f1")), lambda v: v + 0.01,
                     r"modes\.multimodal\.mean\.macro_f1: .* but the folds give"),
    "std changed": (_set((*M, "std", "accuracy")), lambda v: v + 0.01,
                    r"modes\.multimodal\.std\.accuracy"),
    "fold removed": (_set((*F, "2")), _DELETE,
                     r"modes\.multimodal\.folds: has folds \['0', '1'\], expected"),
    "fold added": (_set((*F, "3")), lambda _: None, r"modes\.multimodal\.folds\.3"),
    "value 1.3": (_set((*F, "1", "macro_f1")), 1.3,
                  r"modes\.multimodal\.folds\.1\.macro_f1: 1\.3 is above the maximum"),
    "negative ece": (_set((*F, "1", "ece")), -0.1, r"folds\.1\.ece: -0\.1 is below"),
    "missing key": (_set((*F, "0", "weighted_f1")), _DELETE,
                    r"modes\.multimodal\.folds\.0\.weighted_f1: missing key"),
    "wrong type": (_set((*F, "0", "n_samples")), "12",
                   r"folds\.0\.n_samples: expected integer, got str"),
    "bool as int": (_set(("n_folds",)), True, r"n_folds: expected integer, got bool"),
    "unknown version": (_set(("schema_version",)), "2",
                        r"schema_version: unknown schema_version '2'"),
    "n_folds mismatch": (_set(("n_folds",)), 4, r"folds: has folds .* \(n_folds=4\)"),
    "accuracy vs matrix": (_set((*F, "0", "accuracy")), lambda v: v / 2,
                           r"folds\.0\.accuracy: .* but the confusion matrix gives"),
    "matrix changed": (_set((*F, "0", "confusion_matrix")), lambda m: [m[1], m[0]],
                       r"folds\.0\.n_samples|folds\.0\.accuracy|folds\.0\.per_class"),
    "support changed": (_set((*F, "0", "per_class", "pro", "support")), lambda v: v + 1,
                        r"folds\.0\.per_class\.pro\.support"),
    "NaN": (_set((*F, "0", "ece")), float("nan"), r"folds\.0\.ece: nan is not a finite"),
    "direction flipped": (_set(("higher_is_better", "ece")), True,
                          r"higher_is_better\.ece: True contradicts"),
    "unknown mode": (_set(("modes", "video")), lambda _: {}, r"modes\.video: key is not one"),
    "extra key": (_set((*M, "note")), "hi", r"modes\.multimodal\.note: unexpected key"),
    "warning dropped": (_set(("warnings",)), lambda w: w[1:], r"^<results>: warnings"),
    "std warning forged": (_set((*M, "warnings")), lambda w: [*w, "std(macro F1) = 0.9"],
                           r"modes\.multimodal\.warnings: std\(macro F1\)"),
    "run key missing": (_set(("run", "config_hash")), _DELETE, r"run\.config_hash: missing"),
    "piece count": (_set((*M, "per_piece_kind", "scale", "n_samples")), lambda v: v + 1,
                    r"modes\.multimodal\.per_piece_kind: covers"),
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_tampered_results_fail_with_the_key_named(results, case, tmp_path):
    mutate, value, match = TAMPERS[case]
    obj = copy.deepcopy(results)
    obj["warnings"].insert(0, "multimodal: placeholder")  # so "warning dropped" has one
    obj["modes"]["multimodal"]["warnings"].insert(0, "placeholder")
    R.validate_complete_results(obj)
    mutate(obj, value)
    with pytest.raises(MalformedFileError, match=match):
        R.validate_complete_results(obj)
    # the same file on disk fails on read, with its path in the message
    path = tmp_path / "complete_results.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(MalformedFileError, match=str(path)):
        R.read_complete_results(path)


def test_read_rejects_non_json_and_missing(tmp_path, results):
    with pytest.raises(MissingInputError):
        R.read_complete_results(tmp_path / "absent.json")
    path = tmp_path / "complete_results.json"
    path.write_text(json.dumps(results).replace('"ece_n_bins": 10', '"ece_n_bins": NaN'))
    with pytest.raises(MalformedFileError, match="not readable JSON"):
        R.read_complete_results(path)
    path.write_text("[1, 2]")
    with pytest.raises(MalformedFileError, match="expected object"):
        R.read_complete_results(path)


def test_single_fold_has_zero_std():
    obj = build(make_predictions(n_folds=1), std_warning=0.0)
    assert obj["modes"]["sensor"]["std"]["macro_f1"] == 0.0
    assert obj["warnings"] == []  # 0 > 0 is false


# --- helpers ----------------------------------------------------------------------------


def test_confusion_csv():
    text = R.confusion_csv(np.array([[5, 1], [2, 7]]))
    assert text == "true/predicted,amateur,pro\namateur,5,1\npro,2,7\n"
    frame = pd.read_csv(pd.io.common.StringIO(text), index_col=0)
    assert frame.to_numpy().tolist() == [[5, 1], [2, 7]]
    assert R.confusion_csv([[1, 0, 0]] * 3, labels="abc").startswith("true/predicted,a,b,c")


@pytest.mark.parametrize("cm", [[[1, 2]], [[1, -1], [0, 0]], [[0.5, 1], [0, 0]],
                                [["a", "b"], ["c", "d"]], [[np.nan, 0], [0, 0]]])
def test_confusion_csv_rejects_bad_matrices(cm):
    with pytest.raises(ConfigError, match="confusion matrix must be 2x2"):
        R.confusion_csv(cm)


def test_schema_is_plain_json_and_checker_basics():
    json.dumps(R.COMPLETE_RESULTS_SCHEMA)  # usable by any JSON-Schema validator
    assert schema_problem(1, {"type": "integer"}) is None
    assert schema_problem(True, {"type": "integer"}) == "<root>: expected integer, got bool True"
    assert schema_problem(1.5, {"type": "number", "maximum": 1}).endswith("above the maximum 1")
    assert schema_problem([1, "x"], {"type": "array", "items": {"type": "integer"}}) == \
        "[1]: expected integer, got str 'x'"
    assert schema_problem({"a": 1}, {"required": ["b"]}) == "b: missing key"
    assert schema_problem(True, {"const": 1}) is not None  # JSON true is not 1
