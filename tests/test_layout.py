"""The run-folder layout helpers (profy.contract.layout): names round-trip, scans find
exactly what the writers name, the default registry sits beside the runs."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from profy.contract import layout
from profy.contract.model_io import MODES


def test_names_and_paths():
    assert layout.checkpoint_name("audio", 2) == "audio_fold2.safetensors"
    assert layout.onnx_name("multimodal", 0) == "multimodal_fold0.onnx"
    assert layout.shard_dir("r", "sensor", 1) == Path("r") / "folds" / "sensor_fold1"
    assert layout.SHARD_FILES[0] == layout.PREDICTIONS_FILE


def test_default_registry_is_the_runs_folders_tags_json(tmp_path, monkeypatch):
    run = tmp_path / "runs" / "experiment_1"
    run.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert layout.default_registry("runs/experiment_1") == tmp_path / "runs" / "tags.json"
    assert layout.default_registry(run) == layout.default_registry(Path("runs/experiment_1"))


_folds = st.sets(st.integers(0, 12), max_size=5)


@settings(max_examples=40, deadline=None)
@given(st.fixed_dictionaries({m: _folds for m in MODES}),
       st.lists(st.sampled_from(["sensor_fold.safetensors", "sensor_foldx.safetensors",
                                 "audio_fold01.safetensors", "notes.txt", "audio.safetensors",
                                 "sensor_fold1.export.log"]), max_size=4))
def test_scans_find_exactly_the_written_folds(tmp_path_factory, written, junk):
    run = tmp_path_factory.mktemp("run")
    (run / layout.CHECKPOINTS_DIR).mkdir()
    (run / layout.ONNX_DIR).mkdir()
    for mode, folds in written.items():
        for k in folds:
            (run / layout.CHECKPOINTS_DIR / layout.checkpoint_name(mode, k)).write_bytes(b"")
            if k % 2:
                (run / layout.ONNX_DIR / layout.onnx_name(mode, k)).write_bytes(b"")
    for name in junk:  # names no writer produces: never read as a fold
        (run / layout.CHECKPOINTS_DIR / name).write_bytes(b"")
        (run / layout.ONNX_DIR / name.replace(".safetensors", ".onnx")).write_bytes(b"")
    expected = {m: tuple(sorted(f)) for m, f in written.items() if f}
    assert layout.run_checkpoints(run) == expected
    for mode in MODES:
        assert layout.checkpoint_folds(run, mode) == tuple(sorted(written[mode]))
        assert layout.onnx_folds(run, mode) == tuple(sorted(k for k in written[mode] if k % 2))
