"""Transforms: batch consistency (torchaudio's pattern), device/dtype matrix, SpecAugment."""

import dataclasses

import pytest
import torch
from strategies import piano_like, sensor_rows, tone, white_noise

from profy.config import FeatureConfig, config_hash
from profy.errors import FeatureError
from profy.features import (
    GlobalNormalize,
    LogMel,
    NormFitter,
    SensorFraming,
    SilenceMask,
    TimeMaskAugment,
)

SR = 16_000
CFG = FeatureConfig(frames=150)
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]


def _batch() -> torch.Tensor:
    return torch.stack([
        piano_like(seconds=2.5, sample_rate=SR, seed=0),
        tone(freq=220, seconds=2.5, sample_rate=SR) * (torch.arange(40_000) < 20_000),
        white_noise(seconds=2.5, sample_rate=SR, seed=1, amplitude=0.05),
    ])


def assert_batch_consistent(fn, *batched, atol=1e-5, rtol=1e-5):
    """fn on the batch equals fn on each item, stacked (torchaudio's batch_consistency)."""
    expected = fn(*batched)
    items = [fn(*(b[i] for b in batched)) for i in range(batched[0].shape[0])]
    if isinstance(expected, tuple):
        for j, e in enumerate(expected):
            torch.testing.assert_close(e, torch.stack([it[j] for it in items]), atol=atol,
                                       rtol=rtol)
    else:
        torch.testing.assert_close(expected, torch.stack(items), atol=atol, rtol=rtol)


def test_log_mel_batch_consistency():
    lm = LogMel.from_config(CFG)
    assert_batch_consistent(lm, _batch(), atol=1e-3, rtol=1e-5)  # dB of float32 powers
    assert_batch_consistent(lm, _batch().reshape(3, 1, -1), atol=1e-3, rtol=1e-5)


def test_silence_mask_batch_consistency():
    lm, sm = LogMel.from_config(CFG), SilenceMask.from_config(CFG)
    assert_batch_consistent(sm, lm.power(_batch()))


def test_sensor_framing_batch_consistency():
    times, keys = sensor_rows(seconds=2.0, seed=2)
    framing = SensorFraming.from_config(CFG)
    batch = torch.stack([torch.from_numpy(keys) * s for s in (1.0, -2.0, 0.5)])
    t = torch.from_numpy(times)
    framed, mask = framing(t, batch)
    assert framed.shape == (3, 150, 88) and mask.shape == (150,)
    for i in range(3):
        f_i, m_i = framing(t, batch[i])
        torch.testing.assert_close(framed[i], f_i)
        assert torch.equal(mask, m_i)


def _norm(channel_dim=-2, n=128):
    gen = torch.Generator().manual_seed(0)
    return GlobalNormalize(torch.randn(n, generator=gen), torch.rand(n, generator=gen) + 0.5,
                           feature_config_hash="h", channel_dim=channel_dim)


def test_global_normalize_batch_consistency():
    gen = torch.Generator().manual_seed(1)
    x, mask = torch.randn(3, 128, 150, generator=gen), torch.rand(3, 150, generator=gen) > 0.3
    assert_batch_consistent(_norm(), x, mask)
    assert_batch_consistent(_norm(-1, 88), torch.randn(3, 150, 88, generator=gen), mask)


def test_time_mask_batch_consistency():
    gen = torch.Generator().manual_seed(2)
    x, mask = torch.randn(4, 16, 150, generator=gen), torch.ones(4, 150, dtype=torch.bool)
    mask[1, 100:] = False
    aug = TimeMaskAugment(20, 3, seed=7).train()
    batched = aug(x, mask)
    aug = TimeMaskAugment(20, 3, seed=7).train()  # same stream, drawn item by item
    items = [aug(x[i], mask[i]) for i in range(4)]
    assert torch.equal(batched[0], torch.stack([it[0] for it in items]))
    assert torch.equal(batched[1], torch.stack([it[1] for it in items]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_mel_device_dtype_matrix(device, dtype):
    x = _batch()
    ref = LogMel.from_config(CFG)(x)
    lm = LogMel.from_config(CFG).to(device=device, dtype=dtype)
    out = lm(x.to(device=device, dtype=dtype))
    assert out.shape == (3, 128, 150) and out.dtype == dtype and out.device.type == device
    torch.testing.assert_close(out.cpu().float(), ref, atol=2e-2, rtol=0)
    mask = SilenceMask.from_config(CFG)(lm.power(x.to(device=device, dtype=dtype)))
    assert torch.equal(mask.cpu(), SilenceMask.from_config(CFG)(LogMel.from_config(CFG)
                                                                .power(x)))


def test_log_mel_shape_range_and_floor_padding():
    lm = LogMel.from_config(CFG)
    out = lm(_batch()[:, :SR])  # 1 s -> 51 real frames of 150
    assert out.shape == (3, 128, 150)
    assert float(out.max()) <= 0.0 and float(out.min()) >= -CFG.top_db
    assert bool((out[..., 51:] == -CFG.top_db).all())
    assert torch.allclose(out.amax(dim=(-2, -1)), torch.zeros(3))
    assert lm(_batch()).shape == (3, 128, 150)  # 2.5 s is cut to 150 frames
    assert set(dict(lm.named_buffers())) == {"window", "fb"}


def test_global_normalize_from_stats_checks_the_config_hash():
    fitter = NormFitter(config_hash(CFG))
    gen = torch.Generator().manual_seed(3)
    fitter.update("a", torch.randn(128, 30, generator=gen), torch.ones(30, dtype=torch.bool),
                  torch.randn(30, 88, generator=gen), torch.ones(30, dtype=torch.bool))
    stats = fitter.finalize(fold=0)
    norm = GlobalNormalize.from_stats(stats, modality="audio", feature_config_hash=config_hash(CFG))
    assert norm.mean.shape == (128,) and set(norm.state_dict()) == {"mean", "std"}
    assert norm.feature_config_hash == config_hash(CFG)
    sensor = GlobalNormalize.from_stats(stats, modality="sensor",
                                        feature_config_hash=config_hash(CFG))
    assert sensor.mean.shape == (88,) and sensor.channel_dim == -1
    other = config_hash(dataclasses.replace(CFG, n_fft=2048))
    with pytest.raises(FeatureError, match=f"fitted with feature config {config_hash(CFG)}, "
                                           f"features use {other}"):
        GlobalNormalize.from_stats(stats, modality="audio", feature_config_hash=other)
    with pytest.raises(ValueError, match="'video'"):
        GlobalNormalize.from_stats(stats, modality="video", feature_config_hash=config_hash(CFG))


def test_global_normalize_rejects_bad_std():
    with pytest.raises(ValueError, match="std"):
        GlobalNormalize(torch.zeros(3), torch.tensor([1.0, 0.0, 1.0]), feature_config_hash="h")


def test_time_mask_is_identity_in_eval_mode():
    x, mask = torch.randn(2, 16, 150), torch.ones(2, 150, dtype=torch.bool)
    aug = TimeMaskAugment(30, 2, seed=0).eval()
    out, out_mask = aug(x, mask)
    assert out is x and out_mask is mask


def _runs(masked: torch.Tensor) -> list[int]:
    runs, n = [], 0
    for m in masked.tolist() + [False]:
        if m:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs


def test_time_mask_in_training_masks_at_most_its_width_and_is_seeded():
    gen = torch.Generator().manual_seed(4)
    x, mask = torch.randn(64, 8, 150, generator=gen), torch.ones(64, 150, dtype=torch.bool)
    aug = TimeMaskAugment(12, 1, seed=11).train()
    out, out_mask = aug(x, mask)
    masked = ~out_mask
    assert bool(masked.any())
    assert all(r <= 12 for i in range(64) for r in _runs(masked[i]))
    assert bool((out.transpose(1, 2)[masked] == 0).all())
    assert torch.equal(out.transpose(1, 2)[~masked], x.transpose(1, 2)[~masked])
    again = TimeMaskAugment(12, 1, seed=11).train()(x, mask)
    assert torch.equal(again[0], out) and torch.equal(again[1], out_mask)
    other = TimeMaskAugment(12, 1, seed=12).train()(x, mask)
    assert not torch.equal(other[1], out_mask)


def test_time_mask_stays_inside_the_valid_span():
    x, mask = torch.randn(32, 8, 150), torch.zeros(32, 150, dtype=torch.bool)
    mask[:, :40] = True
    _, out_mask = TimeMaskAugment(30, 2, seed=0).train()(x, mask)
    removed = mask & ~out_mask
    assert bool(removed.any()) and not bool(removed[:, 40:].any())


def test_time_mask_sensor_layout_and_config():
    aug = TimeMaskAugment.from_config(dataclasses.replace(CFG, spec_augment_time_mask=10),
                                      seed=0)
    assert (aug.max_width, aug.n_masks) == (10, CFG.spec_augment_n_masks)
    sensor_aug = TimeMaskAugment(10, 2, seed=0, time_dim=-2).train()
    x, mask = torch.randn(2, 150, 88), torch.ones(2, 150, dtype=torch.bool)
    out, out_mask = sensor_aug(x, mask)
    assert bool((out[~out_mask] == 0).all()) and bool((~out_mask).any())
    with pytest.raises(ValueError, match="-3"):
        TimeMaskAugment(10, 2, time_dim=-3)


@pytest.mark.parametrize("device", DEVICES)
def test_normalize_and_time_mask_device_matrix(device):
    gen = torch.Generator().manual_seed(5)
    x, mask = torch.randn(3, 128, 150, generator=gen), torch.rand(3, 150, generator=gen) > 0.2
    ref = TimeMaskAugment(20, 2, seed=1).train()(_norm()(x, mask), mask)
    norm, aug = _norm().to(device), TimeMaskAugment(20, 2, seed=1).train()
    out = aug(norm(x.to(device), mask.to(device)), mask.to(device))
    assert out[0].device.type == device and out[1].device.type == device
    torch.testing.assert_close(out[0].cpu(), ref[0])
    assert torch.equal(out[1].cpu(), ref[1])
