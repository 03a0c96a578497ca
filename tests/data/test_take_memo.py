"""TakeMemo: an unchanged take is not parsed again; a changed or bad one always is."""

import os
from pathlib import Path

import numpy as np
import pytest

import profy.data._manifest as manifest_mod
from profy.data import InputPolicy, build_manifest
from profy.data._take_memo import TakeMemo
from profy.errors import MalformedFileError
from tests.data.test_manifest import CSV, make_corpus


class _Reads:
    """Counts the sensor CSVs the manifest parses (wraps the real reader)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        real = manifest_mod.check_take_sensor

        def counted(path, policy):
            self.paths.append(Path(path).parent.parent.parent.name)
            return real(path, policy)

        monkeypatch.setattr(manifest_mod, "check_take_sensor", counted)


def _build(root: Path, memo_path: Path, policy: InputPolicy | None = None):
    policy = policy or InputPolicy.from_features()
    return build_manifest(root, workers=2, policy=policy, memo=TakeMemo(memo_path, policy))


def test_unchanged_corpus_is_not_parsed_again_and_gives_the_same_table(tmp_path, monkeypatch):
    ids = make_corpus(tmp_path / "c")
    memo = tmp_path / "cache" / "checked_takes.json"
    reads = _Reads(monkeypatch)
    first = _build(tmp_path / "c", memo)
    assert sorted(reads.paths) == sorted(ids) and memo.is_file()
    reads.paths.clear()
    second = _build(tmp_path / "c", memo)
    assert reads.paths == []
    assert second.table.equals(first.table)
    assert first.table.equals(build_manifest(tmp_path / "c", workers=1).table)  # no memo


def test_a_rewritten_file_is_read_again(tmp_path, monkeypatch):
    ids = make_corpus(tmp_path / "c")
    memo = tmp_path / "checked_takes.json"
    _build(tmp_path / "c", memo)
    csv = tmp_path / "c" / "playdata" / ids[2] / CSV
    rows = np.loadtxt(csv, delimiter=",")
    np.savetxt(csv, rows[: len(rows) // 2], delimiter=",", fmt="%.6g")  # half the rows
    reads = _Reads(monkeypatch)
    table = _build(tmp_path / "c", memo).table.to_pandas().set_index("sample_id")
    assert reads.paths == [ids[2]]
    assert table.loc[ids[2], "sensor_rows"] == len(rows) // 2


def test_a_take_broken_after_it_passed_is_reported_not_remembered(tmp_path):
    ids = make_corpus(tmp_path / "c")
    memo = tmp_path / "checked_takes.json"
    _build(tmp_path / "c", memo)
    csv = tmp_path / "c" / "playdata" / ids[0] / CSV
    stat = csv.stat()
    csv.write_text("not,a,sensor,file\n")
    os.utime(csv, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # even a 1 ns mtime change
    with pytest.raises(MalformedFileError, match=ids[0]):
        _build(tmp_path / "c", memo)


def test_another_policy_does_not_use_the_memo(tmp_path, monkeypatch):
    ids = make_corpus(tmp_path / "c")
    memo = tmp_path / "checked_takes.json"
    _build(tmp_path / "c", memo)
    reads = _Reads(monkeypatch)
    _build(tmp_path / "c", memo, InputPolicy(sensor_rate_tolerance=0.2))
    assert sorted(reads.paths) == sorted(ids)
    with pytest.raises(ValueError, match="another input policy"):
        build_manifest(tmp_path / "c", policy=InputPolicy(),
                       memo=TakeMemo(memo, InputPolicy(sensor_rate_tolerance=0.3)))


@pytest.mark.parametrize("content", ["", "{", "[1, 2]", '{"format": 1, "policy": "x"}',
                                     '{"format": 1, "takes": {"a": 3}}'])
def test_a_damaged_memo_costs_a_reread_never_a_wrong_row(tmp_path, monkeypatch, content):
    ids = make_corpus(tmp_path / "c")
    memo = tmp_path / "checked_takes.json"
    memo.write_text(content)
    reads = _Reads(monkeypatch)
    table = _build(tmp_path / "c", memo).table
    assert sorted(reads.paths) == sorted(ids)
    assert table.equals(build_manifest(tmp_path / "c", workers=1).table)


def test_a_second_train_on_the_same_cache_parses_no_take(tiny_corpus_ro, tmp_path, monkeypatch):
    """`profy train` remembers the takes it checked in its feature cache: a rerun on the
    unchanged corpus starts training without parsing a CSV again."""
    from profy.cli import main

    args = ["train", "--config", "mm-audiofix", "--data", str(tiny_corpus_ro), "--out",
            str(tmp_path / "runs"), "--modes", "sensor", "--epochs", "1"]
    first = _Reads(monkeypatch)
    assert main(args) == 0
    assert len(first.paths) > 0  # the first run read every take
    monkeypatch.undo()
    again = _Reads(monkeypatch)
    assert main(args) == 0
    assert again.paths == []
    assert (tmp_path / "cache" / "checked_takes.json").is_file()
