"""Pure feature functions: librosa parity, mel filters, masks, quality, sensor framing."""

import warnings

import librosa
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import piano_like, tone, waveforms, white_noise

from profy.config import FeatureConfig
from profy.errors import FeatureError
from profy.features import QUALITY_FIELDS, AudioQuality
from profy.features import functional as F
from profy.features.transforms import LogMel

SR = 16_000

PARITY_SIGNALS = {
    "tone+noise": lambda: tone(freq=440, seconds=2, sample_rate=SR)
    + white_noise(seconds=2, sample_rate=SR, seed=0, amplitude=1e-3),
    "noise": lambda: white_noise(seconds=2, sample_rate=SR, seed=1, amplitude=0.1),
    "piano": lambda: piano_like(seconds=3, sample_rate=SR, seed=2),
    "quiet piano": lambda: 1e-3 * piano_like(seconds=3, sample_rate=SR, seed=2),
}


@pytest.mark.parametrize("name", sorted(PARITY_SIGNALS))
def test_log_mel_matches_librosa(name):
    """Log-mel equals librosa's melspectrogram + power_to_db(ref=np.max, top_db=80).

    Same parameters on both sides (n_fft 1024, hop 320, centred reflect padding, periodic
    Hann, Slaney mel scale and norm, power 2). Tolerance: max |dB diff| <= 5e-3 and mean
    <= 1e-4 dB (measured: 1.7e-3 max, 7e-5 mean; float32 vs librosa's float64 in the
    quietest bands); mel power within 1e-5 of the peak.
    """
    x = PARITY_SIGNALS[name]()
    ref = librosa.feature.melspectrogram(
        y=x.double().numpy(), sr=SR, n_fft=1024, hop_length=320, center=True,
        pad_mode="reflect", power=2.0, n_mels=128, fmin=0.0, fmax=8000.0, htk=False,
        norm="slaney")
    ref_db = librosa.power_to_db(ref, ref=np.max, top_db=80.0)
    lm = LogMel.from_config(FeatureConfig())
    power = lm.power(x)
    ours = lm.from_power(power)[:, :power.shape[-1]].numpy()
    assert ours.shape == ref_db.shape
    diff = np.abs(ours - ref_db)
    assert diff.max() <= 5e-3 and diff.mean() <= 1e-4, (diff.max(), diff.mean())
    mel = (lm.fb.T @ power).numpy()
    assert np.abs(mel - ref).max() <= 1e-5 * ref.max()


def test_spectral_flatness_matches_librosa():
    """Per-frame flatness averaged over frames equals librosa's within 1e-6 (absolute)."""
    x = piano_like(seconds=2, sample_rate=SR, seed=3) + white_noise(
        seconds=2, sample_rate=SR, seed=4, amplitude=0.01)
    s = np.abs(librosa.stft(x.double().numpy(), n_fft=1024, hop_length=320, center=True,
                            pad_mode="reflect"))
    ref = librosa.feature.spectral_flatness(S=s, power=2.0)[0].mean()
    power = F.power_spectrogram(x, torch.hann_window(1024), n_fft=1024, hop_length=320)
    ours = F.spectral_flatness(power, torch.ones(power.shape[-1], dtype=torch.bool))
    assert float(ours) == pytest.approx(ref, abs=1e-6)


def test_default_config_has_no_empty_mel_filter():
    cfg = FeatureConfig()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torchaudio warns on an all-zero filter
        fb = F.mel_filterbank(sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels,
                              f_min=cfg.f_min, f_max=cfg.f_max, mel_scale=cfg.mel_scale)
    assert fb.shape == (cfg.n_fft // 2 + 1, 128)
    assert bool((fb.sum(dim=0) > 0).all())


def test_too_small_n_fft_would_leave_empty_filters():
    # 62.5 Hz bins are wider than the 46.8 Hz span of the lowest Slaney filters
    with pytest.warns(UserWarning, match="all zero"):
        fb = F.mel_filterbank(sample_rate=SR, n_fft=256, n_mels=128, f_min=0.0, f_max=8000.0)
    assert int((fb.sum(dim=0) == 0).sum()) > 0


def test_quality_fields_match_the_schema():
    assert AudioQuality._fields == QUALITY_FIELDS


def test_pad_or_trim():
    x = torch.arange(6.0).reshape(2, 3)
    assert torch.equal(F.pad_or_trim(x, 2), x[:, :2])
    padded = F.pad_or_trim(x, 5, value=-1.0)
    assert padded.shape == (2, 5) and bool((padded[:, 3:] == -1).all())
    assert F.pad_or_trim(x, 4, dim=0).shape == (4, 3)
    with pytest.raises(ValueError, match="-1"):
        F.pad_or_trim(x, -1)


def _mask(x: torch.Tensor, frames: int, silence_db: float = -45.0) -> torch.Tensor:
    power = F.power_spectrogram(x, torch.hann_window(1024), n_fft=1024, hop_length=320)
    return F.silence_mask(F.frame_energy(power), frames=frames, silence_db=silence_db)


@settings(max_examples=60, deadline=None)
@given(x=waveforms(), frames=st.integers(1, 150))
def test_mask_never_marks_padding_valid(x, frames):
    mask = _mask(x, frames)
    n_real = min(1 + x.shape[-1] // 320, frames)
    assert mask.shape == (frames,) and mask.dtype == torch.bool
    assert not bool(mask[n_real:].any())
    if bool((x == 0).all()):
        assert not bool(mask.any())  # digital silence has no valid frame


def test_mostly_silent_take_is_flagged_by_its_mask():
    # 1 s tone in 9 s of silence: the mask keeps ~50 of 451 real frames
    x = torch.zeros(9 * SR)
    x[4 * SR:5 * SR] = tone(freq=440, seconds=1, sample_rate=SR)
    mask = _mask(x, 560)
    assert 48 <= int(mask.sum()) <= 56
    idx = torch.nonzero(mask).squeeze(1)
    assert 195 <= int(idx[0]) and int(idx[-1]) <= 255


def test_silence_threshold_is_relative_to_the_peak_frame():
    loud = tone(freq=440, seconds=1, sample_rate=SR)
    x = torch.cat([loud, 10 ** (-40 / 20) * loud, 10 ** (-50 / 20) * loud])
    mask = _mask(x, 200)
    assert bool(mask[5:45].all()) and bool(mask[55:95].all())
    assert not bool(mask[105:145].any())
    with pytest.raises(ValueError, match="3.0"):
        _mask(x, 200, silence_db=3.0)


def _quality(x: torch.Tensor, raw: torch.Tensor | None = None) -> dict[str, float]:
    power = F.power_spectrogram(x, torch.hann_window(1024), n_fft=1024, hop_length=320)
    mask = F.silence_mask(F.frame_energy(power), frames=560, silence_db=-45.0)
    clip = F.clipping_ratio(x if raw is None else raw)
    q = F.quality_vector(power, x, mask, clip, hop_length=320)
    assert q.shape == (5,) and q.dtype == torch.float32 and bool(torch.isfinite(q).all())
    return dict(zip(QUALITY_FIELDS, q.tolist(), strict=True))


def _gapped_tone(amplitude: float = 0.3) -> torch.Tensor:
    x = tone(freq=440, seconds=8, sample_rate=SR, amplitude=amplitude)
    x[2 * SR:3 * SR] = 0.0
    x[6 * SR:7 * SR] = 0.0
    return x


def test_louder_copy_has_higher_loudness():
    quiet, loud = _quality(_gapped_tone(0.05)), _quality(_gapped_tone(0.5))
    assert loud["loudness_db"] == pytest.approx(quiet["loudness_db"] + 20.0, abs=0.1)
    # a sine of amplitude a has RMS a / sqrt(2)
    assert loud["loudness_db"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.2)
    assert loud["nonsilent_ratio"] == pytest.approx(quiet["nonsilent_ratio"])


@pytest.mark.parametrize("noise", [1e-3, 1e-2, 0.1])
def test_added_noise_lowers_snr(noise):
    clean = _quality(_gapped_tone())
    noisy = _quality(_gapped_tone() + white_noise(seconds=8, sample_rate=SR, seed=5,
                                                  amplitude=noise))
    assert clean["snr_db"] == F.SNR_RANGE_DB[1]  # digital-silence gaps: clamped
    assert noisy["snr_db"] < clean["snr_db"] - 5
    assert noisy["spectral_flatness"] > clean["spectral_flatness"]


def test_snr_decreases_with_noise_level():
    snrs = [_quality(_gapped_tone() + white_noise(seconds=8, sample_rate=SR, seed=6,
                                                  amplitude=a))["snr_db"]
            for a in (1e-3, 1e-2, 1e-1, 1.0)]
    assert snrs == sorted(snrs, reverse=True) and snrs[-1] < 5


def test_clipped_signal_has_clipping_ratio():
    raw = 1.5 * _gapped_tone(1.0)
    clipped = raw.clamp(-1.0, 1.0)
    assert _quality(clipped)["clipping_ratio"] > 0.05
    assert _quality(_gapped_tone())["clipping_ratio"] == 0.0
    stereo = torch.stack([clipped, torch.zeros_like(clipped)])
    assert float(F.clipping_ratio(stereo)) == pytest.approx(float(F.clipping_ratio(clipped)) / 2)


def test_silent_take_quality_is_finite_and_at_its_bounds():
    q = _quality(torch.zeros(SR))
    assert q == {"snr_db": F.SNR_RANGE_DB[0], "nonsilent_ratio": 0.0, "spectral_flatness": 0.0,
                 "loudness_db": F.LOUDNESS_FLOOR_DB, "clipping_ratio": 0.0}


def test_power_spectrogram_rejects_too_short_input():
    with pytest.raises(ValueError, match="512"):
        F.power_spectrogram(torch.zeros(100), torch.hann_window(1024), n_fft=1024,
                            hop_length=320)


def _times(n=1000, rate=1000.0):
    return torch.arange(n, dtype=torch.float64) / rate


def test_sensor_frames_are_averages_of_their_rows():
    times = _times(1000)
    keys = torch.zeros(1000, 88)
    keys[:, 3] = 1.0
    keys[510:, 3] = 3.0  # step 10 rows into frame 25 (rows 500..519)
    keys[:, 7] = torch.arange(1000, dtype=torch.float32)
    framed, mask = F.frame_sensor(times, keys, frame_rate=50.0, frames=60)
    assert framed.shape == (60, 88) and bool(mask[:50].all()) and not bool(mask[50:].any())
    assert framed[24, 3] == 1.0 and framed[25, 3] == 2.0 and framed[26, 3] == 3.0
    # a ramp's frame mean is the mean of its 20 rows, not one sampled row
    expected = torch.arange(50, dtype=torch.float32) * 20 + 9.5
    assert torch.allclose(framed[:50, 7], expected)
    assert bool((framed[50:] == 0).all())


def test_sensor_gap_leaves_frames_masked_and_rows_past_the_end_ignored():
    times = torch.cat([_times(200), 0.5 + _times(1000)])  # no rows in [0.2, 0.5)
    keys = torch.ones(1200, 88)
    framed, mask = F.frame_sensor(times, keys, frame_rate=50.0, frames=40)
    assert bool(mask[:10].all()) and not bool(mask[10:25].any()) and bool(mask[25:].all())
    assert bool((framed[mask] == 1).all()) and bool((framed[~mask] == 0).all())


def test_sensor_rate_off_by_20_percent_names_the_source():
    with pytest.raises(FeatureError, match=r"take_42/hackkey\.csv.*1250\.0 Hz"):
        F.check_sensor_times(_times(rate=1250.0), rate_hz=1000.0, tolerance=0.1,
                             source="take_42/hackkey.csv")
    rate = F.check_sensor_times(_times(rate=1080.0), rate_hz=1000.0, tolerance=0.1)
    assert rate == pytest.approx(1080.0)


@pytest.mark.parametrize("bad,match", [
    (torch.tensor([0.0, 0.001, 0.001, 0.003]), "increase strictly; row 2"),
    (torch.tensor([0.0, 0.002, 0.001, 0.003]), "increase strictly; row 2"),
    (torch.tensor([0.0, float("nan"), 0.002]), "NaN"),
    (torch.tensor([0.0]), "at least 2"),
])
def test_bad_sensor_times_raise(bad, match):
    with pytest.raises(FeatureError, match=f"src.csv: .*{match}"):
        F.check_sensor_times(bad, rate_hz=1000.0, tolerance=0.5, source="src.csv")


def test_normalize_zeroes_invalid_frames():
    x = torch.full((2, 4, 6), 5.0)
    mask = torch.tensor([True, False, True, True, False, False]).expand(2, 6)
    z = F.normalize(x, mask, torch.full((4,), 3.0), torch.full((4,), 2.0))
    assert bool((z[..., mask[0]] == 1).all()) and bool((z[..., ~mask[0]] == 0).all())
    s = F.normalize(x.transpose(-1, -2), mask, torch.full((4,), 3.0), torch.full((4,), 2.0),
                    channel_dim=-1)
    assert torch.equal(s, z.transpose(-1, -2))


def test_per_sample_zscore_is_the_legacy_whole_tensor_zscore():
    x = torch.randn(3, 8, 20, generator=torch.Generator().manual_seed(0)) * 4 + 7
    z = F.per_sample_zscore(x)
    assert torch.allclose(z.mean(dim=(-2, -1)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(z.std(dim=(-2, -1), unbiased=False), torch.ones(3), atol=1e-4)


def test_time_mask_respects_width_and_generator():
    x, mask = torch.randn(4, 8, 100), torch.ones(4, 100, dtype=torch.bool)
    out1, m1 = F.time_mask(x, mask, max_width=10, n_masks=2,
                           generator=torch.Generator().manual_seed(3))
    out2, m2 = F.time_mask(x, mask, max_width=10, n_masks=2,
                           generator=torch.Generator().manual_seed(3))
    assert torch.equal(out1, out2) and torch.equal(m1, m2)
    hit = ~m1.unsqueeze(1).expand_as(x)
    assert bool((out1[hit] == 0).all()) and torch.equal(out1[~hit], x[~hit])
    assert int((~m1).sum(-1).max()) <= 20 and bool((~m1).any())
    with pytest.raises(ValueError, match="-2"):
        F.time_mask(x, mask, max_width=-2, n_masks=1)
