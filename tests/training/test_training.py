"""One fold's loop (best-epoch restore, ties, patience, legacy "last"), batching, class
balance, normalization checks, checkpoints and tags, and run-to-run determinism."""

from __future__ import annotations

import copy
import dataclasses
import datetime

import numpy as np
import pandas as pd
import pytest
import torch

from profy.config import FeatureConfig, ModelConfig, RunConfig, TrainConfig
from profy.data import build_manifest, make_folds
from profy.errors import ConfigError, FeatureError, MalformedFileError
from profy.features import (
    FeatureStore,
    NormStats,
    TimeMaskAugment,
    compute_features,
    fit_fold_norm_stats,
)
from profy.models import UnifiedAttentionModel
from profy.training import (
    _loop,
    batch_order,
    class_weights,
    create_run_dir,
    load_checkpoint,
    load_corpus,
    normalize_fold,
    register_tag,
    resolve_tag,
    run_cv,
    save_checkpoint,
    train_fold,
)


@pytest.fixture(scope="module")
def featured(tiny_corpus_ro, tmp_path_factory):
    """Features and player-wise splits of the tiny corpus, computed once for the module."""
    out = tmp_path_factory.mktemp("train_features")
    manifest = build_manifest(tiny_corpus_ro)
    takes = manifest.table.select(["sample_id", "player_id", "piece", "label"]).to_pandas()
    splits = make_folds(takes, n_folds=3, seed=0)
    run = compute_features(tiny_corpus_ro, manifest.table, out, cfg=FeatureConfig())
    return FeatureStore(run.index_path), splits, run.audio_stats_path


@pytest.fixture(scope="module")
def fold0(featured, tmp_path_factory):
    """Fold 0's normalized inputs by role."""
    store, splits, _ = featured
    paths = fit_fold_norm_stats(store, splits[splits.fold == 0], tmp_path_factory.mktemp("ns"))
    corpus = load_corpus(store, sorted(splits.sample_id.unique()), features=FeatureConfig())
    labels = splits.drop_duplicates("sample_id").set_index("sample_id")["label"]
    inputs = normalize_fold(corpus, NormStats.from_json(paths[0]), labels,
                            features=FeatureConfig())
    role = splits[splits.fold == 0].set_index("sample_id")["role"]
    return {r: inputs.subset([i for i, s in enumerate(inputs.sample_ids) if role[s] == r])
            for r in ("train", "val", "test")}


def _scripted(monkeypatch, f1s, losses=None):
    """Make ``evaluate`` report the given val scores, one per epoch, in order."""
    losses = list(losses or [1.0] * len(f1s))
    script = iter(zip(losses, f1s, strict=True))

    def fake(model, inputs, *, mode, batch_size):
        loss, f1 = next(script)
        return loss, f1, f1

    monkeypatch.setattr(_loop, "evaluate", fake)


def _train_scripted(fold0, cfg, mode="sensor"):
    torch.manual_seed(0)
    model = UnifiedAttentionModel(ModelConfig(), mode)
    snapshots = []
    outcome = train_fold(model, fold0["train"], fold0["val"], cfg, mode=mode, seed=0,
                         on_epoch=lambda stats, m: snapshots.append(
                             copy.deepcopy(m.state_dict())))
    return model, outcome, snapshots


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_best_epoch_weights_are_kept_not_the_last(fold0, monkeypatch):
    """A later, worse epoch must not leak into the kept weights (the pre-plan bug)."""
    _scripted(monkeypatch, [0.5, 0.9, 0.4, 0.3])
    cfg = TrainConfig(epochs=4, patience=10, lr=0.01, checkpoint_metric="val_f1")
    model, outcome, snaps = _train_scripted(fold0, cfg)
    assert len(snaps) == 4 and not _same(snaps[1], snaps[3])  # training did move the weights
    assert (outcome.kept_epoch, outcome.best_epoch) == (2, 2)
    assert _same(outcome.state_dict, snaps[1])
    assert _same(model.state_dict(), snaps[1])
    assert not _same(model.state_dict(), snaps[3])
    assert [s.best for s in outcome.history] == [False, True, False, False]


def test_legacy_last_checkpoint_keeps_the_last_epoch(fold0, monkeypatch):
    _scripted(monkeypatch, [0.5, 0.9, 0.4])
    cfg = TrainConfig(epochs=3, patience=10, lr=0.01, checkpoint="last",
                      checkpoint_metric="val_f1")
    model, outcome, snaps = _train_scripted(fold0, cfg)
    assert (outcome.kept_epoch, outcome.best_epoch) == (3, 2)
    assert _same(model.state_dict(), snaps[2])
    assert [s.best for s in outcome.history] == [False, False, True]


def test_f1_tie_goes_to_lower_val_loss(fold0, monkeypatch):
    _scripted(monkeypatch, [0.6, 0.6, 0.6], losses=[0.7, 0.5, 0.6])
    cfg = TrainConfig(epochs=3, patience=10, checkpoint_metric="val_f1")
    _, outcome, snaps = _train_scripted(fold0, cfg)
    assert outcome.kept_epoch == 2 and _same(outcome.state_dict, snaps[1])


def test_default_checkpoint_metric_is_val_loss_with_f1_breaking_ties(fold0, monkeypatch):
    """Lowest val loss wins even over a higher F1; equal losses go to the higher F1."""
    _scripted(monkeypatch, [0.9, 0.5, 0.6, 0.7], losses=[0.6, 0.4, 0.4, 0.5])
    model, outcome, snaps = _train_scripted(fold0, TrainConfig(epochs=4, patience=10, lr=0.01))
    assert TrainConfig().checkpoint_metric == "val_loss"
    assert (outcome.kept_epoch, outcome.best_epoch) == (3, 3)
    assert _same(outcome.state_dict, snaps[2]) and _same(model.state_dict(), snaps[2])
    assert not _same(model.state_dict(), snaps[3])


def test_patience_counts_the_checkpoint_metric(fold0, monkeypatch):
    _scripted(monkeypatch, [0.5, 0.9, 0.9, 0.9], losses=[0.5, 0.6, 0.7, 0.8])
    _, outcome, _ = _train_scripted(fold0, TrainConfig(epochs=4, patience=2))
    assert len(outcome.history) == 3 and outcome.stopped_early and outcome.kept_epoch == 1


def test_patience_stops_early(fold0, monkeypatch):
    _scripted(monkeypatch, [0.8, 0.1, 0.1, 0.1, 0.1])
    cfg = TrainConfig(epochs=5, patience=2, checkpoint_metric="val_f1")
    _, outcome, _ = _train_scripted(fold0, cfg)
    assert len(outcome.history) == 3 and outcome.stopped_early and outcome.kept_epoch == 1


def test_gate_hook_sees_sampled_batches(fold0):
    torch.manual_seed(0)
    model = UnifiedAttentionModel(ModelConfig(), "multimodal")
    calls = []
    cfg = TrainConfig(epochs=2, batch_size=2, gate_log_fraction=0.5)
    train_fold(model, fold0["train"], fold0["val"], cfg, mode="multimodal", seed=3,
               on_gate=lambda *a: calls.append(a))
    n_batches = -(-len(fold0["train"]) // 2)
    assert len(calls) == 2 * round(0.5 * n_batches)
    epoch, batch, rows, weights, quality, tau = calls[0]
    assert weights.shape == (len(rows), 2) and quality.shape == (len(rows), 5)
    assert torch.all(weights[:, 0] >= ModelConfig().min_sensor_weight - 1e-6)
    assert torch.all(tau >= 1.0)


def test_spec_augment_is_seeded_and_changes_training(fold0):
    def weights(augment):
        torch.manual_seed(0)
        model = UnifiedAttentionModel(ModelConfig(), "audio")
        train_fold(model, fold0["train"], fold0["val"], TrainConfig(epochs=1, batch_size=4),
                   mode="audio", seed=0, spec_augment=augment)
        return model.state_dict()

    a, b = (weights(TimeMaskAugment(40, 2, seed=5)) for _ in range(2))
    assert _same(a, b)
    assert not _same(a, weights(None))


def test_run_dir_names_are_unique(tmp_path):
    when = datetime.datetime(2025, 9, 25, 10, 52, 5)
    first, second = (create_run_dir(tmp_path, now=when) for _ in range(2))
    assert (first.name, second.name) == ("experiment_20250925_105205",
                                         "experiment_20250925_105205_2")


def test_batch_order_is_seeded_and_sampler_balances():
    labels = torch.tensor([0] * 90 + [1] * 10)
    def order(seed, how):
        return torch.cat(batch_order(labels, 16, class_balance=how,
                                     generator=torch.Generator().manual_seed(seed)))
    assert torch.equal(order(1, "none"), order(1, "none"))
    assert not torch.equal(order(1, "none"), order(2, "none"))
    assert sorted(order(1, "none").tolist()) == list(range(100))
    drawn = torch.cat([order(s, "sampler") for s in range(20)])
    assert 0.4 < labels[drawn].float().mean() < 0.6  # ~half pro despite 10% pro
    assert [len(b) for b in batch_order(labels, 16, class_balance="none",
                                        generator=torch.Generator())][-1] == 4


def test_class_weights_inverse_frequency():
    w = class_weights(torch.tensor([0, 0, 0, 1]))
    assert torch.allclose(w, torch.tensor([4 / 6, 4 / 2]))
    with pytest.raises(FeatureError, match="one class"):
        class_weights(torch.tensor([1, 1]))


def test_normalization_refuses_stats_of_another_feature_config(featured, fold0, tmp_path):
    store, splits, _ = featured
    paths = fit_fold_norm_stats(store, splits[splits.fold == 0], tmp_path)
    stats = NormStats.from_json(paths[0])
    corpus = load_corpus(store, store.sample_ids, features=FeatureConfig())
    labels = splits.drop_duplicates("sample_id").set_index("sample_id")["label"]
    other = dataclasses.replace(stats, feature_config_hash="0" * 64)
    with pytest.raises(FeatureError, match="feature config"):
        normalize_fold(corpus, other, labels, features=FeatureConfig())
    with pytest.raises(FeatureError, match="extracted with config"):
        load_corpus(store, store.sample_ids, features=FeatureConfig(silence_db=-40.0))
    # global normalization: valid frames ~N(0, 1) over the training takes, invalid ones 0
    train = fold0["train"]
    valid = train.logmel.transpose(1, 2)[train.audio_mask]
    assert abs(float(valid.mean())) < 0.05 and 0.9 < float(valid.std()) < 1.1
    assert float(train.logmel.transpose(1, 2)[~train.audio_mask].abs().sum()) == 0.0


def test_checkpoint_round_trip_and_tags(fold0, tmp_path):
    cfg = RunConfig(model=ModelConfig(hidden=16))
    torch.manual_seed(0)
    model = UnifiedAttentionModel(cfg.model, "multimodal").eval()
    path = save_checkpoint(tmp_path / "run" / "checkpoints" / "multimodal_fold0.safetensors",
                           model.state_dict(), config=cfg, mode="multimodal", fold=0,
                           metrics={"test_macro_f1": 0.5}, summary=model.summary())
    ckpt = load_checkpoint(path)
    assert (ckpt.mode, ckpt.fold, ckpt.config, ckpt.metrics) == ("multimodal", 0, cfg,
                                                                 {"test_macro_f1": 0.5})
    batch = fold0["test"].batch(torch.arange(2), "multimodal")
    with torch.no_grad():
        assert torch.equal(ckpt.build_model()(**batch).logits, model(**batch).logits)
    (tmp_path / "bad.safetensors").write_bytes(b"\x80\x04pickle")
    with pytest.raises(MalformedFileError):
        load_checkpoint(tmp_path / "bad.safetensors")
    registry = tmp_path / "registry.json"
    entry = register_tag(registry, "mm-audiofix", tmp_path / "run", mode="multimodal")
    assert entry.folds == (0,) and resolve_tag(registry, "mm-audiofix").files == entry.files
    with pytest.raises(ConfigError, match="already"):
        register_tag(registry, "mm-audiofix", tmp_path / "run", mode="multimodal")
    with pytest.raises(ConfigError, match="unknown tag"):
        resolve_tag(registry, "sensor-v1")
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(MalformedFileError, match="changed"):
        resolve_tag(registry, "mm-audiofix")


def test_same_seed_same_results(featured, tmp_path):
    """Two runs of one config and seed give identical predictions, epochs and weights."""
    store, splits, stats = featured
    cfg = RunConfig(train=TrainConfig(epochs=2, modes=("sensor", "multimodal")))
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        runs.append(run_cv(cfg, tmp_path / name, store=store, splits=splits, audio_stats=stats))
    a, b = (pd.read_parquet(r.run_dir / "predictions.parquet") for r in runs)
    pd.testing.assert_frame_equal(a, b)
    ea, eb = (pd.read_parquet(r.run_dir / "epochs.parquet").drop(columns="seconds")
              for r in runs)
    pd.testing.assert_frame_equal(ea, eb)
    for name in ("sensor_fold0", "multimodal_fold2"):
        wa, wb = (load_checkpoint(r.run_dir / "checkpoints" / f"{name}.safetensors").state_dict
                  for r in runs)
        assert _same(wa, wb)
    # a (mode, fold) does not depend on which other modes ran before it
    (tmp_path / "c").mkdir()
    only = run_cv(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train,
                                                                       modes=("multimodal",))),
                  tmp_path / "c", store=store, splits=splits, audio_stats=stats)
    c = pd.read_parquet(only.run_dir / "predictions.parquet")
    pd.testing.assert_frame_equal(a[a["mode"] == "multimodal"].reset_index(drop=True), c)
    assert np.isfinite(a["probability"]).all()
