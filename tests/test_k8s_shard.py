"""``profy features --shard K/N``: the partition's properties and the flag's bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from profy.errors import ConfigError
from profy.features._shard import Shard, parse_shard, shard_rows

PROFY = str(Path(sys.executable).parent / "profy")

ids = st.lists(st.text(min_size=1, max_size=12), unique=True, max_size=60)


@given(ids=ids, n=st.integers(1, 9), data=st.data())
def test_shards_are_disjoint_cover_every_take_and_balance(ids, n, data):
    rows = [{"sample_id": s, "audio_path": f"a/{s}"} for s in ids]
    parts = [shard_rows(rows, Shard(k, n)) for k in range(n)]
    taken = [r["sample_id"] for part in parts for r in part]
    assert sorted(taken) == sorted(ids)                     # every take, none twice
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    shuffled = data.draw(st.permutations(rows))             # manifest order does not matter
    assert [shard_rows(shuffled, Shard(k, n)) for k in range(n)] == parts


@given(k=st.integers(0, 50), extra=st.integers(1, 50))
def test_parse_round_trips_valid_shards(k, extra):
    shard = parse_shard(f"{k}/{k + extra}")
    assert (shard.index, shard.count) == (k, k + extra)
    assert parse_shard(str(shard)) == shard


@given(text=st.text(max_size=12))
def test_parse_accepts_only_k_of_n(text):
    try:
        shard = parse_shard(text)
    except ConfigError as exc:
        assert "--shard" in str(exc)
    else:
        assert 0 <= shard.index < shard.count


@pytest.mark.parametrize("bad", ["3/3", "1/0", "0/0", "x", "1/2/3", "-1/3", "1.0/3", ""])
def test_bad_shard_values_are_refused(bad):
    with pytest.raises(ConfigError, match="--shard"):
        parse_shard(bad)


@pytest.mark.parametrize("bad", ["3/3", "1/0", "x"])
def test_cli_refuses_a_bad_shard_with_one_line_and_exit_2(tmp_path, bad):
    # fresh process, no TTY: what a pod sees; refused before the corpus is even read
    result = subprocess.run([PROFY, "features", str(tmp_path / "no-corpus"), "--out",
                             str(tmp_path / "out"), f"--shard={bad}"],
                            capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("profy: error: --shard"), result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
