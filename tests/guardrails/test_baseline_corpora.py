"""Two real runs on different corpora: the paired F1 comparison is refused (a failing
result naming why), while corpus drift between them is still measured and reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mutations as mut
import pytest

from guardrails import RunContext, criteria_from_dict, run_checks
from guardrails.cli import main


@pytest.fixture(scope="module")
def other_corpus_run_ro(tmp_path_factory) -> Path:
    """A real mm-audiofix run on another synthetic corpus (seed 8: other take ids); read-only."""
    from profy.config import load_profile
    from profy.data import synthesize_corpus
    from profy.training import train

    root = tmp_path_factory.mktemp("other_corpus")
    synthesize_corpus(root / "corpus", size="tiny", seed=8)
    cfg = load_profile("mm-audiofix", ["train.epochs=1"])
    result = train(cfg, root / "corpus", root / "runs", cache_dir=root / "cache",
                   profile="mm-audiofix")
    return Path(result.run_dir)


@pytest.fixture
def louder_run(other_corpus_run_ro, tmp_path) -> Path:
    """The other corpus with every take 25 dB cleaner: drift the KS/PSI test must flag."""
    run = tmp_path / other_corpus_run_ro.name
    shutil.copytree(other_corpus_run_ro, run, symlinks=True)
    stats = mut.read(run, "audio_stats")
    stats["snr_db"] = stats["snr_db"] + 25.0
    mut.write(run, "audio_stats", stats)
    return run


def test_other_corpus_is_refused_for_f1_but_drift_is_reported(tiny_run_ro, louder_run,
                                                              tmp_path):
    ctx = RunContext(louder_run, report_dir=tmp_path, baseline=RunContext(tiny_run_ro))
    crit = criteria_from_dict({"version": 1, "checks": {"baseline.f1_delta": {},
                                                        "baseline.drift": {}}})
    refused, drift = run_checks(ctx, crit)
    assert refused.name == "baseline.f1_delta" and refused.status == "fail"
    assert refused.details["refused"] and "different corpora" in refused.message
    assert drift.name == "baseline.drift" and not drift.skipped and not drift.passed
    assert "snr_db" in drift.details["drifting"] and "snr_db" in drift.message
    assert drift.details["audio_stats"]["snr_db"]["psi"] > 0.25
    assert set(drift.details["norm_stats"]) == {"0", "1", "2"}  # per-fold stats compared


def test_ci_and_gate_with_a_baseline_on_another_corpus_give_a_verdict(
        tiny_run_ro, other_corpus_run_ro, tmp_path, capsys):
    for command in ("ci", "gate"):
        report = tmp_path / command
        code = main([command, str(other_corpus_run_ro), "--baseline", str(tiny_run_ro),
                     "--report-dir", str(report), "--quiet"])
        err = capsys.readouterr().err
        assert code == 1, err  # a failed check, not bad input (2), not a crash
        verdict = json.loads((report / "verdict.json").read_text())
        by = {c["name"]: c for c in verdict["checks"]}
        assert by["baseline.f1_delta"]["status"] == "fail"
        assert "different corpora" in by["baseline.f1_delta"]["message"]
        drift = by["baseline.drift"]
        assert drift["status"] in ("pass", "warn") and drift["details"]["audio_stats"]
        if command == "gate":
            assert "baseline.f1_delta refused" in err and "different corpora" in err
