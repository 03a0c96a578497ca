"""Profiles and ``--set`` overrides: built-ins load, only differ from defaults where they say
so, unknown keys are errors naming the key, and ``profy train`` applies overrides."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import yaml

from profy.cli import main
from profy.config import (
    FeatureConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    config_hash,
    load_profile,
    profile_dir,
)
from profy.errors import ConfigError
from profy.training import load_checkpoint

BUILTIN = ("mm-audiofix", "sensor-v1", "audio-v1", "paper", "legacy-20250925")


def test_builtin_profiles_are_the_shipped_files():
    assert sorted(p.stem for p in profile_dir().glob("*.yaml")) == sorted(BUILTIN)


@pytest.mark.parametrize("name", BUILTIN)
def test_profile_loads_and_lists_only_non_default_keys(name):
    cfg = load_profile(name)
    raw = yaml.safe_load((profile_dir() / f"{name}.yaml").read_text()) or {}
    defaults = RunConfig()
    for section, values in raw.items():
        for key, value in values.items():
            default = getattr(getattr(defaults, section), key)
            assert value != (list(default) if isinstance(default, tuple) else default), \
                f"{name}: {section}.{key} repeats the default"
    assert load_profile(profile_dir() / f"{name}.yaml") == cfg  # by name == by path


def test_profile_contents():
    assert load_profile("mm-audiofix") == RunConfig()
    assert load_profile("sensor-v1").train.modes == ("sensor",)
    assert load_profile("audio-v1").train.modes == ("audio",)
    assert load_profile("paper").model == ModelConfig.preset("paper")
    legacy = load_profile("legacy-20250925")
    assert (legacy.model.audio_channels_used, legacy.features.normalization,
            legacy.model.use_masks, legacy.model.modality_dropout_p,
            legacy.model.min_sensor_weight, legacy.train.checkpoint,
            legacy.train.norm_fit) == (64, "per_sample", False, 0.3, 0.0, "last", "all")
    # that date's sensor encoder and its (unused) "best" criterion
    assert (legacy.model.sensor_frontend, legacy.train.checkpoint_metric) == ("linear", "val_f1")


def test_set_overrides_are_typed_and_applied_in_order():
    cfg = load_profile("mm-audiofix", ["model.hidden=16", "train.modes=[sensor, audio]",
                                       "train.lr=1e-3", "train.lr=0.002",
                                       "model.use_tcn=false"])
    assert cfg.model.hidden == 16 and cfg.train.modes == ("sensor", "audio")
    assert cfg.train.lr == 0.002 and cfg.model.use_tcn is False
    assert config_hash(cfg) != config_hash(RunConfig())
    assert load_profile(None) == RunConfig()


@pytest.mark.parametrize("override,words", [
    ("model.hiden=16", "hiden"), ("modle.hidden=16", "modle"), ("model.hidden=big", "hidden"),
    ("hidden=16", "section.key=value"), ("model.hidden", "section.key=value"),
    ("train.modes=[sensor, piano]", "piano"), ("train.class_balance=smote", "smote"),
    ("features.n_mels=64", "n_mels_in"),
])
def test_bad_overrides_are_config_errors_naming_the_problem(override, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        load_profile("mm-audiofix", [override])


def test_unknown_profile_key_is_a_config_error_naming_it(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("model:\n  hidden: 16\n  gate_hiden: 8\n")
    with pytest.raises(ConfigError, match=r"gate_hiden.*valid keys"):
        load_profile(path)
    path.write_text("trian:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match="trian"):
        load_profile(path)
    path.write_text("model: [1, 2\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_profile(path)
    with pytest.raises(ConfigError, match="unknown profile 'mm-audiofx'.*mm-audiofix"):
        load_profile("mm-audiofx")


def test_to_yaml_round_trips(tmp_path):
    cfg = RunConfig(features=FeatureConfig(frames=500), model=ModelConfig(cnn_channels=(4, 8)),
                    train=TrainConfig(modes=("multimodal",), seed=3))
    path = tmp_path / "resolved.yaml"
    path.write_text(cfg.to_yaml())
    assert load_profile(path) == cfg
    assert config_hash(cfg) in cfg.to_yaml().splitlines()[0]


def test_train_config_validation():
    for bad in ({"epochs": 0}, {"n_folds": 1}, {"val_fraction": 1.0}, {"modes": ()},
                {"modes": ("sensor", "sensor")}, {"device": "tpu"}, {"checkpoint": "best2"},
                {"norm_fit": "val"}, {"gate_log_fraction": 1.5}):
        with pytest.raises(ConfigError):
            TrainConfig(**bad)
    with pytest.raises(ConfigError, match="spec_augment_time_mask"):
        RunConfig(train=TrainConfig(spec_augment=True))
    assert dataclasses.replace(TrainConfig(), spec_augment=True).spec_augment


def test_cli_train_applies_set_and_prints_results(tiny_corpus_ro, tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = ["train", "--config", "sensor-v1", "--data", str(tiny_corpus_ro), "--out", str(runs),
            "--epochs", "1", "--seed", "5", "--workers", "1", "--set", "model.hidden=16"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    (run_dir,) = runs.iterdir()
    assert re.fullmatch(r"experiment_\d{8}_\d{6}", run_dir.name)
    assert str(run_dir.resolve()) in out.replace("\n", "") and "sensor" in out and "±" in out
    cfg = load_profile(run_dir / "config.yaml")
    assert (cfg.model.hidden, cfg.train.epochs, cfg.train.seed, cfg.train.modes) == (
        16, 1, 5, ("sensor",))
    ckpt = load_checkpoint(run_dir / "checkpoints" / "sensor_fold0.safetensors")
    assert ckpt.summary["hidden"] == 16 and ckpt.config == cfg
    assert (tmp_path / "cache").is_dir()  # default cache: RUNS_DIR/../cache
    results = json.loads((run_dir / "complete_results.json").read_text())
    assert list(results["modes"]) == ["sensor"]


def test_cli_train_unknown_key_exits_2_naming_it(tiny_corpus_ro, tmp_path, capsys):
    argv = ["train", "--config", "mm-audiofix", "--data", str(tiny_corpus_ro), "--out",
            str(tmp_path / "runs"), "--set", "train.epoch=3"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "config.train: unknown key(s) epoch" in err and "--set" in err
    assert not (tmp_path / "runs").exists()
