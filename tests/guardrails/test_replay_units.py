"""Replay building blocks without ONNX: cached-feature batches vs profy's torch loader,
history appends (also from concurrent processes), change points, perturbations."""

from __future__ import annotations

import multiprocessing as mp
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrails.cli import main
from guardrails.errors import ArtifactError, BadInputError
from guardrails.replay._features import CachedFeatures, FeatureBatch
from guardrails.replay._history import append_history, change_point, history_row, read_history
from guardrails.replay._perturb import (
    SILENT_QUALITY,
    Level,
    apply_level,
    audio_dropout,
    key_drop,
    noise_snr,
)


def test_batches_equal_profys_torch_loader(tiny_run_ro):
    import yaml

    from profy.config import RunConfig, from_dict
    from profy.features import FeatureStore
    from profy.training._data import load_corpus

    index = tiny_run_ro / "features" / "feature_index.parquet"
    cfg = from_dict(RunConfig, yaml.safe_load((tiny_run_ro / "config.yaml").read_text()))
    splits = pq.read_table(tiny_run_ro / "splits.parquet").to_pandas()
    ids = list(splits[(splits.fold == 1) & (splits.role == "test")].sample_id)[::-1]
    ours = CachedFeatures(index).load_batch(ids)
    theirs = load_corpus(FeatureStore(index), ids, features=cfg.features)
    assert ours.sample_ids == theirs.sample_ids == tuple(sorted(ids))
    for name in ("sensor", "sensor_mask", "logmel", "audio_mask", "quality"):
        ref = getattr(theirs, name).numpy()
        assert ours.arrays[name].dtype == ref.dtype and ours.arrays[name].shape == ref.shape
        np.testing.assert_array_equal(ours.arrays[name], ref, err_msg=name)
    t = cfg.features.frames
    assert ours.arrays["sensor"].shape == (len(ids), t, 88)
    assert ours.arrays["logmel"].shape == (len(ids), cfg.features.n_mels, t)


def test_tampered_or_missing_cache_entry_is_named(tiny_run_ro, tmp_path):
    index = tiny_run_ro / "features" / "feature_index.parquet"
    feats = CachedFeatures(index)
    sid = feats.sample_ids[0]
    cache = tmp_path / "cache"
    shutil.copytree(feats.cache_dir, cache)
    mine = CachedFeatures(index, cache_dir=cache)
    entry = mine.entry_path(sid)
    data = bytearray(entry.read_bytes())
    data[-3] ^= 0x10  # one byte of a tensor: the payload checksum no longer matches
    entry.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum") as err:
        mine.load_batch([sid])
    assert str(entry) in str(err.value)
    entry.unlink()
    with pytest.raises(ArtifactError, match="missing"):
        mine.take(sid)
    with pytest.raises(BadInputError, match="not in the index"):
        mine.take("nope")
    with pytest.raises(ArtifactError, match="feature index is missing"):
        CachedFeatures(tmp_path / "absent.parquet")


def _row(i: int, f1: float = 0.5) -> dict:
    return history_row(kind="smoke", tag="mm-audiofix", model_sha256="m" * 64,
                       data_sha256="d" * 64, n_takes=6, macro_f1=f1, latency_ms=1.0 + i,
                       metrics={"i": i, "nan": float("nan")}, verdict="pass", fold=2)


def test_history_grows_one_row_per_append_and_keeps_metrics(tmp_path):
    path = tmp_path / "h" / "history.parquet"
    assert [append_history(path, _row(i)) for i in range(3)] == [1, 2, 3]
    table = read_history(path)
    assert table.column("latency_ms").to_pylist() == [1.0, 2.0, 3.0]
    assert '"nan": "nan"' in table.column("metrics_json")[0].as_py()
    assert not list(path.parent.glob(".*.tmp"))


def _append_many(path: str, start: int, n: int) -> None:
    for i in range(start, start + n):
        append_history(path, _row(i))


def test_two_processes_appending_at_once_lose_no_row(tmp_path):
    path = tmp_path / "history.parquet"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), k * 100, 15)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    lat = sorted(read_history(path).column("latency_ms").to_pylist())
    assert lat == sorted([1.0 + i for i in range(15)] + [101.0 + i for i in range(15)])


def test_bad_history_is_bad_input(tmp_path, capsys):
    bad = tmp_path / "h.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(BadInputError, match="not a readable Parquet"):
        read_history(bad)
    append_history(tmp_path / "x.parquet", _row(0))
    pq.write_table(pq.read_table(tmp_path / "x.parquet").drop(["verdict"]), bad)
    with pytest.raises(BadInputError, match="lacks"):
        read_history(bad)
    with pytest.raises(BadInputError, match="lacks"):
        append_history(bad, _row(1))
    assert main(["history", str(tmp_path / "absent.parquet")]) == 2
    assert "no such history file" in capsys.readouterr().err


def test_history_command_flags_a_step_change(tmp_path, capsys):
    path = tmp_path / "history.parquet"
    for i, f1 in enumerate([0.62] * 4 + [0.48] * 4):
        append_history(path, _row(i, f1))
    assert main(["history", str(path)]) == 0
    out = capsys.readouterr().out
    assert "CHANGE POINT" in out and "0.620 -> 0.480" in out and "replay #5" in out
    assert main(["history", str(path), "--fail-on-change"]) == 1
    capsys.readouterr()
    assert main(["history", str(path), "--metric", "latency_ms", "--k", "1000"]) == 0
    assert "stable latency_ms" in capsys.readouterr().out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=0, max_size=5), st.integers(3, 8),
       st.floats(0.05, 0.5), st.integers(3, 4))
def test_change_point_finds_a_clean_step_and_not_a_flat_series(prefix, n, step, window):
    base = 0.4
    flat = [base] * (2 * n)
    cp = change_point(flat, window=window)
    assert cp is None or not cp.flagged
    series = [base] * n + [base + step] * n
    cp = change_point(series, window=window)
    if 2 * n >= 2 * window:
        assert cp is not None and cp.flagged and cp.index == n
        assert cp.after - cp.before == pytest.approx(step)
    assert change_point(prefix[: 2 * window - 1], window=window) is None


def _batch(rng: np.random.Generator, n: int = 3, t: int = 40) -> FeatureBatch:
    logmel = rng.normal(-30, 12, (n, 16, t))
    logmel = np.maximum(logmel - logmel.max(axis=(1, 2), keepdims=True), -80.0)  # as extracted
    mask = rng.random((n, t)) > 0.2
    return FeatureBatch(tuple(f"s{i}" for i in range(n)), {
        "sensor": rng.random((n, t, 88)).astype(np.float32),
        "sensor_mask": rng.random((n, t)) > 0.1, "logmel": logmel.astype(np.float32),
        "audio_mask": mask, "quality": np.tile(np.float32([40, 0.9, 0.1, -20, 0]), (n, 1))})


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(-5, 50))
def test_noise_keeps_the_log_mel_contract_and_lowers_quality_snr(seed, snr):
    rng = np.random.default_rng(seed)
    batch = _batch(rng)
    noisy = noise_snr(batch, snr, top_db=80.0, rng=rng)
    lm = noisy.arrays["logmel"]
    assert lm.dtype == np.float32 and lm.shape == batch.arrays["logmel"].shape
    assert np.all(lm >= -80.0) and np.allclose(lm.max(axis=(1, 2)), 0.0)
    invalid = ~np.broadcast_to(batch.arrays["audio_mask"][:, None, :], lm.shape)
    assert np.array_equal(lm[invalid] <= batch.arrays["logmel"][invalid] + 1e-3,
                          np.ones(invalid.sum(), bool))  # re-referencing only lowers them
    q = noisy.arrays["quality"]
    assert np.all(q[:, 0] <= min(40.0, snr) + 1e-4)
    np.testing.assert_array_equal(q[:, 1:], batch.arrays["quality"][:, 1:])


def test_more_noise_moves_the_log_mel_more_and_levels_repeat():
    batch = _batch(np.random.default_rng(0))
    diffs = [np.abs(apply_level(batch, Level("noise", s), top_db=80.0, seed=1)
                    .arrays["logmel"] - batch.arrays["logmel"]).mean() for s in (40, 20, 0)]
    assert diffs[0] < diffs[1] < diffs[2]
    again = apply_level(batch, Level("noise", 20), top_db=80.0, seed=1).arrays["logmel"]
    np.testing.assert_array_equal(again, apply_level(batch, Level("noise", 20), top_db=80.0,
                                                     seed=1).arrays["logmel"])


def test_dropout_and_key_drop():
    batch = _batch(np.random.default_rng(1))
    silent = audio_dropout(batch, top_db=80.0)
    assert not silent.arrays["audio_mask"].any() and np.all(silent.arrays["logmel"] == -80.0)
    assert np.all(silent.arrays["quality"] == SILENT_QUALITY)
    dropped = key_drop(batch, 0.25, rng=np.random.default_rng(3))
    frozen = [k for k in range(88) if np.ptp(dropped.arrays["sensor"][0][:, k]) == 0]
    assert len(frozen) == 22
    changed = np.any(dropped.arrays["sensor"] != batch.arrays["sensor"], axis=(0, 1))
    assert set(np.flatnonzero(changed)) <= set(frozen)


def test_replay_modules_never_import_torch():
    code = ("import sys, guardrails.replay, guardrails.commands.replay, "
            "guardrails.commands.history; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
