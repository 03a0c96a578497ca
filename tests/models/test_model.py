"""UnifiedAttentionModel: shapes, masks, gate clamp and temperature, batch consistency, legacy
switches, modality dropout, input validation, sizes."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import profy.models as models
from profy.config import ModelConfig, from_dict
from profy.contract.model_io import MODES
from profy.errors import ConfigError
from profy.models import (
    Conv1dResampler,
    FusionGate,
    MaskedAttentionPool,
    UnifiedAttentionModel,
    clamped_gate_weights,
    downsample_mask,
    pad_time,
    snr_temperature,
)

ATOL = 1e-6


def make_inputs(mode: str, batch: int, frames: int, *, seed: int, holes: bool = True) -> dict:
    """Keyword inputs for ``mode``: random lengths (>= T/3), silence holes in the audio mask,
    a random quality vector in its natural ranges. Masked positions hold real noise."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(max(frames // 3, 1), frames + 1, (batch,), generator=g)
    sensor_mask = torch.arange(frames)[None, :] < lengths[:, None]  # (B, T)
    audio_mask = sensor_mask & (torch.rand(batch, frames, generator=g) > 0.25) if holes \
        else sensor_mask.clone()
    kw: dict = {}
    if mode in ("sensor", "multimodal"):
        kw.update(sensor=torch.randn(batch, frames, 88, generator=g), sensor_mask=sensor_mask)
    if mode in ("audio", "multimodal"):
        kw.update(logmel=torch.randn(batch, 128, frames, generator=g), audio_mask=audio_mask)
    if mode == "multimodal":
        u = torch.rand(batch, 5, generator=g)
        kw["quality"] = torch.stack([u[:, 0] * 70 - 10, u[:, 1], u[:, 2], -60 * u[:, 3],
                                     0.02 * u[:, 4]], dim=-1)
    return kw


def build(mode: str, seed: int = 0, **overrides) -> UnifiedAttentionModel:
    """A model in eval mode whose gate is randomised (its last layer starts at zero, which
    would make every gate test trivially pass)."""
    torch.manual_seed(seed)
    model = UnifiedAttentionModel(ModelConfig(**overrides), mode)
    if model.gate is not None:
        torch.nn.init.normal_(model.gate.mlp[-1].weight, std=0.5)
        torch.nn.init.normal_(model.gate.mlp[-1].bias, std=0.5)
    return model.eval()


@pytest.fixture(scope="module")
def eval_models() -> dict[str, UnifiedAttentionModel]:
    return {mode: build(mode) for mode in MODES}


def run(model, kw):
    with torch.no_grad():
        return model(**kw)


def assert_close(a, b, atol=ATOL):
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, atol=atol, rtol=0)


# ---------------------------------------------------------------- shapes and API
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("frames", [64, 97, 200])
def test_output_shapes_every_mode(eval_models, mode, batch, frames):
    out = run(eval_models[mode], make_inputs(mode, batch, frames, seed=frames + batch))
    for t in out:
        assert t.shape == (batch, 2) and torch.isfinite(t).all()
    torch.testing.assert_close(out.probs, torch.softmax(out.logits, -1))
    torch.testing.assert_close(out.modality_weights.sum(-1), torch.ones(batch))
    expected = {"sensor": [1.0, 0.0], "audio": [0.0, 1.0]}.get(mode)
    if expected is not None:
        assert out.modality_weights.tolist() == [expected] * batch


@pytest.mark.parametrize("mode", MODES)
def test_backward_reaches_every_trained_part(mode):
    model = build(mode).train()
    kw = make_inputs(mode, 4, 96, seed=1)
    model(**kw).logits.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_public_api_is_listed():
    assert sorted(models.__all__) == sorted(set(models.__all__))
    for name in models.__all__:
        assert hasattr(models, name), name


# ---------------------------------------------------------------- masks
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fill", ["noise", "nonfinite"])
def test_values_at_masked_frames_change_nothing(eval_models, mode, fill):
    kw = make_inputs(mode, 3, 97, seed=5)
    base = run(eval_models[mode], kw)
    poked = dict(kw)
    if "sensor" in kw:
        s = kw["sensor"].clone()
        s[~kw["sensor_mask"]] = 1e3 * torch.randn(int((~kw["sensor_mask"]).sum()), 88) \
            if fill == "noise" else float("nan")
        poked["sensor"] = s
    if "logmel" in kw:
        a = kw["logmel"].clone().transpose(1, 2)  # (B, T, 128)
        a[~kw["audio_mask"]] = 1e3 if fill == "noise" else float("inf")
        poked["logmel"] = a.transpose(1, 2)
    assert_close(run(eval_models[mode], poked), base)


@pytest.mark.parametrize("mode", MODES)
def test_without_masks_padding_is_attended(mode):
    model = build(mode, use_masks=False)
    kw = make_inputs(mode, 2, 97, seed=6)
    base = run(model, kw)
    poked = dict(kw)
    if "sensor" in kw:
        poked["sensor"] = torch.where(kw["sensor_mask"][..., None], kw["sensor"], 3.0)
    if "logmel" in kw:
        poked["logmel"] = torch.where(kw["audio_mask"][:, None, :], kw["logmel"], 3.0)
    assert not torch.allclose(run(model, poked).logits, base.logits, atol=1e-4)
    assert run(model, {**kw, **{k: None for k in kw if k.endswith("_mask")}}) is not None


@pytest.mark.parametrize("mode", MODES)
def test_rows_without_valid_frames_stay_finite(eval_models, mode):
    kw = make_inputs(mode, 3, 64, seed=7)
    for key in ("sensor_mask", "audio_mask"):
        if key in kw:
            kw[key] = kw[key].clone()
            kw[key][1] = False
    out = run(eval_models[mode], kw)
    assert all(torch.isfinite(t).all() for t in out)
    if mode == "multimodal":  # an empty audio row is heard not at all
        assert out.modality_weights[1].tolist() == [1.0, 0.0]


def test_attention_pool_gives_padding_zero_weight():
    pool = MaskedAttentionPool(4)
    x = torch.randn(2, 6, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    y = pool(x, mask)
    x2 = x.clone()
    x2[0, 3:] = 1e6
    torch.testing.assert_close(pool(x2, mask), y, atol=0, rtol=0)
    torch.testing.assert_close(y[0], pool(x[:1, :3], mask[:1, :3])[0])  # padding weighs 0
    assert y[1].abs().sum() == 0  # all-invalid row pools to zeros by rule


# ---------------------------------------------------------------- fusion gate
@settings(max_examples=200, deadline=None)
@given(m=st.floats(0.0, 0.9), seed=st.integers(0, 2**16), scale=st.floats(0.0, 100.0),
       snr=st.floats(-50.0, 100.0))
def test_clamp_holds_for_any_logits(m, seed, scale, snr):
    logits = scale * torch.randn(8, 2, generator=torch.Generator().manual_seed(seed))
    tau = snr_temperature(torch.full((8,), snr), ref=25.0, scale=10.0, max_value=5.0)
    w = clamped_gate_weights(logits, tau, m)
    assert (w[:, 0] >= m - 1e-6).all() and (w >= 0).all() and (w <= 1).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(8))


@settings(max_examples=200, deadline=None)
@given(m=st.floats(0.0, 0.9), seed=st.integers(0, 2**16), scale=st.floats(0.0, 50.0),
       snrs=st.lists(st.floats(-50.0, 100.0), min_size=2, max_size=6))
def test_audio_share_never_rises_as_snr_falls(m, seed, scale, snrs):
    logits = scale * torch.randn(8, 2, generator=torch.Generator().manual_seed(seed))
    audio = []
    for snr in sorted(snrs, reverse=True):  # cleaner first
        tau = snr_temperature(torch.full((8,), snr), ref=25.0, scale=10.0, max_value=5.0)
        audio.append(clamped_gate_weights(logits, tau, m)[:, 1])
    for cleaner, noisier in itertools.pairwise(audio):
        assert (noisier <= cleaner + 1e-6).all()


@settings(max_examples=25, deadline=None)
@given(m=st.floats(0.0, 0.9), seed=st.integers(0, 2**16))
def test_clamp_holds_in_the_model(m, seed):
    model = build("multimodal", seed=seed % 7, min_sensor_weight=m)
    kw = make_inputs("multimodal", 4, 64, seed=seed)
    g = torch.Generator().manual_seed(seed)
    kw["quality"] = 100 * torch.randn(4, 5, generator=g)  # far outside the usual ranges
    w = run(model, kw).modality_weights
    assert (w[:, 0] >= m - 1e-6).all() and (w >= 0).all() and (w <= 1).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(4))


def test_lower_snr_flattens_the_gate():
    cfg = ModelConfig()
    gate = FusionGate(cfg).eval()
    torch.nn.init.normal_(gate.mlp[-1].weight, std=2.0)
    with torch.no_grad():  # isolate the temperature: the MLP must not read snr_db itself
        gate.mlp[0].weight[:, 2 * cfg.hidden] = 0
    g = torch.Generator().manual_seed(0)
    s = torch.randn(16, 10, cfg.hidden, generator=g)  # (B, L, H)
    a = torch.randn(16, 10, cfg.hidden, generator=g)
    mask = torch.ones(16, 10, dtype=torch.bool)
    m = cfg.min_sensor_weight
    neutral = m + (1 - m) / 2  # sensor weight of a perfectly flat gate
    spread, audio = {}, {}
    for snr in (60.0, 25.0, 10.0, -10.0):
        q = torch.tensor([[snr, 0.8, 0.3, -20.0, 0.0]]).expand(16, 5)
        with torch.no_grad():
            out = gate(s, mask, a, mask, q)
        spread[snr] = (out.weights[:, 0] - neutral).abs()
        audio[snr] = out.weights[:, 1]
        ceiling = (1 - m) * torch.sigmoid((out.logits[:, 1] - out.logits[:, 0]).abs()
                                          / out.temperature)
        assert (out.weights[:, 1] <= ceiling + 1e-6).all()
    leans_audio = out.logits[:, 1] > out.logits[:, 0]  # logits do not depend on snr here
    assert 0 < leans_audio.sum() < 16  # both kinds of rows are exercised
    assert torch.equal(spread[60.0], spread[25.0])  # at/above snr_ref: tau = 1
    # where the gate leans to audio, lower SNR flattens it (less audio trust) ...
    assert (spread[10.0] < spread[25.0])[leans_audio].all()
    assert (spread[-10.0] < spread[10.0])[leans_audio].all()
    # ... and where it leans to the sensor, flattening would add audio trust: it does not
    torch.testing.assert_close(audio[-10.0][~leans_audio], audio[60.0][~leans_audio])
    temps = gate.temperature(torch.tensor([[60.0] + [0] * 4, [15.0] + [0] * 4, [-99] + [0] * 4]))
    assert temps.tolist() == [1.0, 2.0, cfg.temperature_max]


# ---------------------------------------------------------------- consistency
@pytest.mark.parametrize("mode", MODES)
def test_batch_equals_items(eval_models, mode):
    kw = make_inputs(mode, 4, 97, seed=11)
    batched = run(eval_models[mode], kw)
    items = [run(eval_models[mode], {k: v[i:i + 1] for k, v in kw.items()}) for i in range(4)]
    for field, got in zip(batched._fields, batched, strict=True):
        want = torch.cat([getattr(o, field) for o in items])
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("used, ignored", [(64, True), (128, False)])
def test_audio_channels_used(used, ignored):
    model = build("audio", audio_channels_used=used)
    kw = make_inputs("audio", 2, 64, seed=12)
    upper = dict(kw, logmel=kw["logmel"].clone())
    upper["logmel"][:, 64:] = torch.randn(2, 64, 64)
    same = torch.allclose(run(model, upper).logits, run(model, kw).logits, atol=ATOL, rtol=0)
    assert same is ignored
    assert model.summary()["audio_channels_reaching_encoder"] == used


# ---------------------------------------------------------------- modality dropout
def _train_step_outputs(model, kw, seed):
    torch.manual_seed(seed)
    return model(**kw)


def test_no_modality_dropout_is_deterministic_in_train_mode():
    model = build("multimodal").train()
    kw = make_inputs("multimodal", 8, 64, seed=13)
    assert_close(_train_step_outputs(model, kw, 3), _train_step_outputs(model, kw, 3), atol=0)


def test_modality_dropout_acts_only_in_training():
    dropped = build("multimodal", modality_dropout_p=1.0)
    plain = build("multimodal")
    kw = make_inputs("multimodal", 64, 64, seed=14, holes=False)
    assert_close(run(dropped, kw), run(plain, kw))  # eval: p is ignored
    dropped.train()
    torch.manual_seed(0)
    w = dropped(**kw).modality_weights
    assert ((w == 0) | (w == 1)).all() and (w.sum(-1) == 1).all()  # one-hot, never both
    assert 0 < int(w[:, 0].sum()) < 64  # both kinds of drop happen
    half = build("multimodal", modality_dropout_p=0.5, dropout=0.0).train()
    torch.manual_seed(0)
    one_hot = ((half(**kw).modality_weights == 1).any(-1)).float().mean()
    assert 0.2 < one_hot < 0.8


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("mode, drop, message", [
    ("sensor", "sensor", "needs sensor"), ("audio", "logmel", "needs logmel"),
    ("multimodal", "logmel", "needs logmel"), ("multimodal", "quality", "needs quality"),
    ("sensor", "sensor_mask", "needs sensor_mask"), ("audio", "audio_mask", "needs audio_mask"),
])
def test_missing_input_is_named(eval_models, mode, drop, message):
    kw = make_inputs(mode, 1, 64, seed=0)
    kw[drop] = None
    with pytest.raises(ValueError, match=message):
        eval_models[mode](**kw)


@pytest.mark.parametrize("mode, extra", [("sensor", "audio"), ("audio", "sensor")])
def test_unused_modality_is_rejected(eval_models, mode, extra):
    kw = {**make_inputs("multimodal", 1, 64, seed=0)}
    with pytest.raises(ValueError, match=f"does not use {'logmel' if extra == 'audio' else extra}"):
        eval_models[mode](**kw)


def test_bad_shapes_and_mode_are_rejected(eval_models):
    kw = make_inputs("multimodal", 2, 64, seed=0)
    with pytest.raises(ValueError, match="share B and T"):
        eval_models["multimodal"](**{**kw, "logmel": torch.randn(2, 128, 65),
                                     "audio_mask": torch.ones(2, 65, dtype=torch.bool)})
    with pytest.raises(ValueError, match="sensor must have shape"):
        eval_models["sensor"](sensor=torch.randn(2, 64, 87), sensor_mask=kw["sensor_mask"])
    with pytest.raises(ValueError, match="bool"):
        eval_models["sensor"](sensor=kw["sensor"], sensor_mask=kw["sensor_mask"].float())
    with pytest.raises(ValueError, match="mode must be one of"):
        UnifiedAttentionModel(ModelConfig(), "video")
    out = eval_models["sensor"](sensor=kw["sensor"], sensor_mask=kw["sensor_mask"],
                                quality=kw["quality"])  # quality is ignored outside multimodal
    assert out.logits.shape == (2, 2)


# ---------------------------------------------------------------- config, sizes, summary
def test_paper_size_from_config_values_alone():
    values = {"hidden": 256, "sensor_layers": 1, "cnn_channels": [32, 64, 64],
              "cnn_time_strides": [2, 2, 2], "freq_heads": 4, "tcn_layers": 2,
              "gate_hidden": 128, "head": "bilstm", "head_layers": 2, "dropout": 0.2}
    cfg = from_dict(ModelConfig, values)
    assert cfg == ModelConfig.preset("paper")
    n = UnifiedAttentionModel(cfg, "multimodal").summary()["n_parameters"]
    assert abs(n - 4.2e6) <= 0.15 * 4.2e6, n


def test_demo_size_is_small_and_summary_complete():
    summary = UnifiedAttentionModel(ModelConfig(), "multimodal").summary()
    assert summary["n_parameters"] < 100_000
    assert summary["n_parameters"] == sum(summary["n_parameters_by_part"].values())
    assert summary | {"mode": "multimodal", "n_mels_in": 128, "audio_channels_used": 128,
                      "audio_channels_reaching_encoder": 128, "use_tcn": True,
                      "min_sensor_weight": 0.35, "modality_dropout_p": 0.0,
                      "use_masks": True} == summary
    sensor = UnifiedAttentionModel(ModelConfig(), "sensor").summary()
    assert sensor["audio_channels_reaching_encoder"] == 0 and not sensor["use_tcn"]


@pytest.mark.parametrize("bad", [
    {"min_sensor_weight": 1.5}, {"modality_dropout_p": -0.1}, {"head": "gru"},
    {"audio_channels_used": 129}, {"fusion_stride": 3}, {"cnn_time_strides": (4,)},
    {"tcn_kernel": 4}, {"temperature_max": 0.5}, {"hidden": 0},
])
def test_bad_config_values_are_rejected(bad):
    with pytest.raises(ConfigError):
        ModelConfig(**bad)
    with pytest.raises(ConfigError):
        ModelConfig.preset("huge")


@pytest.mark.parametrize("fusion_stride, strides", [(4, (4, 2)), (8, (2, 2)), (2, (2, 2)),
                                                     (1, (2,))])
def test_strides_stay_aligned(fusion_stride, strides):
    cfg = ModelConfig(fusion_stride=fusion_stride, cnn_channels=(4,) * len(strides),
                      cnn_time_strides=strides)
    model = build("multimodal", **dataclasses.asdict(cfg))
    out = run(model, make_inputs("multimodal", 2, 77, seed=3))
    assert out.logits.shape == (2, 2)


def test_helpers_pad_downsample_and_resample():
    mask = torch.tensor([[1, 0, 0, 0, 0, 1, 1]], dtype=torch.bool)
    padded = pad_time(mask, 4, dim=1, value=False)
    assert padded.tolist() == [[True, False, False, False, False, True, True, False]]
    assert downsample_mask(padded, 4).tolist() == [[True, True]]
    assert downsample_mask(padded, 2).tolist() == [[True, False, True, True]]
    x = torch.randn(2, 5, 12)
    assert Conv1dResampler(5, 8, 4)(x).shape == (2, 5, 24)
    assert Conv1dResampler(5, 4, 16)(x).shape == (2, 5, 3)
    assert Conv1dResampler(5, 4, 4)(x).shape == (2, 5, 12)


# ---------------------------------------------------------------- sensor key front end
def _pressed_keys(batch: int, frames: int, seed: int) -> dict:
    """Sensor-mode inputs that look like key presses: a resting level per key plus a few
    held notes going down (negative), so resting level and travel are well defined."""
    kw = make_inputs("sensor", batch, frames, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    x = 0.05 * torch.randn(batch, frames, 88, generator=g)
    for b in range(batch):
        for key in torch.randint(0, 88, (6,), generator=g).tolist():
            start = int(torch.randint(0, frames - 12, (1,), generator=g))
            x[b, start:start + 10, key] -= 4.0 + torch.rand(1, generator=g).item()
    kw["sensor"] = x
    return kw


@pytest.mark.parametrize("mode", ["sensor", "multimodal"])
def test_key_front_end_ignores_key_identity(mode):
    """Filters are shared by all keys and pooled over keys: permuting the 88 keys changes
    nothing, so the encoder cannot memorise which keys a piece or player uses."""
    model = build(mode)
    kw = make_inputs(mode, 3, 97, seed=21)
    perm = torch.randperm(88, generator=torch.Generator().manual_seed(0))
    assert_close(run(model, {**kw, "sensor": kw["sensor"][:, :, perm]}), run(model, kw),
                 atol=1e-5)
    linear = build(mode, sensor_frontend="linear")
    moved = run(linear, {**kw, "sensor": kw["sensor"][:, :, perm]}).logits
    assert not torch.allclose(moved, run(linear, kw).logits, atol=1e-4)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.2, 5.0))
def test_key_front_end_removes_resting_level_and_scale(seed, scale):
    """A loose key resting high (a per-take, per-key offset) and the per-key z-score's
    scale do not reach the model: only how far and how each key moves from rest."""
    model = build("sensor")
    kw = _pressed_keys(2, 64, seed)
    g = torch.Generator().manual_seed(seed)
    offset = 3.0 * torch.randn(2, 1, 88, generator=g)  # (B, 1, K): constant over time
    moved = {**kw, "sensor": scale * kw["sensor"] + offset}
    assert_close(run(model, moved), run(model, kw), atol=1e-4)


def test_take_norm_refit_uses_exact_statistics_and_batches_of_one_train():
    model = build("sensor").train()
    kw = _pressed_keys(5, 64, seed=3)
    model(**{k: v[:1] for k, v in kw.items()})  # a batch of one take does not fail in training
    encoder = model.sensor_encoder
    sensor, mask = model.prepare_sensor(kw["sensor"], kw["sensor_mask"])
    encoder.refit_take_norm([(sensor[:2], mask[:2]), (sensor[2:], mask[2:])])
    with torch.no_grad():
        feats = encoder.keys(sensor, mask)[1]  # (B, F) take-level features
    norm = encoder.take_norm.norm
    torch.testing.assert_close(norm.running_mean, feats.mean(0))
    torch.testing.assert_close(norm.running_var, feats.var(0, unbiased=True))
    assert model.training  # left as it was


@pytest.mark.parametrize("bad", [{"sensor_frontend": "conv"}, {"key_kernel": 4},
                                 {"key_channels": 0}, {"key_floor": 0.0}])
def test_bad_key_front_end_values_are_rejected(bad):
    with pytest.raises(ConfigError):
        ModelConfig(**bad)


@settings(max_examples=25, deadline=None)
@given(b=st.integers(1, 4), length=st.integers(1, 40), h=st.integers(1, 24),
       seed=st.integers(0, 2**16))
def test_attention_pool_is_the_einsum_it_replaced(b, length, h, seed):
    """The pool's weighted sum is a batched matmul (ONNX MatMul, not Einsum); it must equal
    the ``einsum("bl,blh->bh")`` it replaced, gradients included, on any shape."""
    gen = torch.Generator().manual_seed(seed)
    pool = MaskedAttentionPool(h)
    x = torch.randn(b, length, h, generator=gen, requires_grad=True)
    mask = torch.rand(b, length, generator=gen) > 0.3
    got = pool(x, mask)
    xm = torch.where(mask[:, :, None], x, torch.zeros_like(x))
    scores = pool.score(xm).squeeze(-1).masked_fill(~mask, -1e9)  # the pool's fill
    w = torch.softmax(scores, dim=-1) * mask.any(dim=-1, keepdim=True).to(x.dtype)
    want = torch.einsum("bl,blh->bh", w, xm)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    (g_got,) = torch.autograd.grad(got.square().sum(), x)
    (g_want,) = torch.autograd.grad(want.square().sum(), x)
    torch.testing.assert_close(g_got, g_want, rtol=1e-5, atol=1e-6)


@settings(max_examples=20, deadline=None)
@given(b=st.integers(1, 3), heads=st.integers(1, 4), c=st.integers(1, 8), f=st.integers(1, 16),
       length=st.integers(1, 30), seed=st.integers(0, 2**16))
def test_frequency_pooling_matmul_is_the_einsum_it_replaced(b, heads, c, f, length, seed):
    """AudioCNN2d's sum over mel bins (a batched matmul) equals the einsum it replaced."""
    from profy.models._encoders import pool_over_mels

    gen = torch.Generator().manual_seed(seed)
    attn = torch.softmax(torch.randn(b, heads, f, length, generator=gen), dim=2)
    x = torch.randn(b, c, f, length, generator=gen)
    got = pool_over_mels(attn, x)
    torch.testing.assert_close(got, torch.einsum("bhfl,bcfl->bhcl", attn, x),
                               rtol=1e-6, atol=1e-6)
