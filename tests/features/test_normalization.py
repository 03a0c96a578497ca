"""Global normalization: streaming fit = two-pass reference, train-only ids, artifact checks."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from strategies import norm_takes

from profy.config import FeatureConfig, config_hash
from profy.errors import FeatureError, LeakageError, MalformedFileError
from profy.features import (
    STD_FLOOR,
    NormFitter,
    NormStats,
    apply_global_norm,
    apply_sensor_norm,
    per_sample_zscore,
    sample_ids_sha256,
)

HASH = config_hash(FeatureConfig())


def _fit(takes, ids=None, fold=0):
    fitter = NormFitter(HASH)
    for i, take in enumerate(takes):
        fitter.update(ids[i] if ids else f"take-{i:03d}", *take)
    return fitter.finalize(fold=fold, created_at="2025-01-01T00:00:00+00:00")


@settings(max_examples=40, deadline=None)
@given(takes=norm_takes())
def test_streaming_fit_equals_two_pass_reference(takes):
    stats = _fit(takes)
    audio = np.concatenate([lm[:, m] for lm, m, _, _ in takes], axis=1).astype(np.float64)
    sensor = np.concatenate([s[m] for _, _, s, m in takes], axis=0).astype(np.float64)
    for got_mean, got_std, ref in ((stats.audio_mean, stats.audio_std, audio.T),
                                   (stats.sensor_mean, stats.sensor_std, sensor)):
        ref_mean, ref_std = ref.mean(0), ref.std(0)
        ref_std = np.where(ref_std <= STD_FLOOR * np.maximum(1, np.abs(ref_mean)), 1.0, ref_std)
        np.testing.assert_allclose(got_mean, ref_mean, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(got_std, ref_std, rtol=1e-6, atol=1e-9)
    assert stats.n_frames_audio == audio.shape[1] and stats.n_frames_sensor == sensor.shape[0]
    # normalized valid frames of the fitting set: mean 0, std 1 per non-constant channel
    z = np.concatenate([apply_global_norm(lm, m, stats, feature_config_hash=HASH).numpy()[:, m]
                        for lm, m, _, _ in takes], axis=1)
    varying = audio.std(1) > 0
    np.testing.assert_allclose(z.mean(1), 0, atol=1e-3)
    np.testing.assert_allclose(z.std(1)[varying], 1, atol=1e-3)
    zs = np.concatenate([apply_sensor_norm(s, m, stats, feature_config_hash=HASH).numpy()[m]
                         for _, _, s, m in takes], axis=0)
    np.testing.assert_allclose(zs.mean(0), 0, atol=1e-3)


def test_invalid_frames_do_not_enter_the_fit_and_are_zero_after():
    logmel = np.zeros((4, 10), np.float32)
    logmel[:, :5] = np.arange(5)
    logmel[:, 5:] = -1000.0  # padding / silence: must not move the stats
    mask = np.arange(10) < 5
    sensor, smask = np.ones((10, 88), np.float32), np.ones(10, bool)
    sensor[0] = 3.0
    stats = _fit([(logmel, mask, sensor, smask)])
    assert stats.audio_mean == pytest.approx([2.0] * 4)
    assert stats.audio_std == pytest.approx([np.sqrt(2.0)] * 4)
    z = apply_global_norm(logmel, mask, stats, feature_config_hash=HASH)
    assert bool((z[:, 5:] == 0).all())


def test_constant_channels_get_std_one_and_finite_output():
    logmel = np.full((3, 20), -80.0, np.float32)  # e.g. a band always on the floor
    logmel[1] = np.linspace(-10, 0, 20)
    sensor = np.full((20, 88), 0.02, np.float32)
    stats = _fit([(logmel, np.ones(20, bool), sensor, np.ones(20, bool))] * 1)
    assert stats.audio_std[0] == 1.0 and stats.audio_std[2] == 1.0
    assert stats.audio_std[1] != 1.0 and set(stats.sensor_std) == {1.0}
    unseen = np.full((3, 20), -60.0, np.float32)
    z = apply_global_norm(unseen, np.ones(20, bool), stats, feature_config_hash=HASH)
    assert bool(torch.isfinite(z).all()) and float(z[0, 0]) == pytest.approx(20.0)


def _takes(n, seed=0, frames=30):
    rng = np.random.default_rng(seed)
    return [(rng.normal(-40, 10, (8, frames)).astype(np.float32), rng.random(frames) < 0.8,
             rng.normal(0, 0.01, (frames, 88)).astype(np.float32), np.ones(frames, bool))
            for _ in range(n)]


def test_fit_sees_only_training_ids():
    train_ids, val_ids = [f"t{i}" for i in range(6)], [f"v{i}" for i in range(3)]
    takes = dict(zip(train_ids + val_ids, _takes(9), strict=True))
    stats = _fit([takes[i] for i in train_ids], ids=train_ids)
    assert stats.sample_ids == tuple(sorted(train_ids))
    assert not set(stats.sample_ids) & set(val_ids)
    assert stats.sample_ids_sha256 == sample_ids_sha256(train_ids)
    stats.check_fitted_on(train_ids, held_out=val_ids)
    # the same guard fails when a validation take slipped into the fit
    leaky = _fit([takes[i] for i in train_ids + val_ids[:1]], ids=train_ids + val_ids[:1])
    with pytest.raises(LeakageError, match="held-out.*v0"):
        leaky.check_fitted_on(train_ids, held_out=val_ids)
    with pytest.raises(LeakageError, match="1 missing"):
        _fit([takes[i] for i in train_ids[1:]], ids=train_ids[1:]).check_fitted_on(train_ids)
    # and the statistics differ: the validation take really moved them
    assert leaky.audio_mean != stats.audio_mean


def test_same_id_twice_and_bad_inputs_are_errors():
    fitter = NormFitter(HASH)
    take = _takes(1)[0]
    fitter.update("a", *take)
    with pytest.raises(FeatureError, match="'a' was already added"):
        fitter.update("a", *take)
    with pytest.raises(FeatureError, match="5 mel channels, earlier takes 8"):
        fitter.update("b", take[0][:5], *take[1:])
    bad = take[0].copy()
    bad[:, take[1]] = np.nan
    with pytest.raises(FeatureError, match="non-finite"):
        fitter.update("c", bad, *take[1:])
    with pytest.raises(FeatureError, match=r"\(30, 87\)"):
        fitter.update("d", take[0], take[1], take[2][:, :87], take[3])
    assert fitter.sample_ids == {"a"}  # rejected takes left the fit untouched
    with pytest.raises(FeatureError, match="no take"):
        NormFitter(HASH).finalize()
    with pytest.raises(ValueError, match="-1"):
        fitter.finalize(fold=-1)


def test_no_valid_frame_at_all_is_an_error():
    logmel, _, sensor, smask = _takes(1)[0]
    fitter = NormFitter(HASH)
    fitter.update("a", logmel, np.zeros(30, bool), sensor, smask)
    with pytest.raises(FeatureError, match="no valid audio frame"):
        fitter.finalize()


def test_wrong_config_hash_raises():
    stats = _fit(_takes(2))
    other = config_hash(dataclasses.replace(FeatureConfig(), n_mels=64))
    logmel, mask, sensor, smask = _takes(1)[0]
    with pytest.raises(FeatureError, match=f"fitted with feature config {HASH}, features use "
                                           f"{other}"):
        apply_global_norm(logmel, mask, stats, feature_config_hash=other)
    with pytest.raises(FeatureError, match="features use"):
        apply_sensor_norm(sensor, smask, stats, feature_config_hash=other)
    with pytest.raises(FeatureError, match="8 mel channels"):
        apply_global_norm(logmel[:4], mask, stats, feature_config_hash=HASH)


def test_batched_apply_equals_per_take():
    stats = _fit(_takes(3))
    takes = _takes(4, seed=1)
    batch = apply_global_norm(np.stack([t[0] for t in takes]), np.stack([t[1] for t in takes]),
                              stats, feature_config_hash=HASH)
    for i, (lm, m, _, _) in enumerate(takes):
        assert torch.equal(batch[i], apply_global_norm(lm, m, stats, feature_config_hash=HASH))


def test_json_round_trip(tmp_path):
    stats = _fit(_takes(3), fold=2)
    path = stats.to_json(tmp_path / "norm_stats" / "fold_2.json")
    back = NormStats.from_json(path, n_mels=8)
    assert back == stats and back.fold == 2 and back.version == 1
    data = json.loads(path.read_text())
    assert set(data) == {f.name for f in dataclasses.fields(NormStats)}
    assert data["sample_ids"] == sorted(data["sample_ids"]) and data["n_samples"] == 3
    assert not list(path.parent.glob(".*.tmp"))  # atomic write left no temporary file


def _tampered(tmp_path, edit) -> str:
    data = _fit(_takes(3)).to_dict()
    text = edit(data)
    path = tmp_path / "fold_0.json"
    path.write_text(text if isinstance(text, str) else json.dumps(data))
    return path


def _set(key, value):
    def edit(data):
        data[key] = value
    return edit


@pytest.mark.parametrize("edit,match", [
    (_set("sample_ids", ["take-000", "take-001", "take-999"]), "do not match sample_ids_sha256"),
    (lambda d: d["audio_std"].__setitem__(0, float("inf")) or json.dumps(d),
     "audio_std holds a non-finite"),
    (lambda d: d["sensor_std"].__setitem__(3, float("nan")) or json.dumps(d),
     "sensor_std holds a non-finite"),
    (_set("sensor_mean", [0.0] * 87), "sensor_mean has 87 values, expected 88"),
    (_set("audio_mean", [0.0] * 7), "audio_mean has 7 values, expected 8"),
    (_set("audio_std", [0.0] * 8), "audio_std holds a value <= 0"),
    (lambda d: d.pop("fold") and None, r"missing key\(s\) \['fold'\]"),
    (_set("extra", 1), r"unknown key\(s\) \['extra'\]"),
    (_set("version", 99), "version 99"),
    (_set("n_samples", 4), "n_samples=4"),
    (_set("sample_ids", ["b", "a"]), "sorted and unique"),
    (lambda d: "{not json", "not readable as JSON"),
])
def test_tampered_json_is_malformed(tmp_path, edit, match):
    path = _tampered(tmp_path, edit)
    with pytest.raises(MalformedFileError, match=match) as info:
        NormStats.from_json(path, n_mels=8)
    assert str(path) in str(info.value)


def test_per_sample_zscore_is_kept_as_the_legacy_option():
    logmel = np.random.default_rng(0).normal(-40, 10, (128, 60)).astype(np.float32)
    z = per_sample_zscore(torch.from_numpy(logmel))
    assert abs(float(z.mean())) < 1e-4 and abs(float(z.std(unbiased=False)) - 1) < 1e-4
    assert "LEGACY" in per_sample_zscore.__doc__
