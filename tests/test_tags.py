"""The torch-free tag registry (profy.contract.tags): resolve, verify hashes, bad registries,
and the writer (``add_tag``) that ``profy.training.register_tag`` calls."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profy.contract.tags import (
    MIXED,
    TAG_RE,
    add_tag,
    file_sha256,
    list_tags,
    read_registry,
    resolve_tag,
)
from profy.errors import ConfigError, MalformedFileError, MissingInputError


def _registry(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    files = {}
    for k in (0, 1):
        p = run / "checkpoints" / f"multimodal_fold{k}.safetensors"
        p.write_bytes(bytes([k]) * 64)
        files[f"checkpoints/{p.name}"] = file_sha256(p)
    reg = tmp_path / "tags.json"
    reg.write_text(json.dumps({"version": 1, "tags": {"mm-audiofix": {
        "run": str(run), "mode": "multimodal", "folds": [0, 1], "files": files,
        "config_hash": "abc", "created_at": "2026-11-24T00:00:00+00:00"}}}))
    return reg, run


def test_resolve_verifies_and_names_the_changed_file(tmp_path):
    reg, run = _registry(tmp_path)
    entry = resolve_tag(reg, "mm-audiofix")
    assert entry.folds == (0, 1) and entry.mode == "multimodal" and entry.run_dir == run
    assert entry.onnx_path(1) == run / "onnx" / "multimodal_fold1.onnx"
    assert [t.tag for t in list_tags(reg)] == ["mm-audiofix"]
    with pytest.raises(ConfigError, match="known: mm-audiofix"):
        resolve_tag(reg, "sensor-v1")
    ckpt = run / "checkpoints" / "multimodal_fold1.safetensors"
    ckpt.write_bytes(b"\x02" * 64)
    with pytest.raises(MalformedFileError, match="changed since it was tagged"):
        resolve_tag(reg, "mm-audiofix")
    assert resolve_tag(reg, "mm-audiofix", verify=False).folds == (0, 1)
    ckpt.unlink()
    with pytest.raises(MissingInputError, match="multimodal_fold1.safetensors"):
        resolve_tag(reg, "mm-audiofix")


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.binary(max_size=40), st.text(max_size=40).map(str.encode),
                 st.sampled_from([b"[]", b'{"version": 2, "tags": {}}', b'{"version": 1}',
                                  b'{"version": 1, "tags": {"x": {"run": "/"}}}'])))
def test_bad_registry_is_a_clear_error_naming_the_file(tmp_path_factory, blob):
    reg = tmp_path_factory.mktemp("r") / "tags.json"
    reg.write_bytes(blob)
    try:
        data = read_registry(reg)
    except MalformedFileError as exc:
        assert str(reg) in str(exc)
    else:
        assert data["version"] == 1 and isinstance(data["tags"], dict)


def test_reader_and_writer_never_import_torch(tmp_path):
    run = tmp_path / "runs" / "r1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "sensor_fold0.safetensors").write_bytes(b"w")
    code = ("import sys; from profy.contract.tags import add_tag, resolve_tag; "
            f"add_tag({str(tmp_path / 'runs' / 'tags.json')!r}, 't', {str(run)!r}, "
            "mode='sensor', folds=[0], config_hashes=['h']); "
            f"resolve_tag({str(tmp_path / 'runs' / 'tags.json')!r}, 't'); "
            "assert 'torch' not in sys.modules, 'torch loaded'")
    subprocess.run([sys.executable, "-c", code], check=True)


def _run(tmp_path, folds=(0, 1), mode="sensor", config=True):
    run = tmp_path / "runs" / "experiment_1"
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    for k in folds:
        (run / "checkpoints" / f"{mode}_fold{k}.safetensors").write_bytes(bytes([k + 1]) * 32)
    if config:
        (run / "config.yaml").write_text("seed: 1\n")
    return run


def test_add_tag_hashes_the_files_and_writes_a_relative_run(tmp_path):
    run = _run(tmp_path)
    reg = tmp_path / "runs" / "tags.json"
    entry = add_tag(reg, "sensor-v1", run, mode="sensor", folds=(1, 0), config_hashes={"abc"},
                    created_at="2026-12-01T00:00:00+00:00")
    raw = json.loads(reg.read_text())["tags"]["sensor-v1"]
    assert raw == {"run": "experiment_1", "mode": "sensor", "folds": [1, 0],
                   "files": {"checkpoints/sensor_fold1.safetensors":
                             file_sha256(run / "checkpoints" / "sensor_fold1.safetensors"),
                             "checkpoints/sensor_fold0.safetensors":
                             file_sha256(run / "checkpoints" / "sensor_fold0.safetensors"),
                             "config.yaml": file_sha256(run / "config.yaml")},
                   "config_hash": "abc", "created_at": "2026-12-01T00:00:00+00:00"}
    assert entry == resolve_tag(reg, "sensor-v1")
    assert entry.run_dir == run.resolve() and entry.folds == (1, 0)
    assert sorted(p.name for p in reg.parent.iterdir()) == ["experiment_1", "tags.json"]
    (run / "config.yaml").write_text("seed: 2\n")  # the tag pins the config's bytes too
    with pytest.raises(MalformedFileError, match="config.yaml"):
        resolve_tag(reg, "sensor-v1")


def test_add_tag_marks_mixed_config_hashes_and_keeps_other_tags(tmp_path):
    run = _run(tmp_path, config=False)
    reg = tmp_path / "runs" / "tags.json"
    add_tag(reg, "a", run, mode="sensor", folds=[0], config_hashes=["h1"])
    entry = add_tag(reg, "b", run, mode="sensor", folds=[0, 1], config_hashes=["h1", "h2"])
    assert entry.config_hash == MIXED and "config.yaml" not in entry.files
    assert [t.tag for t in list_tags(reg)] == ["a", "b"]


def test_add_tag_refuses_and_leaves_the_registry_as_it_was(tmp_path):
    run = _run(tmp_path, folds=(0,))
    reg = tmp_path / "runs" / "tags.json"
    add_tag(reg, "v1", run, mode="sensor", folds=[0], config_hashes=["h"])
    before = reg.read_bytes()
    with pytest.raises(ConfigError, match="already names experiment_1; pass replace=True"):
        add_tag(reg, "v1", run, mode="sensor", folds=[0], config_hashes=["h"])
    with pytest.raises(MissingInputError, match="sensor_fold3.safetensors"):
        add_tag(reg, "v2", run, mode="sensor", folds=[0, 3], config_hashes=["h"])
    with pytest.raises(MissingInputError, match="no audio checkpoint to tag"):
        add_tag(reg, "v2", run, mode="audio", folds=[], config_hashes=[])
    reg.write_bytes(b"{not json")
    with pytest.raises(MalformedFileError, match="tags.json"):
        add_tag(reg, "v3", run, mode="sensor", folds=[0], config_hashes=["h"])
    reg.write_bytes(before)
    assert reg.read_bytes() == before
    moved = add_tag(reg, "v1", run, mode="sensor", folds=[0], config_hashes=["h2"],
                    replace=True)
    assert moved.config_hash == "h2" and [t.tag for t in list_tags(reg)] == ["v1"]


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.text(max_size=70), st.from_regex(TAG_RE, fullmatch=True),
                 st.sampled_from(["v1\n", "V1", "-v1", "a" * 65, "a/b", "..", ""])))
def test_add_tag_accepts_exactly_the_valid_names(tmp_path_factory, tag):
    tmp = tmp_path_factory.mktemp("t")
    run = _run(tmp, folds=(0,))
    reg = tmp / "runs" / "tags.json"
    alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
    valid = 1 <= len(tag) <= 64 and tag[0] in alnum and all(c in alnum + "._-" for c in tag)
    assert valid == bool(TAG_RE.fullmatch(tag))
    if valid:
        assert add_tag(reg, tag, run, mode="sensor", folds=[0], config_hashes=["h"]).tag == tag
        assert [t.tag for t in list_tags(reg)] == [tag]
    else:
        with pytest.raises(ConfigError, match="must match"):
            add_tag(reg, tag, run, mode="sensor", folds=[0], config_hashes=["h"])
        assert not reg.exists()
