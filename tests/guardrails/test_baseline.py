"""Baseline comparison: interval coverage, pairing, refusal of incomparable runs, the CLI."""

from __future__ import annotations

import json
import shutil

import mutations as mut
import numpy as np

from guardrails import RunContext, criteria_from_dict, run_checks
from guardrails.cli import main
from guardrails.gates._evidence import FoldPlayers
from guardrails.gates._metrics import counts_by_group, macro_f1
from guardrails.gates.baseline import comparability_problems, paired_bootstrap, resolve_baseline


def _population(rng, n_players: int, takes: int):
    """Players with a class and two models' per-take predictions (B a little worse)."""
    player = np.repeat(np.arange(n_players), takes)
    label = np.repeat(rng.integers(0, 2, n_players), takes)
    skill = np.repeat(rng.beta(6, 3, n_players), takes)  # player-level: takes correlate
    a_right = rng.random(player.size) < skill
    b_right = rng.random(player.size) < np.clip(skill - 0.06, 0, 1)
    return player, label, np.where(a_right, label, 1 - label), np.where(b_right, label, 1 - label)


def test_paired_player_bootstrap_covers_the_true_difference_at_about_the_stated_rate():
    rng = np.random.default_rng(42)
    folds = [_population(rng, 3000, 5) for _ in range(3)]
    truth = np.mean([macro_f1(lab, a) - macro_f1(lab, b) for _, lab, a, b in folds])
    confidence, hits, reps = 0.9, 0, 300
    for _ in range(reps):
        cand, base = [], []
        for player, lab, a, b in folds:
            chosen = rng.choice(3000, size=25, replace=False)
            keep = np.isin(player, chosen)
            ids, ca = counts_by_group(player[keep], lab[keep], a[keep])
            _, cb = counts_by_group(player[keep], lab[keep], b[keep])
            cand.append(FoldPlayers.from_counts(ids, ca))
            base.append(FoldPlayers.from_counts(ids, cb))
        iv = paired_bootstrap(cand, base, n_boot=400, confidence=confidence, rng=rng)
        hits += iv.low <= truth <= iv.high
    coverage = hits / reps
    # percentile bootstrap on 25 players per fold: close to nominal, a little under
    assert 0.82 <= coverage <= 0.97, coverage



def _ctx(run, baseline=None, seed=0, tmp=None):
    base = RunContext(baseline) if baseline is not None else None
    return RunContext(run, report_dir=tmp, baseline=base, seed=seed)


def _run(ctx, *names, params=None):
    params = params or {}
    crit = criteria_from_dict({"version": 1, "checks": {n: params.get(n, {}) for n in names}})
    return run_checks(ctx, crit)


def test_same_run_as_baseline_has_zero_delta_and_passes(tiny_run, tmp_path):
    run = mut.takes_as_players(tiny_run)
    results = _run(_ctx(run, run, tmp=tmp_path), "baseline.f1_delta", "baseline.drift")
    deltas = {r.name: r for r in results if r.name.startswith("baseline.f1_delta")}
    assert set(deltas) == {f"baseline.f1_delta[{m}]" for m in ("sensor", "audio", "multimodal")}
    for r in deltas.values():
        assert r.passed and r.details["delta"] == 0.0 and r.details["ci"] == [0.0, 0.0]
        assert set(r.details["per_fold_delta"]) == {0, 1, 2}
        assert r.details["dropped_players"]["n_first_only"] == 0
    drift = next(r for r in results if r.name == "baseline.drift")
    assert drift.passed and "ks_2samp" in drift.details["method"]


def test_one_player_per_label_and_fold_gives_no_interval(tiny_run_ro, tmp_path):
    """The tiny corpus holds one pro and one amateur player per fold: a resample within
    (fold, label) strata never varies, so no interval is claimed (issue 18, item 9)."""
    results = _run(_ctx(tiny_run_ro, tiny_run_ro, tmp=tmp_path), "baseline.f1_delta")
    assert len(results) == 3
    for r in results:
        assert not r.passed and r.details["ci"] is None and not r.details["ci_estimable"]
        assert "no 95% interval can be estimated" in r.message
        assert "fold 0: 1 amateur player, 1 pro player" in r.message
        assert r.details["delta"] == 0.0


def test_without_baseline_the_checks_skip(tiny_run_ro, tmp_path):
    results = _run(_ctx(tiny_run_ro, tmp=tmp_path), "baseline.f1_delta", "baseline.drift")
    assert all(r.skipped for r in results)


def test_worse_candidate_fails_and_seed_repeats_the_interval(tiny_run_ro, tiny_run, tmp_path):
    base = tmp_path / "base" / tiny_run_ro.name
    shutil.copytree(tiny_run_ro, base)
    mut.takes_as_players(base)
    mut.takes_as_players(tiny_run)
    preds = mut.read(tiny_run, "predictions")
    mm = preds["mode"] == "multimodal"
    preds.loc[mm, "prediction"] = 1 - preds.loc[mm, "label"]  # every multimodal take wrong
    mut.write(tiny_run, "predictions", preds)
    params = {"baseline.f1_delta": {"n_boot": 500}}
    one = {r.name: r for r in _run(_ctx(tiny_run, base, seed=3, tmp=tmp_path),
                                   "baseline.f1_delta", params=params)}
    two = {r.name: r for r in _run(_ctx(tiny_run, base, seed=3, tmp=tmp_path),
                                   "baseline.f1_delta", params=params)}
    bad = one["baseline.f1_delta[multimodal]"]
    assert not bad.passed and "WORSE" in bad.message
    assert bad.details["ci"][1] < -0.02
    assert bad.details["ci"] == two["baseline.f1_delta[multimodal]"].details["ci"]
    assert one["baseline.f1_delta[sensor]"].passed


def test_incomparable_runs_are_refused(tiny_run_ro, tiny_run, tmp_path):
    splits = mut.read(tiny_run, "splits")
    test = splits[(splits["role"] == "test") & (splits["fold"] == 0)].index[0]
    sid = splits.loc[test, "sample_id"]
    # the held-out take moves to fold 1's held-out set: a different split
    splits.loc[(splits["sample_id"] == sid) & (splits["fold"] == 1), "role"] = "test"
    splits.loc[test, "role"] = "train"
    mut.write(tiny_run, "splits", splits)
    problems = comparability_problems(_ctx(tiny_run, tmp=tmp_path), RunContext(tiny_run_ro))
    assert any("different splits" in p for p in problems)
    # refused as a failing result (no per-mode deltas), not an exception: the verdict stands
    results = _run(_ctx(tiny_run, tiny_run_ro, tmp=tmp_path), "baseline.f1_delta",
                   "baseline.drift")
    assert [r.name for r in results] == ["baseline.f1_delta", "baseline.drift"]
    refused, drift = results
    assert not refused.passed and refused.status == "fail" and refused.details["refused"]
    assert "refused" in refused.message and "different splits" in refused.message
    assert drift.passed and not drift.skipped  # same corpus: no drift, still reported


def test_different_labels_and_corpora_are_named(tiny_run_ro, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_run_ro, other)
    splits = mut.read(other, "splits")
    sid = splits.loc[0, "sample_id"]
    flip = {"pro": "amateur", "amateur": "pro"}[splits.loc[0, "label"]]
    splits.loc[splits["sample_id"] == sid, "label"] = flip
    mut.write(other, "splits", splits)
    problems = comparability_problems(RunContext(tiny_run_ro), RunContext(other))
    assert any("different labels" in p and sid in p for p in problems)
    splits = splits[splits["sample_id"] != sid]
    mut.write(other, "splits", splits)
    problems = comparability_problems(RunContext(tiny_run_ro), RunContext(other))
    assert any("different corpora" in p for p in problems)


def test_gate_cli_prints_deltas_and_refuses_incomparable_runs_with_a_verdict(
        tiny_run_ro, tiny_run, tmp_path, capsys):
    code = main(["gate", str(tiny_run_ro), "--baseline", str(tiny_run_ro), "--report-dir",
                 str(tmp_path / "rep"), "--seed", "1"])
    out = capsys.readouterr().out
    assert code in (0, 1)  # tiny runs do not reach the plan's F1 targets
    assert "paired macro-F1 deltas" in out and "multimodal" in out
    verdict = json.loads((tmp_path / "rep" / "verdict.json").read_text())
    names = {c["name"] for c in verdict["checks"]}
    assert "baseline.f1_delta[multimodal]" in names and "gate.multimodal_f1" in names
    splits = mut.read(tiny_run, "splits")
    mut.write(tiny_run, "splits", splits[splits["sample_id"] != splits.loc[0, "sample_id"]])
    code = main(["gate", str(tiny_run), "--baseline", str(tiny_run_ro), "--report-dir",
                 str(tmp_path / "rep2"), "--quiet"])
    err = capsys.readouterr().err
    # a check failed (exit 1), not bad input (2): the refusal is named even with --quiet,
    # and the verdict records it next to the drift report
    assert code == 1 and "baseline.f1_delta refused" in err and "different corpora" in err
    verdict = json.loads((tmp_path / "rep2" / "verdict.json").read_text())
    by = {c["name"]: c for c in verdict["checks"]}
    assert by["baseline.f1_delta"]["status"] == "fail"
    assert "different corpora" in by["baseline.f1_delta"]["message"]
    assert not any(n.startswith("baseline.f1_delta[") for n in by)
    assert by["baseline.drift"]["status"] in ("pass", "warn") and by["baseline.drift"]["details"]
    assert main(["gate", str(tiny_run_ro), "--baseline", "no-such-tag",
                 "--report-dir", str(tmp_path / "rep3")]) == 2
    assert "neither a run folder nor a tag" in capsys.readouterr().err


def test_tag_resolves_through_the_registry(tiny_run_ro, tmp_path):
    from profy.contract.tags import file_sha256

    rel = "checkpoints/multimodal_fold0.safetensors"
    registry = tmp_path / "tags.json"
    registry.write_text(json.dumps({"version": 1, "tags": {"mm-audiofix": {
        "run": str(tiny_run_ro), "mode": "multimodal", "folds": [0],
        "files": {rel: file_sha256(tiny_run_ro / rel)}, "config_hash": "x",
        "created_at": "2026-11-24T00:00:00+00:00"}}}))
    run_dir, tag = resolve_baseline("mm-audiofix", tmp_path / "cand", registry)
    assert run_dir == tiny_run_ro and tag == "mm-audiofix"
    assert resolve_baseline(str(tiny_run_ro), tmp_path)[1] is None
