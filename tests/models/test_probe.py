"""``audio_channels_reaching_encoder`` is measured on the model, not echoed from the config."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from profy.config import ModelConfig
from profy.models import AudioCNN2d, UnifiedAttentionModel
from profy.models._probe import measure_audio_channels

ORIGINAL_FORWARD = AudioCNN2d.forward


def _keep_only(channels: list[int]):
    """An ``AudioCNN2d.forward`` with a reshape bug the config does not know about: the mel
    axis keeps its width, but only ``channels`` carry the input (the others are zero)."""
    keep = torch.zeros(128, dtype=torch.bool)
    keep[channels] = True

    def forward(self, logmel, mask):
        return ORIGINAL_FORWARD(self, logmel * keep.to(logmel.device)[None, :, None], mask)

    return forward


def _fold_upper_half(self, logmel, mask):
    """The pre-plan bug, shape-preserving: the lower 64 mels twice, the upper 64 lost."""
    return ORIGINAL_FORWARD(self, torch.cat([logmel[:, :64], logmel[:, :64]], dim=1), mask)


@pytest.mark.parametrize("mode", ["audio", "multimodal"])
def test_a_reshape_bug_the_config_does_not_know_is_measured(monkeypatch, mode):
    monkeypatch.setattr(AudioCNN2d, "forward", _fold_upper_half)
    model = UnifiedAttentionModel(ModelConfig(), mode)
    summary = model.summary()
    assert summary["audio_channels_used"] == 128  # the config still says 128
    assert summary["audio_channels_reaching_encoder"] == 64
    probe = summary["audio_channels_measurement"]
    assert probe["channels"] == 64 and probe["encoder_input_shape"][:2] == [1, 128]


def test_the_config_knob_and_sensor_mode_are_measured_too():
    cfg = dataclasses.replace(ModelConfig(), audio_channels_used=64)
    assert UnifiedAttentionModel(cfg, "audio").summary()["audio_channels_reaching_encoder"] == 64
    full = UnifiedAttentionModel(ModelConfig(), "multimodal").summary()
    assert full["audio_channels_reaching_encoder"] == 128
    assert full["audio_channels_measurement"]["encoder_input_shape"][:2] == [1, 128]
    sensor = UnifiedAttentionModel(ModelConfig(), "sensor").summary()
    assert sensor["audio_channels_reaching_encoder"] == 0
    assert sensor["audio_channels_measurement"]["encoder_input_shape"] is None


@settings(max_examples=15, deadline=None)
@given(channels=st.sets(st.integers(0, 127), min_size=1, max_size=128))
def test_probe_counts_exactly_the_channels_that_reach(channels):
    model = UnifiedAttentionModel(ModelConfig(), "audio")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(AudioCNN2d, "forward", _keep_only(sorted(channels)))
        assert measure_audio_channels(model)["channels"] == len(channels)


def test_probe_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = UnifiedAttentionModel(ModelConfig(), "multimodal").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    measure_audio_channels(model)
    assert model.training and all(m.training for m in model.modules())
    assert torch.equal(torch.get_rng_state(), rng)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not model.audio_encoder.cnn.convs[0]._forward_pre_hooks
