"""`profy tag` / `profy tags` over a real run, a changed checkpoint byte, and `profy ablate`
on the tiny corpus (1 epoch)."""

from __future__ import annotations

import json

import pytest

from profy.cli import main
from profy.errors import MalformedFileError
from profy.training import list_tags, resolve_tag
from profy.training._ablate import VARIANTS


@pytest.fixture(scope="module")
def sensor_run(tiny_corpus_ro, tmp_path_factory):
    base = tmp_path_factory.mktemp("tagrun")
    runs = base / "runs"
    assert main(["train", "--config", "sensor-v1", "--data", str(tiny_corpus_ro), "--out",
                 str(runs), "--cache", str(base / "cache"), "--epochs", "1",
                 "--modes", "sensor", "--workers", "1"]) == 0
    (run_dir,) = runs.glob("experiment_*")
    return runs, run_dir


def test_tag_lists_resolves_and_detects_a_changed_checkpoint(sensor_run, capsys):
    runs, run_dir = sensor_run
    assert main(["tag", str(run_dir), "--mode", "sensor", "--tag", "sensor-v1"]) == 0
    registry = runs / "tags.json"  # default: the runs folder holding the run
    assert registry.is_file() and str(registry.resolve()) in capsys.readouterr().out
    assert main(["tag", str(run_dir), "--mode", "sensor", "--tag", "sensor-v1"]) == 2
    assert "already names" in capsys.readouterr().err
    assert main(["tag", str(run_dir), "--mode", "audio", "--tag", "audio-x"]) == 2
    capsys.readouterr()
    assert [t.tag for t in list_tags(registry)] == ["sensor-v1"]
    assert main(["tags", "--runs", str(runs), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "sensor-v1" in out and "ok" in out
    assert main(["tags", "--registry", str(registry), "--resolve", "sensor-v1"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["folds"] == [0, 1, 2] and resolved["mode"] == "sensor"

    ckpt = run_dir / "checkpoints" / "sensor_fold1.safetensors"
    data = bytearray(ckpt.read_bytes())
    data[-1] ^= 0x01  # one byte of the weights
    ckpt.write_bytes(bytes(data))
    with pytest.raises(MalformedFileError, match="changed since it was tagged"):
        resolve_tag(registry, "sensor-v1")
    assert main(["tags", "--runs", str(runs), "--resolve", "sensor-v1"]) == 2
    assert "changed since it was tagged" in capsys.readouterr().err
    assert main(["tags", "--runs", str(runs), "--verify"]) == 1
    assert "CHANGED" in capsys.readouterr().out
    assert main(["tags", "--runs", str(runs), "--resolve", "nope"]) == 2


def test_ablate_writes_the_variant_table(tiny_corpus_ro, tmp_path, capsys):
    out = tmp_path / "ablation"
    assert main(["ablate", "--data", str(tiny_corpus_ro), "--out", str(out), "--fold", "1",
                 "--epochs", "1", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert str((out / "ablation.json").resolve()) in printed
    obj = json.loads((out / "ablation.json").read_text())
    assert obj["fold"] == 1 and obj["epochs"] == 1
    rows = obj["rows"]
    assert [(r["variant"], r["mode"]) for r in rows] == [
        (v, m) for v in VARIANTS for m in ("audio", "multimodal")]
    for r in rows:
        tcn, spec = VARIANTS[r["variant"]]
        assert (r["use_tcn"], r["spec_augment"]) == (tcn, spec)
        assert 0.0 <= r["macro_f1"] <= 1.0 and r["epochs"] == 1 and r["seconds"] > 0
        assert (r["spec_augment_time_mask"] > 0) == spec
    assert len({r["config_hash"] for r in rows}) == 4
    md = (out / "ablation.md").read_text()
    assert "| variant | mode | macro F1 | epochs | seconds |" in md
    assert md.count("\n| cnn") == 8
    assert main(["ablate", "--data", str(tiny_corpus_ro), "--out", str(out), "--fold", "5",
                 "--epochs", "1"]) == 2
