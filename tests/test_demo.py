"""``profy demo`` end to end (tiny corpus, 2 epochs): every stage's outputs exist and are valid."""

import json

import pyarrow.parquet as pq
import pytest

from profy._demo import run_demo
from profy.evaluation import read_complete_results
from profy.schemas import AUDIO_STATS_SCHEMA, SPLITS_SCHEMA


@pytest.mark.slow
def test_demo_end_to_end_and_rerun_hits_the_cache(tmp_path, capsys):
    out = tmp_path / "demo"
    timings = run_demo(out, size="tiny", overrides=("train.epochs=2",))
    assert {"synth", "read + inspect", "features", "train"} <= set(timings)
    printed = capsys.readouterr().out
    for words in ("takes/s", "audio stats", "run folder", "macro F1"):
        assert words in printed
    stats = pq.read_table(out / "features" / "audio_stats.parquet")
    assert stats.schema.equals(AUDIO_STATS_SCHEMA, check_metadata=False)
    assert min(stats["nonzero_frames"].to_pylist()) >= 120
    (run_dir,) = sorted((out / "runs").iterdir())
    splits = pq.read_table(run_dir / "splits.parquet")
    assert splits.schema.equals(SPLITS_SCHEMA, check_metadata=False)
    for fold in range(3):
        norm = json.loads((run_dir / "norm_stats" / f"fold_{fold}.json").read_text())
        part = splits.to_pandas().query("fold == @fold")
        assert sorted(norm["sample_ids"]) == sorted(part[part.role == "train"].sample_id)
    results = read_complete_results(run_dir / "complete_results.json")
    assert set(results["modes"]) == {"sensor", "audio", "multimodal"}
    # the generator is deterministic, so a second demo run reuses every cached take
    run_demo(out, size="tiny", overrides=("train.epochs=1",))
    assert "0 misses" in capsys.readouterr().out
