"""``gate.audio_channels`` gates what reaches the audio encoder, measured on the model.

A run whose model drops mel channels in a reshape the config does not know about (the
config still says ``audio_channels_used: 128``) must fail; so must a summary number that
no measurement backs.
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from profy.models import AudioCNN2d

pytestmark = pytest.mark.slow  # trains a small run / copies the session's tiny run

ORIGINAL_FORWARD = AudioCNN2d.forward


def _fold_upper_half(self, logmel, mask):
    """The pre-plan bug, shape-preserving: the lower 64 mels twice, the upper 64 lost."""
    return ORIGINAL_FORWARD(self, torch.cat([logmel[:, :64], logmel[:, :64]], dim=1), mask)


def test_a_run_whose_model_drops_channels_fails_the_gate(tiny_corpus_ro, tmp_path, monkeypatch,
                                                         run_selected):
    from profy.config import load_profile
    from profy.training import train

    monkeypatch.setattr(AudioCNN2d, "forward", _fold_upper_half)
    cfg = load_profile("mm-audiofix", ["train.epochs=1", "train.modes=[audio]"])
    run = train(cfg, tiny_corpus_ro, tmp_path / "runs", cache_dir=tmp_path / "cache",
                profile="mm-audiofix").run_dir
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["audio_channels_used"] == 128  # the config does not know
    res = run_selected(run, "gate.audio_channels")["gate.audio_channels"]
    assert not res.passed
    assert "only 64 channels reach the audio encoder of the audio model" in res.message
    assert res.observed["config"] == 128 and res.observed["audio"] == 64


def test_an_unmeasured_summary_number_fails(tiny_run, run_selected):
    assert run_selected(tiny_run, "gate.audio_channels")["gate.audio_channels"].passed
    path = tiny_run / "model_summary.json"
    summary = json.loads(path.read_text())
    del summary["multimodal"]["audio_channels_measurement"]  # what a config echo looks like
    path.write_text(json.dumps(summary))
    res = run_selected(tiny_run, "gate.audio_channels")["gate.audio_channels"]
    assert not res.passed
    assert "multimodal audio_channels_reaching_encoder=128 is not backed by a measurement" \
        in res.message
