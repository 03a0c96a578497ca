"""``profy demo`` end to end (tiny corpus): every stage's outputs exist and are valid."""

import json

import pyarrow.parquet as pq
import pytest

from profy._demo import run_demo
from profy.cli import main
from profy.schemas import AUDIO_STATS_SCHEMA, SPLITS_SCHEMA


@pytest.mark.slow
def test_demo_end_to_end_and_rerun_hits_the_cache(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--size", "tiny"]) == 0
    printed = capsys.readouterr().out
    for name in ("manifest.parquet", "splits.parquet", "audio_stats.parquet", "norm_stats"):
        assert name in printed
    stats = pq.read_table(out / "features" / "audio_stats.parquet")
    assert stats.schema.equals(AUDIO_STATS_SCHEMA, check_metadata=False)
    assert min(stats["nonzero_frames"].to_pylist()) >= 120
    splits = pq.read_table(out / "splits.parquet")
    assert splits.schema.equals(SPLITS_SCHEMA, check_metadata=False)
    for fold in range(3):
        norm = json.loads((out / "features" / "norm_stats" / f"fold_{fold}.json").read_text())
        part = splits.to_pandas().query("fold == @fold")
        assert sorted(norm["sample_ids"]) == sorted(part[part.role == "train"].sample_id)
    # the generator is deterministic, so a second demo run reuses every cached take
    timings = run_demo(out, size="tiny")
    assert "features" in timings
    assert "0 misses" in capsys.readouterr().out
