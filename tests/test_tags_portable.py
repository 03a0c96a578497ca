"""A tag registry stays valid when its runs folder moves (CI runner -> ``/runs`` mount).

``register_tag`` stores a run under the registry's folder relative to it; readers (profy
and the torch-free guardrails) resolve it against wherever the registry is now. Old
registries with absolute paths still read; a relative path leaving the folder is refused.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrails.errors import BadInputError
from guardrails.replay._model import resolve as guardrails_resolve
from guardrails.replay._setup import applies_replay
from profy.contract.tags import list_tags, resolve_tag, run_field, tagged_run_dir
from profy.errors import MalformedFileError, UnsafePathError

RUN = "experiment_20261124_101500"


@pytest.fixture
def runs(tmp_path) -> Path:
    """``ci/runs/`` holding one run with two real multimodal checkpoints, tagged
    ``mm-audiofix`` in ``ci/runs/tags.json`` by :func:`register_tag`."""
    import torch

    from profy.config import ModelConfig, RunConfig
    from profy.training import register_tag, save_checkpoint

    runs = tmp_path / "ci" / "runs"
    cfg = RunConfig(model=ModelConfig(hidden=16))
    for fold in (0, 1):
        save_checkpoint(runs / RUN / "checkpoints" / f"multimodal_fold{fold}.safetensors",
                        {"w": torch.full((3,), float(fold))}, config=cfg, mode="multimodal",
                        fold=fold, metrics={})
    (runs / RUN / "config.yaml").write_text("seed: 0\n")
    register_tag(runs / "tags.json", "mm-audiofix", runs / RUN, mode="multimodal")
    return runs


def _raw_run(registry: Path, tag: str = "mm-audiofix") -> str:
    return json.loads(registry.read_text())["tags"][tag]["run"]


def test_registry_is_written_relative_and_survives_moving_the_runs_folder(runs, tmp_path):
    assert _raw_run(runs / "tags.json") == RUN  # no trace of the writer's machine
    mounted = tmp_path / "container" / "runs"  # the runs folder mounted somewhere else
    shutil.copytree(runs, mounted)
    moved = tmp_path / "elsewhere" / "runs"
    moved.parent.mkdir()
    shutil.move(runs, moved)
    for where in (mounted, moved):
        entry = resolve_tag(where / "tags.json", "mm-audiofix")  # re-hashes every file
        assert entry.run_dir == (where / RUN).resolve() and entry.folds == (0, 1)
        assert set(entry.files) == {"config.yaml", "checkpoints/multimodal_fold0.safetensors",
                                    "checkpoints/multimodal_fold1.safetensors"}
        assert [t.run_dir for t in list_tags(where / "tags.json")] == [entry.run_dir]
        assert guardrails_resolve(where / "tags.json", "mm-audiofix").run_dir == entry.run_dir
    # Hashes are checked at the new place: a changed file there is named there.
    (mounted / RUN / "config.yaml").write_text("seed: 1\n")
    with pytest.raises(MalformedFileError, match=str(mounted / RUN / "config.yaml")):
        resolve_tag(mounted / "tags.json", "mm-audiofix")


def test_relative_arguments_store_the_same_run(runs, monkeypatch):
    from profy.training import register_tag

    monkeypatch.chdir(runs.parent)
    register_tag(Path("runs/tags.json"), "sensor-v1", Path("runs") / RUN, mode="multimodal")
    assert _raw_run(runs / "tags.json", "sensor-v1") == RUN
    monkeypatch.chdir(runs / RUN)
    assert run_field(Path("../tags.json"), ".") == RUN
    assert run_field(runs / "tags.json", runs) == "."  # a registry inside its own run


def test_run_outside_the_registry_folder_is_stored_absolute(runs, tmp_path):
    other = tmp_path / "registries" / "tags.json"
    assert run_field(other, runs / RUN) == str((runs / RUN).resolve())
    assert run_field(runs / "sub" / "tags.json", runs / RUN) == str((runs / RUN).resolve())


def test_old_absolute_registry_still_resolves(runs, tmp_path):
    reg = json.loads((runs / "tags.json").read_text())
    reg["tags"]["mm-audiofix"]["run"] = str((runs / RUN).resolve())  # what 0.1 wrote
    old = tmp_path / "old" / "tags.json"
    old.parent.mkdir()
    old.write_text(json.dumps(reg))
    entry = resolve_tag(old, "mm-audiofix")
    assert entry.run_dir == (runs / RUN).resolve() and entry.folds == (0, 1)
    assert guardrails_resolve(old, "mm-audiofix").run_dir == entry.run_dir


def _write_registry(runs: Path, run: str) -> Path:
    reg = runs / "tags.json"
    data = json.loads(reg.read_text())
    data["tags"]["mm-audiofix"]["run"] = run
    reg.write_text(json.dumps(data))
    return reg


@pytest.mark.parametrize("run", ["..", "../../etc", f"{RUN}/../..", "link", "link/x"])
def test_relative_run_escaping_the_registry_folder_is_refused(runs, tmp_path, run):
    outside = tmp_path / "outside"
    shutil.copytree(runs / RUN, outside)  # a valid run out there: refused all the same
    (runs / "link").symlink_to(outside, target_is_directory=True)
    reg = _write_registry(runs, run)
    with pytest.raises(UnsafePathError, match="outside the registry's folder") as exc:
        resolve_tag(reg, "mm-audiofix", verify=False)
    assert str(reg) in str(exc.value) and "tags.json" in str(exc.value)
    with pytest.raises(UnsafePathError):
        list_tags(reg)
    with pytest.raises(BadInputError, match="tags.json"):
        guardrails_resolve(reg, "mm-audiofix")
    # Not skipped as "nothing to replay": the check runs and fails on the bad registry.
    assert applies_replay(SimpleNamespace(run_dir=runs / RUN)) is None


def test_relative_run_staying_inside_is_accepted(runs):
    reg = _write_registry(runs, f"./{RUN}/checkpoints/..")
    assert resolve_tag(reg, "mm-audiofix").run_dir == (runs / RUN).resolve()


def test_replay_skip_reason_says_what_is_missing(runs, tmp_path):
    ctx = SimpleNamespace(run_dir=runs / RUN)
    assert "run `profy export`" in applies_replay(ctx)
    (runs / RUN / "onnx").mkdir()
    assert applies_replay(ctx) is None
    assert "no tag 'sensor-v1'" in applies_replay(ctx, tag="sensor-v1")
    # The CI bug: an absolute path of the runner, read where the runs are mounted elsewhere.
    reg = _write_registry(runs, "/home/runner/work/profy/profy/runs/" + RUN)
    reason = applies_replay(ctx)
    assert "not found" in reason and str(reg) in reason and "profy export" not in reason
    # A relative run whose folder is gone says the same.
    _write_registry(runs, "experiment_gone")
    reason = applies_replay(ctx)
    assert "not found" in reason and "experiment_gone" in reason


@settings(max_examples=50, deadline=None)
@given(st.lists(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,11}", fullmatch=True)
                .filter(lambda s: s not in {".", ".."}), min_size=1, max_size=4),
       st.sampled_from(["runs", "a b/runs", "ünï/runs"]))
def test_written_run_reads_back_from_any_new_root(tmp_path_factory, parts, folder):
    base = tmp_path_factory.mktemp("w") / folder
    stored = run_field(base / "tags.json", base.joinpath(*parts))
    assert stored == "/".join(parts) and not os.path.isabs(stored)
    new_root = tmp_path_factory.mktemp("r")  # the same registry, mounted elsewhere
    read = tagged_run_dir(new_root / "tags.json", "t", stored)
    assert read == new_root.resolve().joinpath(*parts)


def test_registry_run_must_be_a_path(runs):
    reg = runs / "tags.json"
    data = json.loads(reg.read_text())
    data["tags"]["mm-audiofix"]["run"] = ["not", "a", "path"]
    reg.write_text(json.dumps(data))
    with pytest.raises(MalformedFileError, match="'run' must be a non-empty path"):
        resolve_tag(reg, "mm-audiofix")



@pytest.mark.slow
def test_smoke_replay_runs_on_a_moved_runs_folder(onnx_run_ro, tmp_path):
    """The nightly workflow end to end: tag on the "runner", replay where runs/ is mounted."""
    from guardrails.cli import main
    from profy.training import register_tag

    runs = tmp_path / "runner" / "runs"
    shutil.copytree(onnx_run_ro, runs / onnx_run_ro.name)
    for tag, mode in (("sensor-v1", "sensor"), ("mm-audiofix", "multimodal")):
        register_tag(runs / "tags.json", tag, runs / onnx_run_ro.name, mode=mode, folds=(0,))
    mounted = tmp_path / "container" / "runs"
    shutil.copytree(runs, mounted)
    shutil.rmtree(runs)  # nothing left at the path the tags were written on
    assert main(["replay", "--smoke", str(mounted), "--report-dir", str(tmp_path / "rep"),
                 "--quiet"]) == 0
    assert (mounted / "replay_history.parquet").is_file()
