"""RunFolder's own behaviour without training: a checkpoint's bytes depend on its content
alone (any process), a fold job cleans only its own leftovers, and collect / missing name
what is not there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from profy.errors import ConfigError, MissingInputError
from profy.training import RunFolder, load_checkpoint

REPO = Path(__file__).resolve().parents[2]

_SAVE = """
import sys, torch
from profy.config import load_profile
from profy.training import save_checkpoint
g = torch.Generator().manual_seed(0)
sd = {name: torch.randn(3, 4, generator=g) for name in ("z.weight", "a.bias", "m.w")}
save_checkpoint(sys.argv[1], sd, config=load_profile("mm-audiofix"), mode="audio", fold=2,
                metrics={"test_macro_f1": 0.5, "kept_epoch": 3}, summary={"params": 36})
"""


def test_checkpoint_bytes_are_the_same_from_any_process(tmp_path):
    paths = [tmp_path / f"ck{i}.safetensors" for i in range(3)]
    for path in paths:  # a fresh interpreter each: safetensors' map order would differ
        subprocess.run([sys.executable, "-c", _SAVE, str(path)], cwd=REPO, check=True)
    data = [p.read_bytes() for p in paths]
    assert data[0] == data[1] == data[2]
    size = int.from_bytes(data[0][:8], "little")
    meta = json.loads(data[0][8:8 + size])["__metadata__"]
    assert list(meta) == sorted(meta)
    ckpt = load_checkpoint(paths[0])
    assert (ckpt.mode, ckpt.fold, ckpt.metrics["kept_epoch"]) == ("audio", 2, 3)
    assert sorted(ckpt.state_dict) == ["a.bias", "m.w", "z.weight"]


def test_a_fold_job_cleans_only_its_own_leftovers(tmp_path):
    run = RunFolder(tmp_path / "run")
    own = [run.shard_dir("sensor", 1) / ".predictions.parquet.ab12.tmp",
           run.run_dir / "checkpoints" / ".multimodal_fold1.safetensors.x9.tmp",
           run.run_dir / "confusion" / ".audio_fold1.json.q.tmp",
           run.run_dir / "logs" / ".training_fold1.log.z.tmp"]
    others = [run.shard_dir("sensor", 0) / ".predictions.parquet.cd34.tmp",
              run.run_dir / "checkpoints" / ".sensor_fold0.safetensors.y.tmp",
              run.run_dir / "checkpoints" / ".sensor_fold10.safetensors.y.tmp",
              run.run_dir / "features" / ".feature_index.parquet.w.tmp",
              run.run_dir / "norm_stats" / ".fold_1.json.v.tmp"]
    for path in own + others:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    assert sorted(run.clean([1])) == sorted(own)
    assert all(p.is_file() for p in others)
    assert sorted(run.clean()) == sorted(others)  # a resume (one process) removes all


def test_missing_and_collect_need_a_known_run(tmp_path):
    with pytest.raises(ConfigError, match="open or claim"):
        RunFolder(tmp_path).missing()
    with pytest.raises(MissingInputError, match="does not exist"):
        RunFolder.open(tmp_path / "nope")
    with pytest.raises(MissingInputError, match="config.yaml"):
        RunFolder.open(tmp_path)
