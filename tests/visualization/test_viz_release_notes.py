"""Release notes of two real tiny runs (mm-audiofix against legacy-20250925)."""

import json
import re
import shutil
from pathlib import Path

import pytest

from profy.cli import main
from profy.errors import ConfigError
from profy.visualization.release_notes import release_notes, write_release_notes


def _section(md: str, title: str) -> str:
    start = md.index(f"## {title}")
    nxt = md.find("\n## ", start + 3)
    return md[start:] if nxt < 0 else md[start:nxt]


def test_f1_deltas_and_fold_tables(tiny_run_ro, tiny_legacy_run_ro):
    md = release_notes(tiny_run_ro, tiny_legacy_run_ro)
    new = json.loads((tiny_run_ro / "complete_results.json").read_text())["modes"]
    old = json.loads((tiny_legacy_run_ro / "complete_results.json").read_text())["modes"]
    for mode in ("sensor", "audio", "multimodal"):
        a, b = new[mode], old[mode]
        dm = a["mean"]["macro_f1"] - b["mean"]["macro_f1"]
        ds = a["std"]["macro_f1"] - b["std"]["macro_f1"]
        assert (f"| {mode} | {a['mean']['macro_f1']:.3f} ± {a['std']['macro_f1']:.3f} | "
                f"{b['mean']['macro_f1']:.3f} ± {b['std']['macro_f1']:.3f} | {dm:+.3f} | "
                f"{ds:+.3f} |") in md
        section = _section(md, "Macro F1")
        folds = section[section.index(f"### {mode}"):]
        for k in a["folds"]:
            x, y = a["folds"][k]["macro_f1"], b["folds"][k]["macro_f1"]
            assert f"| {k} | {x:.3f} | {y:.3f} | {x - y:+.3f} |" in folds


def test_config_diff_names_the_legacy_keys(tiny_run_ro, tiny_legacy_run_ro):
    cfg = _section(release_notes(tiny_run_ro, tiny_legacy_run_ro), "Config")
    # The legacy profile's documented differences (profy/configs/legacy-20250925.yaml).
    for key, old, new in (("train.norm_fit", "all", "train"), ("train.checkpoint", "last", "best"),
                          ("model.audio_channels_used", "64", "128"),
                          ("model.use_masks", "False", "True")):
        assert f"| `{key}` | {old} | {new} |" in cfg
    assert "| `train.epochs` |" not in cfg  # same in both: not listed
    assert "(unchanged)" not in cfg


def test_data_and_normalization_changes(tiny_run_ro, tiny_legacy_run_ro):
    data = _section(release_notes(tiny_run_ro, tiny_legacy_run_ro), "Data and normalization")
    import pyarrow.parquet as pq

    takes = len(set(pq.read_table(tiny_run_ro / "splits.parquet").column("sample_id").to_pylist()))
    assert f"Takes in splits.parquet: baseline {takes} -> run {takes}." in data
    assert re.search(r"\| splits\.parquet \| `\w{12}` \| `\w{12}` \| no \|", data)  # same corpus
    # Legacy fits normalization on every take (norm_fit=all): each fold's stats changed.
    for k in range(3):
        row = next(line for line in data.splitlines() if f"norm_stats/fold_{k}.json" in line)
        assert row.endswith("| yes |")
        n_old = json.loads((tiny_legacy_run_ro / f"norm_stats/fold_{k}.json").read_text())
        n_new = json.loads((tiny_run_ro / f"norm_stats/fold_{k}.json").read_text())
        assert f"({n_old['n_samples']}," in row and f"({n_new['n_samples']}," in row


def test_missing_verdicts_and_onnx_say_not_available(tiny_run_ro, tiny_legacy_run_ro):
    md = release_notes(tiny_run_ro, tiny_legacy_run_ro)
    assert "not available: no guardrails/verdict.json in the run and baseline" in md
    assert "not available: neither verdict holds ONNX checks" in _section(md, "ONNX")


def _emit(run: Path, checks: list[tuple[str, str, bool, object]]) -> None:
    from guardrails import CheckResult
    from guardrails.report import emit

    emit([CheckResult(name=n, category=c, passed=p, observed=o) for n, c, p, o in checks],
         title="t", report_dir=run / "guardrails", console=False)


def test_gate_changes_and_onnx_deltas_from_real_verdicts(tiny_run_ro, tiny_legacy_run_ro,
                                                         tmp_path):
    new, old = tmp_path / "new" / tiny_run_ro.name, tmp_path / "old" / tiny_legacy_run_ro.name
    shutil.copytree(tiny_run_ro, new)
    shutil.copytree(tiny_legacy_run_ro, old)
    _emit(old, [("gate.multimodal_f1", "gate", False, 0.4), ("audit.splits", "audit", True, 0),
                ("onnx.parity", "onnx", True, {"max_abs_diff": 2e-6, "latency_ms_p50": 4.0})])
    _emit(new, [("gate.multimodal_f1", "gate", True, 0.8), ("audit.splits", "audit", True, 0),
                ("onnx.parity", "onnx", True, {"max_abs_diff": 1e-6, "latency_ms_p50": 3.0})])
    md = release_notes(new, old)
    gates = _section(md, "Gate status")
    assert "Verdict: baseline **fail** -> run **pass**." in gates
    assert "| `gate.multimodal_f1` | fail | pass |" in gates
    assert "audit.splits" not in gates  # unchanged checks are not listed
    onnx = _section(md, "ONNX")
    assert "| `onnx.parity.latency_ms_p50` | 4.0 | 3.0 | -1 |" in onnx
    assert "| `onnx.parity.max_abs_diff` | 2e-06 | 1e-06 | -1e-06 |" in onnx


def test_a_tag_resolves_to_its_run(tiny_run_ro, tiny_legacy_run_ro, tmp_path):
    from profy.training import register_tag

    registry = tmp_path / "tags.json"
    register_tag(registry, "legacy-test", tiny_legacy_run_ro, mode="multimodal")
    md = release_notes(tiny_run_ro, "legacy-test", registry=registry)
    assert f"tag `legacy-test` (multimodal, {tiny_legacy_run_ro.resolve()})" in md
    assert "| `train.norm_fit` | all | train |" in md  # the tagged run is the baseline
    with pytest.raises(ConfigError, match="'nope' is not a run folder, nor a tag.*legacy-test"):
        release_notes(tiny_run_ro, "nope", registry=registry)


def test_cli_writes_the_file_atomically(tiny_run_ro, tiny_legacy_run_ro, tmp_path, capsys):
    out = tmp_path / "notes.md"
    assert main(["release-notes", str(tiny_run_ro), "--baseline", str(tiny_legacy_run_ro),
                 "--out", str(out)]) == 0
    assert str(out.resolve()) in capsys.readouterr().out
    assert out.read_text().startswith("# Release notes: ")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.md"]
    assert main(["release-notes", str(tiny_run_ro), "--baseline", "nope",
                 "--registry", str(tmp_path / "tags.json")]) == 2
    assert "not a run folder, nor a tag" in capsys.readouterr().err
    assert write_release_notes(tiny_run_ro, tiny_legacy_run_ro, out=out) == out
