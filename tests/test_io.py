"""Atomic writes: complete or absent, never half; readable by others per the umask."""

import os
import stat

import pytest

from profy.contract.atomic import (
    atomic_create_bytes,
    atomic_path,
    atomic_write_json,
    atomic_write_text,
)


def test_written_file_has_umask_mode(tmp_path):
    path = atomic_write_text(tmp_path / "a.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_failure_leaves_previous_file_and_no_temp(tmp_path):
    path = atomic_write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"f1": float("nan")})
    assert not list(tmp_path.iterdir())


def test_atomic_create_keeps_the_first_writer(tmp_path):
    path = tmp_path / "sub" / "a.json"
    assert atomic_create_bytes(path, b"first") is True
    assert atomic_create_bytes(path, b"second") is False
    assert path.read_bytes() == b"first"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]  # no staged leftovers
