"""Per-take extraction: shapes, masks, quality, the >=120 non-zero frames regression, errors."""

import dataclasses

import numpy as np
import pytest
import torch
from strategies import piano_like, sensor_rows, tone, white_noise

from profy.config import FeatureConfig, config_hash
from profy.errors import FeatureError
from profy.features import QUALITY_FIELDS, FeatureExtractor, TakeFeatures, extract_take

SR = 44_100
CFG = FeatureConfig()


def _stereo(mono: torch.Tensor) -> np.ndarray:
    return torch.stack([mono, 0.8 * mono], dim=1).numpy()


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    return FeatureExtractor(CFG)


@pytest.fixture(scope="module")
def take() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    audio = _stereo(piano_like(seconds=9, sample_rate=SR, seed=0))
    times, keys = sensor_rows(seconds=9, seed=0, jitter=0.2)
    return audio, times, keys


def test_a_take_has_the_documented_shapes(extractor, take):
    f = extractor(*take[:1], SR, *take[1:])
    assert isinstance(f, TakeFeatures)
    assert f.logmel.shape == (128, 560) and f.logmel.dtype == np.float32
    assert f.audio_mask.shape == (560,) and f.audio_mask.dtype == bool
    assert f.sensor.shape == (560, 88) and f.sensor.dtype == np.float32
    assert f.sensor_mask.shape == (560,) and f.sensor_mask.dtype == bool
    assert f.quality.shape == (5,) and f.quality.dtype == np.float32
    assert set(f.quality_dict()) == set(QUALITY_FIELDS)
    # 9 s at 16 kHz, hop 320: 1 + 144000 // 320 = 451 real frames; the sensor covers 450
    assert f.audio_frames_real == 451 and f.sensor_frames_real == 450
    assert not f.audio_mask[451:].any() and not f.sensor_mask[450:].any()
    assert f.sensor_mask[:450].all()
    assert f.logmel.max() == 0.0 and (f.logmel[:, 451:] == -CFG.top_db).all()
    assert f.finite and f.duration_s == 9.0 and f.sensor_rate_hz == pytest.approx(1000, rel=0.01)
    assert f.peak == pytest.approx(float(np.abs(take[0]).max()))


def test_regression_at_least_120_nonzero_frames(extractor, take):
    """The plan's Phase 1 check: the model sees >= 120 non-zero frames of a normal take."""
    f = extractor(take[0], SR, take[1], take[2])
    assert f.nonzero_frames >= 120
    assert f.nonzero_frames <= f.valid_frames <= f.audio_frames_real


def test_sensor_frames_average_the_rows(extractor, take):
    audio, times, keys = take
    f = extractor(audio, SR, times, keys)
    idx = np.floor(times * 50 + 1e-6).astype(int)
    for frame in (0, 17, 449):
        np.testing.assert_allclose(f.sensor[frame], keys[idx == frame].mean(0), rtol=1e-5,
                                   atol=1e-7)


def test_mostly_silent_take_is_masked_not_padded(extractor):
    mono = torch.zeros(9 * SR)
    mono[4 * SR:5 * SR] = tone(freq=440, seconds=1, sample_rate=SR)
    times, keys = sensor_rows(seconds=9)
    f = extractor(_stereo(mono), SR, times, keys)
    assert f.audio_frames_real == 451  # the silence is real audio...
    assert 48 <= f.valid_frames <= 56  # ...but the mask keeps only the tone
    assert f.quality_dict()["nonsilent_ratio"] == pytest.approx(f.valid_frames / 451)
    assert f.nonzero_frames == f.valid_frames


def test_quality_tracks_loudness_noise_and_clipping(extractor):
    times, keys = sensor_rows(seconds=9)
    base = piano_like(seconds=9, sample_rate=SR, seed=1, noise=0.0)
    q = extractor(_stereo(base), SR, times, keys).quality_dict()
    louder = extractor(_stereo(4 * base), SR, times, keys).quality_dict()
    assert louder["loudness_db"] == pytest.approx(q["loudness_db"] + 20 * np.log10(4), abs=0.05)
    noisy = extractor(_stereo(base + white_noise(seconds=9, sample_rate=SR, seed=2,
                                                 amplitude=0.01)), SR, times, keys)
    assert noisy.quality_dict()["snr_db"] < q["snr_db"]
    clipped = extractor(_stereo((8 * base).clamp(-1, 1)), SR, times, keys)
    assert clipped.quality_dict()["clipping_ratio"] > 0 and q["clipping_ratio"] == 0
    assert clipped.peak == 1.0


def test_long_takes_are_cut_and_other_rates_and_mono_work(extractor):
    times, keys = sensor_rows(seconds=12)
    long = extractor(_stereo(piano_like(seconds=12, sample_rate=SR, seed=3)), SR, times, keys)
    assert long.audio_frames_real == 560 and long.audio_mask.shape == (560,)
    assert long.sensor_frames_real == 560
    mono16 = piano_like(seconds=9, sample_rate=16_000, seed=3).numpy()
    f16 = extractor(mono16, 16_000, *sensor_rows(seconds=9))
    f48 = extractor(piano_like(seconds=9, sample_rate=48_000, seed=3).numpy()[:, None], 48_000,
                    *sensor_rows(seconds=9))
    assert f16.audio_frames_real == f48.audio_frames_real == 451
    assert abs(f16.valid_frames - f48.valid_frames) <= 2
    assert sorted(extractor._resamplers) == [SR, 48_000]  # one kernel per input rate


def test_extract_take_equals_the_extractor(extractor, take):
    a = extract_take(take[0], SR, take[1], take[2], CFG, source="x")
    b = extractor(take[0], SR, take[1], take[2])
    for field in dataclasses.fields(TakeFeatures):
        np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name))
    assert extractor.feature_config_hash == config_hash(CFG)


def test_non_finite_samples_are_flagged_and_zeroed(extractor, take):
    audio = take[0].copy()
    audio[1000:1010, 0] = np.nan
    audio[2000, 1] = np.inf
    f = extractor(audio, SR, take[1], take[2])
    assert not f.finite
    assert np.isfinite(f.logmel).all() and np.isfinite(f.quality).all() and np.isfinite(f.peak)
    keys = take[2].copy()
    keys[5, 5] = np.nan
    g = extractor(take[0], SR, take[1], keys)
    assert not g.finite and np.isfinite(g.sensor).all()


def test_read_only_inputs_are_accepted(extractor, take):
    audio, times, keys = (a.copy() for a in take)
    for a in (audio, times, keys):
        a.flags.writeable = False
    assert extractor(audio, SR, times, keys).audio_frames_real == 451


@pytest.mark.parametrize("kwargs,match", [
    ({"rate": 1200.0}, r"take/7: measured sensor rate 1200\.0 Hz"),
    ({"times": lambda t: t[::-1].copy()}, "take/7: sensor timestamps must increase"),
    ({"times": lambda t: t + 20.0}, "take/7: no sensor row falls in the first 560 frames"),
    ({"keys": lambda k: k[:, :80]}, r"take/7: sensor must be .*\(9000, 80\)"),
    ({"audio": lambda a: a.T.copy()}, r"take/7: waveform must be \(samples, channels\)"),
    ({"audio": lambda a: a[:500]}, "take/7: audio too short: 500 samples"),
    ({"sr": 0}, "take/7: sample_rate must be a positive integer, got 0"),
])
def test_bad_inputs_raise_feature_error_naming_the_source(extractor, take, kwargs, match):
    audio, times, keys = take
    if "rate" in kwargs:
        times, keys = sensor_rows(seconds=9, rate_hz=kwargs["rate"])
    times = kwargs.get("times", lambda t: t)(times)
    keys = kwargs.get("keys", lambda k: k)(keys)
    audio = kwargs.get("audio", lambda a: a)(audio)
    with pytest.raises(FeatureError, match=match):
        extractor(audio, kwargs.get("sr", SR), times, keys, source="take/7")
