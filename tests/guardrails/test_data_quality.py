"""Data-quality suites (GX) on a real tiny run: pass as built, fail for the right reason."""

from __future__ import annotations

import json

import mutations as mut
from conftest import failed_rules

DATA = ("data.audio_stats", "data.norm_stats", "data.splits")


def test_real_run_passes_every_data_suite(tiny_run_ro, run_selected, tmp_path):
    results = run_selected(tiny_run_ro, *DATA)
    assert {n: r.status for n, r in results.items()} == dict.fromkeys(DATA, "pass")
    # GX's own validation results are kept in the report folder, one file per suite
    gx_dir = tmp_path / "report_pandas" / "gx"
    names = {p.name for p in gx_dir.iterdir()}
    assert {"data.audio_stats.json", "data.splits.json", "data.norm_stats.fold_0.fit.json"} <= names
    doc = json.loads((gx_dir / "data.audio_stats.json").read_text())
    # every GX rule is in GX's own file; quarantine.justified is judged beside GX
    assert doc["success"] is True and len(doc["results"]) + 1 == results[
        "data.audio_stats"].observed["rules"]
    assert "quarantine.justified" in {r["rule"] for r in results["data.audio_stats"].details[
        "rules"]}
    assert not (tiny_run_ro / "guardrails").exists()  # nothing written into the run


def test_take_with_too_few_nonzero_frames_fails(tiny_run, run_selected):
    sample = mut.short_take(tiny_run, frames=119)
    result = run_selected(tiny_run, "data.audio_stats")["data.audio_stats"]
    assert result.status == "fail"
    assert failed_rules(result) == {"nonzero_frames.min"}
    rule = next(r for r in result.details["rules"] if r["rule"] == "nonzero_frames.min")
    assert rule["unexpected_count"] == 1 and rule["examples"] == [119]
    assert sample  # the mutated take exists


def test_min_nonzero_frames_comes_from_the_criteria(tiny_run, run_selected):
    mut.short_take(tiny_run, frames=150)
    ok = run_selected(tiny_run, "data.audio_stats")["data.audio_stats"]
    strict = run_selected(tiny_run, "data.audio_stats",
                          params={"data.audio_stats": {"min_nonzero_frames": 151}})
    assert ok.passed and failed_rules(strict["data.audio_stats"]) == {"nonzero_frames.min"}


def test_nan_snr_is_not_finite(tiny_run, run_selected):
    mut.nan_snr(tiny_run)
    result = run_selected(tiny_run, "data.audio_stats")["data.audio_stats"]
    assert "snr_db.not_null" in failed_rules(result)


def test_snr_bounds_hold_for_mostly_the_takes(tiny_run, run_selected, tiny_run_ro):
    # 1 of 18 takes (5.6%) below the floor is within mostly=0.9; 4 of 18 (22%) is not
    mut.noisy_takes(tiny_run, fraction=1 / 18)
    assert run_selected(tiny_run, "data.audio_stats")["data.audio_stats"].passed
    mut.noisy_takes(tiny_run, fraction=4 / 18)
    result = run_selected(tiny_run, "data.audio_stats")["data.audio_stats"]
    assert failed_rules(result) == {"snr_db.bounds"}


def test_duplicate_sample_id_fails(tiny_run, run_selected):
    mut.duplicate_audio_row(tiny_run)
    result = run_selected(tiny_run, "data.audio_stats")["data.audio_stats"]
    assert failed_rules(result) == {"sample_id.unique"}


def test_zero_std_channel_fails(tiny_run, run_selected):
    mut.zero_std(tiny_run, fold=1)
    result = run_selected(tiny_run, "data.norm_stats")["data.norm_stats"]
    assert failed_rules(result) == {"fold1.std.positive_finite"}


def test_nan_mean_fails(tiny_run, run_selected):
    mut.nan_mean(tiny_run, fold=0)
    result = run_selected(tiny_run, "data.norm_stats")["data.norm_stats"]
    assert failed_rules(result) == {"fold0.mean.not_null"}  # NaN is null to pandas


def test_feature_hash_mismatch_fails(tiny_run, run_selected):
    mut.other_feature_hash(tiny_run, fold=2)
    result = run_selected(tiny_run, "data.norm_stats")["data.norm_stats"]
    assert failed_rules(result) == {"fold2.feature_config_hash.matches"}


def test_stats_edited_after_the_run_fail_the_log_reference(tiny_run, run_selected):
    mut.edit_without_log(tiny_run, fold=1)
    result = run_selected(tiny_run, "data.norm_stats")["data.norm_stats"]
    assert failed_rules(result) == {"fold1.norm_ref.sha256"}


def test_leakage_gate_catches_a_heldout_take_in_the_fit(tiny_run, run_selected):
    leaked = mut.leak_heldout_take(tiny_run, fold=0)
    result = run_selected(tiny_run, "data.norm_stats")["data.norm_stats"]
    assert {"fold0.fit.no_heldout_takes", "fold0.fit.train_takes_only"} <= failed_rules(result)
    assert result.details["leaked_sample_ids"] == [leaked]
    assert "fit.no_heldout_takes" in result.message


def test_legacy_run_fails_the_leakage_gate(tiny_legacy_run_ro, run_selected):
    # legacy-20250925 fitted normalization on every take, held-out ones included
    result = run_selected(tiny_legacy_run_ro, "data.norm_stats")["data.norm_stats"]
    assert result.status == "fail"
    assert {f"fold{k}.fit.no_heldout_takes" for k in range(3)} <= failed_rules(result)


def test_player_on_both_sides_fails(tiny_run, run_selected):
    mut.player_on_both_sides(tiny_run, fold=0)
    result = run_selected(tiny_run, "data.splits")["data.splits"]
    assert failed_rules(result) == {"player.one_role_per_fold"}


def test_take_held_out_twice_fails(tiny_run, run_selected):
    mut.take_held_out_twice(tiny_run)
    result = run_selected(tiny_run, "data.splits")["data.splits"]
    assert "take.held_out_once" in failed_rules(result)


def test_missing_artifact_is_a_failure_naming_the_file(tiny_run, run_selected):
    (tiny_run / "splits.parquet").unlink()
    result = run_selected(tiny_run, "data.splits")["data.splits"]
    assert result.status == "fail" and "splits.parquet" in result.message


def test_splits_without_a_needed_column_fail_naming_file_and_column(tiny_run, run_selected):
    import pyarrow.parquet as pq

    table = pq.read_table(tiny_run / "splits.parquet").drop_columns(["player_id"])
    pq.write_table(table, tiny_run / "splits.parquet")
    results = run_selected(tiny_run, "data.splits", "data.norm_stats")
    for result in results.values():  # a failing check, never a KeyError
        assert result.status == "fail"
        assert "splits.parquet" in result.message and "player_id" in result.message
