"""Typed config: unknown keys and wrong types are errors; the hash is canonical."""

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from profy.config import FeatureConfig, config_hash, from_dict, to_dict
from profy.errors import ConfigError


def test_round_trip_and_hash_stable():
    cfg = FeatureConfig()
    again = from_dict(FeatureConfig, to_dict(cfg))
    assert again == cfg
    assert config_hash(cfg) == config_hash(again) == config_hash(to_dict(cfg))
    assert len(config_hash(cfg)) == 64


CHANGES = {"sample_rate": 22_050, "input_sample_rate": 48_000, "n_fft": 2048, "hop_length": 160,
           "n_mels": 64, "f_min": 20.0,
           "f_max": 7000.0, "mel_scale": "htk", "frames": 500, "silence_db": -40.0, "top_db": 60.0,
           "normalization": "per_sample", "sensor_rate_hz": 500.0, "sensor_rate_tolerance": 0.2,
           "spec_augment_time_mask": 20, "spec_augment_n_masks": 1}


def test_hash_changes_with_every_field():
    assert set(CHANGES) == {f.name for f in dataclasses.fields(FeatureConfig)}
    base = FeatureConfig()
    for name, value in CHANGES.items():
        assert config_hash(dataclasses.replace(base, **{name: value})) != config_hash(base), name


def test_unknown_key_is_an_error_naming_it():
    with pytest.raises(ConfigError, match="n_mel\\b.*valid keys"):
        from_dict(FeatureConfig, {"n_mel": 64})


@pytest.mark.parametrize("key,value", [("n_mels", "128"), ("n_mels", 1.5), ("n_mels", True),
                                       ("f_max", "high"), ("normalization", 3)])
def test_wrong_types_are_errors(key, value):
    with pytest.raises(ConfigError, match=key):
        from_dict(FeatureConfig, {key: value})


@pytest.mark.parametrize("kwargs", [{"normalization": "zscore"}, {"f_max": 9000.0},
                                    {"n_mels": 0}, {"silence_db": 3.0}])
def test_invalid_values(kwargs):
    with pytest.raises(ConfigError):
        FeatureConfig(**kwargs)


@given(st.dictionaries(st.text(min_size=1, max_size=12), st.integers(), max_size=4))
def test_from_dict_never_crashes_on_junk(data):
    try:
        from_dict(FeatureConfig, data)
    except ConfigError:
        pass


def test_frame_rate():
    assert FeatureConfig().frame_rate_hz == 50.0
