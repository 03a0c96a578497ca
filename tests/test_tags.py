"""The torch-free tag reader (profy.contract.tags): resolve, verify hashes, bad registries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profy.contract.tags import file_sha256, list_tags, read_registry, resolve_tag
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


def test_reader_never_imports_torch():
    code = "import sys, profy.contract.tags; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
