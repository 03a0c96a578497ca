"""``profy export RUN --tag T``: exports what the tag names (re-hashed), nothing else."""

from concurrent.futures import Future

import onnx
import pytest

from profy.cli import main
from profy.export import _parallel, select_tagged
from profy.training import register_tag


@pytest.mark.slow
def test_export_with_a_tag_exports_only_its_selection(tiny_run, capsys):
    """One export (a fresh process, ~15-30 s): without the tag the defaults would export the
    best fold of all three modes, so a single sensor_fold1 file is the tag's doing."""
    register_tag(tiny_run.parent / "tags.json", "probe-v1", tiny_run, mode="sensor", folds=(1,))
    assert main(["export", str(tiny_run), "--tag", "probe-v1", "--workers", "1"]) == 0
    assert sorted(p.name for p in (tiny_run / "onnx").glob("*.onnx")) == ["sensor_fold1.onnx"]
    meta = {p.key: p.value for p in onnx.load(str(tiny_run / "onnx" / "sensor_fold1.onnx"))
            .metadata_props}
    assert (meta["tag"], meta["mode"], meta["fold"]) == ("probe-v1", "sensor", "1")


def _refused(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_export_tag_refusals_are_one_line_and_write_nothing(tiny_run, tiny_run_ro, capsys):
    run, registry = str(tiny_run), tiny_run.parent / "tags.json"
    err = _refused(["export", run, "--tag", "probe-v1"], capsys)  # no registry yet
    assert str(registry) in err and "probe-v1" in err
    register_tag(registry, "probe-v1", tiny_run, mode="sensor", folds=(1,))
    err = _refused(["export", run, "--tag", "nope"], capsys)
    assert "tags.json" in err and "'nope'" in err
    for flags in (["--mode", "audio"], ["--fold", "0"], ["--all-folds"]):
        err = _refused(["export", run, "--tag", "probe-v1", *flags], capsys)
        assert flags[0] in err and "probe-v1" in err and "tags.json" in err
    register_tag(registry, "elsewhere", tiny_run_ro, mode="sensor", folds=(0,))
    err = _refused(["export", run, "--tag", "elsewhere"], capsys)
    assert "tags.json" in err and str(tiny_run_ro) in err
    ckpt = tiny_run / "checkpoints" / "sensor_fold1.safetensors"
    ckpt.write_bytes(ckpt.read_bytes() + b" ")  # the tagged bytes are no longer these
    err = _refused(["export", run, "--tag", "probe-v1"], capsys)
    assert "sensor_fold1.safetensors" in err and "probe-v1" in err
    assert not (tiny_run / "onnx").exists()


def test_select_tagged_accepts_flags_that_restate_the_tag(tiny_run):
    registry = tiny_run.parent / "tags.json"
    register_tag(registry, "one", tiny_run, mode="audio", folds=(2,))
    register_tag(registry, "all", tiny_run, mode="audio")
    assert select_tagged(tiny_run, "one", mode="audio", fold=2) == [("audio", 2)]
    assert select_tagged(tiny_run, "all", all_folds=True) == [("audio", k) for k in range(3)]


class _InlinePool:
    """Stands in for the spawn pool: runs each submitted call at once, in this process."""

    def __init__(self, **_):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *_):
        return False

    def submit(self, fn, *args, **kwargs):
        future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def test_export_models_gives_each_pair_its_own_tag(monkeypatch):
    """The demo's release pair: two tags, one parallel batch."""
    monkeypatch.setattr(_parallel, "ProcessPoolExecutor", _InlinePool)
    monkeypatch.setattr(_parallel, "export_in_process",
                        lambda run, mode, fold, **kw: (mode, fold, kw["tag"]))
    pairs = [("multimodal", 2), ("sensor", 2)]
    tags = {("multimodal", 2): "mm-audiofix", ("sensor", 2): "sensor-v1"}
    assert _parallel.export_models("RUN", pairs, tag=tags) == [
        ("multimodal", 2, "mm-audiofix"), ("sensor", 2, "sensor-v1")]
    assert _parallel.export_models("RUN", pairs, tag="x") == [
        ("multimodal", 2, "x"), ("sensor", 2, "x")]
