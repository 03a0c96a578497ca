"""``train --skip-bad`` leaves out takes by the gate's own data-quality rules.

One take of the tiny corpus is cut to 2 s (about 100 non-zero log-mel frames, under the
plan's 120): without ``--skip-bad`` the run trains on it and ``data.audio_stats`` fails
(as before); with it the take is listed in ``quarantine.json`` with its rule and value,
is absent from every run artifact, and the gate's data checks judge the takes used.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from profy.contract.quarantine import QUARANTINE_FILE, TAKE_RULES, take_rule_breaks

PARAMS = {"min_nonzero_frames": 120, "min_snr_db": 0.0, "max_snr_db": 100.0,
          "min_nonsilent_ratio": 0.2}


def _cut_take(corpus: Path, seconds: float = 2.0) -> str:
    from profy.data import build_manifest

    table = build_manifest(corpus).table
    sample_id = table["sample_id"][2].as_py()
    wav = corpus / table["audio_path"][2].as_py()
    audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    sf.write(wav, audio[: int(seconds * rate)], rate, subtype="FLOAT", format="WAVEX")
    return sample_id


def _train(corpus: Path, out: Path, *, skip_bad: bool) -> Path:
    from profy.config import load_profile
    from profy.training import train

    cfg = load_profile("mm-audiofix", ["train.epochs=1", "train.modes=[sensor,multimodal]"])
    result = train(cfg, corpus, out / "runs", cache_dir=out / "cache", skip_bad=skip_bad,
                   workers=1)
    return Path(result.run_dir)


@pytest.fixture(scope="module")
def short_take_runs(tiny_corpus_ro, tmp_path_factory):
    corpus = tmp_path_factory.mktemp("short") / "corpus"
    shutil.copytree(tiny_corpus_ro, corpus)
    short = _cut_take(corpus)
    out = tmp_path_factory.mktemp("runs")
    return short, _train(corpus, out / "plain", skip_bad=False), \
        _train(corpus, out / "skip", skip_bad=True)


@pytest.mark.slow
def test_skip_bad_quarantines_by_the_gate_rules(short_take_runs, run_selected):
    short, plain, skip = short_take_runs
    doc = json.loads((skip / QUARANTINE_FILE).read_text())
    assert doc["count"] == 1 and doc["criteria"]["data.audio_stats"]["min_nonzero_frames"] == 120
    (entry,) = doc["takes"]
    assert entry["sample_id"] == short and entry["rule"] == "nonzero_frames.min"
    assert entry["observed"] < 120 and entry["expected"] == ">= 120"
    n_used = pq.read_table(skip / "splits.parquet").column("sample_id").unique()
    assert doc["n_candidates"] == len(n_used) + 1
    for artifact in ("splits.parquet", "predictions.parquet", "audio_stats.parquet",
                     "manifest.parquet", "features/feature_index.parquet",
                     "modality_weights.parquet"):
        assert short not in pq.read_table(skip / artifact).column("sample_id").to_pylist()

    results = run_selected(skip, "data.audio_stats", "data.quarantine",
                           params={"data.quarantine": {"max_fraction": 0.1}})
    assert results["data.audio_stats"].passed, results["data.audio_stats"].message
    assert results["data.quarantine"].passed, results["data.quarantine"].message
    assert results["data.quarantine"].observed["quarantined"] == 1
    # 1 of 16 takes is over the default 5% limit: the check can fail
    strict = run_selected(skip, "data.quarantine")["data.quarantine"]
    assert not strict.passed and "> 5%" in strict.message


@pytest.mark.slow
def test_without_skip_bad_the_take_is_trained_and_the_gate_fails(short_take_runs,
                                                                 run_selected):
    short, plain, _ = short_take_runs
    doc = json.loads((plain / QUARANTINE_FILE).read_text())
    assert doc["count"] == 0 and doc["takes"] == []
    assert short in pq.read_table(plain / "splits.parquet").column("sample_id").to_pylist()
    results = run_selected(plain, "data.audio_stats", "data.quarantine")
    assert not results["data.audio_stats"].passed
    assert "nonzero_frames.min" in results["data.audio_stats"].observed["failed_rules"]
    assert results["data.quarantine"].passed


@pytest.mark.slow
def test_quarantine_record_is_checked_not_trusted(short_take_runs, run_selected, tmp_path):
    short, _, skip = short_take_runs
    run = tmp_path / skip.name
    shutil.copytree(skip, run)
    path = run / QUARANTINE_FILE
    doc = json.loads(path.read_text())

    # a take left out without cause (its value meets the gate's threshold)
    doc["takes"][0]["observed"] = 500.0
    path.write_text(json.dumps(doc))
    result = run_selected(run, "data.audio_stats")["data.audio_stats"]
    assert not result.passed and "quarantine.justified" in result.observed["failed_rules"]

    # a take listed as quarantined but trained on anyway
    used = pq.read_table(run / "splits.parquet").column("sample_id")[0].as_py()
    doc["takes"].append({**doc["takes"][0], "sample_id": used})
    doc["count"] = 2
    path.write_text(json.dumps(doc))
    result = run_selected(run, "data.quarantine",
                          params={"data.quarantine": {"max_fraction": 0.5}})["data.quarantine"]
    assert not result.passed and used in result.message

    doc["count"] = 7  # the count is recomputed, not read on trust
    path.write_text(json.dumps(doc))
    result = run_selected(run, "data.quarantine")["data.quarantine"]
    assert not result.passed and "'count' says 7" in result.message

    path.unlink()
    result = run_selected(run, "data.quarantine")["data.quarantine"]
    assert not result.passed and result.message.startswith("missing evidence")


_value = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
                   st.integers(-1000, 1000))


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.fixed_dictionaries({
    "nonzero_frames": _value, "snr_db": _value, "nonsilent_ratio": _value,
    "finite": st.booleans()}), max_size=8),
    low=st.integers(0, 300))
def test_take_rules_flag_exactly_the_rows_out_of_bounds(rows, low):
    params = {**PARAMS, "min_nonzero_frames": low}
    rows = [{"sample_id": f"t{i}", **r} for i, r in enumerate(rows)]
    flagged = {e["sample_id"]: e for e in take_rule_breaks(rows, params)}

    def ok(v, lo, hi):
        return (v is not None and not isinstance(v, bool) and np.isfinite(float(v))
                and (lo is None or float(v) >= lo) and (hi is None or float(v) <= hi))

    for r in rows:
        good = (ok(r["nonzero_frames"], low, None) and ok(r["snr_db"], 0.0, 100.0)
                and ok(r["nonsilent_ratio"], 0.2, 1.0) and r["finite"] is True)
        assert (r["sample_id"] not in flagged) == good
        if not good:  # recorded under the first rule it breaks, with that rule's bound
            rule = next(t for t in TAKE_RULES if t.name == flagged[r["sample_id"]]["rule"])
            assert rule.broken_by(r[rule.column], params)


def test_gx_suite_and_quarantine_share_the_rules(tmp_path):
    """The GX suite flags (mostly aside) the same takes ``take_rule_breaks`` leaves out."""
    import pandas as pd

    from guardrails.checks._gx import validate
    from guardrails.checks.data_quality import audio_stats_rules

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"sample_id": [f"t{i}" for i in range(40)],
                          "nonzero_frames": rng.integers(60, 400, 40),
                          "snr_db": rng.uniform(-20, 120, 40),
                          "nonsilent_ratio": rng.uniform(0, 1, 40), "finite": True,
                          "frames": 560, "valid_frames": 50})
    for c in ("spectral_flatness", "loudness_db", "clipping_ratio", "peak", "duration_s"):
        frame[c] = 0.5
    rules = audio_stats_rules(**PARAMS, snr_mostly=1.0, nonsilent_mostly=1.0)
    outcomes = {o.id: o for o in validate(frame, rules, suite="t", engine="pandas",
                                          report_dir=tmp_path)}
    breaks = take_rule_breaks(frame.to_dict("records"), PARAMS)
    for rule in TAKE_RULES:
        mine = sum(1 for r in frame.to_dict("records") if rule.broken_by(r[rule.column], PARAMS))
        assert outcomes[rule.name].unexpected_count == mine
    assert {b["sample_id"] for b in breaks} == {
        r["sample_id"] for r in frame.to_dict("records")
        if any(t.broken_by(r[t.column], PARAMS) for t in TAKE_RULES)}
