"""``profy demo`` end to end (tiny corpus, 2 epochs): every stage's outputs exist and are valid."""

import json

import onnx
import pyarrow.parquet as pq
import pytest

from profy._demo import run_demo
from profy.contract.schemas import AUDIO_STATS_SCHEMA, SPLITS_SCHEMA
from profy.evaluation import read_complete_results


@pytest.mark.slow
def test_demo_end_to_end_and_rerun_hits_the_cache(tmp_path, capsys):
    out = tmp_path / "demo"
    timings = run_demo(out, size="tiny", overrides=("train.epochs=2",))
    assert list(timings) == ["synth", "read + inspect", "features", "train", "export", "gate",
                             "report"]  # report last, so it shows the gate's verdict
    printed = capsys.readouterr().out
    lines = [line for line in printed.splitlines() if line.strip()]
    for words in ("takes/s", "audio stats", "run folder", "macro F1"):
        assert words in printed
    stats = pq.read_table(out / "features" / "audio_stats.parquet")
    assert stats.schema.equals(AUDIO_STATS_SCHEMA, check_metadata=False)
    assert min(stats["nonzero_frames"].to_pylist()) >= 120
    (run_dir,) = sorted((out / "runs").glob("experiment_*"))
    splits = pq.read_table(run_dir / "splits.parquet")
    assert splits.schema.equals(SPLITS_SCHEMA, check_metadata=False)
    for fold in range(3):
        norm = json.loads((run_dir / "norm_stats" / f"fold_{fold}.json").read_text())
        part = splits.to_pandas().query("fold == @fold")
        assert sorted(norm["sample_ids"]) == sorted(part[part.role == "train"].sample_id)
    results = read_complete_results(run_dir / "complete_results.json")
    assert set(results["modes"]) == {"sensor", "audio", "multimodal"}
    # the release pair is exported, tagged, and gated; the verdict reaches the report
    exported = sorted(p.name for p in (run_dir / "onnx").glob("*.onnx"))
    assert len(exported) == 2 and exported[0].startswith("multimodal_fold")
    assert exported[1] == exported[0].replace("multimodal", "sensor")  # same fold
    tags = json.loads((out / "runs" / "tags.json").read_text())["tags"]
    assert {"sensor-v1", "mm-audiofix"} <= set(tags)
    for name, tag in zip(exported, ("mm-audiofix", "sensor-v1"), strict=True):
        meta = {p.key: p.value for p in onnx.load(run_dir / "onnx" / name).metadata_props}
        assert meta["tag"] == tag, name  # the released file says which release it is
    verdict = json.loads((run_dir / "guardrails" / "verdict.json").read_text())
    assert "guardrails ci exit code" in printed
    gated = {c["name"]: c["status"] for c in verdict["checks"]}
    assert gated["onnx.parity"] == "pass"
    smoke = [status for name, status in gated.items() if name.startswith("replay.smoke")]
    assert smoke and "skip" not in smoke  # the tags made the smoke replay applicable
    for check in verdict["checks"]:  # every replay row names this run's own ONNX file + sha
        if check["name"].startswith("replay.") and check["status"] != "skip":
            files = check["details"]["onnx_files"]
            assert check["details"]["run"] == str(run_dir), check["name"]
            assert str(run_dir / "onnx" / exported[0]) in files, check["name"]
    # the demo trains with --skip-bad: its quarantine is recorded, gated and reported
    quarantine = json.loads((run_dir / "quarantine.json").read_text())
    assert quarantine["criteria"]["data.audio_stats"]["min_nonzero_frames"] == 120
    assert gated["data.quarantine"] in ("pass", "fail") and gated["data.audio_stats"] == "pass"
    report = (run_dir / "report.html").resolve()
    assert report.is_file() and (run_dir / "plots" / "confusion.png").is_file()
    assert "Quarantined takes" in report.read_text()
    assert lines[-1] == f"report.html: {report}"
    # the generator is deterministic, so a second demo run reuses every cached take
    run_demo(out, size="tiny", overrides=("train.epochs=1",), export=False)
    assert "0 misses" in capsys.readouterr().out
