"""The run folder a tiny cross-validation writes: every DESIGN.md section-3 file this layer
owns, declared Parquet schemas, complete_results.json, training.log references, shards,
checkpoints that reproduce the predictions, and the legacy profile's leak."""

from __future__ import annotations

import json
import re

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from profy.config import RunConfig, load_profile
from profy.contract.schemas import (
    AUDIO_STATS_SCHEMA,
    EPOCHS_SCHEMA,
    GATE_LOG_SCHEMA,
    MODALITY_WEIGHTS_SCHEMA,
    PREDICTIONS_SCHEMA,
    SPLITS_SCHEMA,
)
from profy.data import build_manifest, make_folds
from profy.evaluation import read_complete_results
from profy.features import FeatureStore, NormStats, compute_features, file_sha256
from profy.training import (
    collect_run,
    load_checkpoint,
    load_corpus,
    normalize_fold,
    resolve_device,
    run_cv,
)
from profy.training._data import FoldInputs

MODES = ("sensor", "audio", "multimodal")
N_FOLDS = 3
PARQUET = {"splits.parquet": SPLITS_SCHEMA, "audio_stats.parquet": AUDIO_STATS_SCHEMA,
           "predictions.parquet": PREDICTIONS_SCHEMA, "epochs.parquet": EPOCHS_SCHEMA,
           "modality_weights.parquet": MODALITY_WEIGHTS_SCHEMA,
           "gate_log.parquet": GATE_LOG_SCHEMA}


def _prepare(corpus, out, cfg: RunConfig):
    manifest = build_manifest(corpus)
    takes = manifest.table.select(["sample_id", "player_id", "piece", "label"]).to_pandas()
    splits = make_folds(takes, n_folds=cfg.train.n_folds, seed=cfg.train.seed)
    feats = compute_features(corpus, manifest.table, out / "features", cfg=cfg.features)
    return FeatureStore(feats.index_path), splits, feats.audio_stats_path


@pytest.fixture(scope="module")
def run(tiny_corpus_ro, tmp_path_factory):
    """mm-audiofix, 2 epochs, all three modes, on the tiny corpus."""
    cfg = load_profile("mm-audiofix", ["train.epochs=2"])
    out = tmp_path_factory.mktemp("run")
    store, splits, stats = _prepare(tiny_corpus_ro, out, cfg)
    (out / "experiment").mkdir()
    result = run_cv(cfg, out / "experiment", store=store, splits=splits, audio_stats=stats,
                    profile="mm-audiofix")
    return cfg, result, store, splits


def test_every_section3_file_of_this_layer_exists(run):
    cfg, result, _, _ = run
    d = result.run_dir
    names = ["config.yaml", "config_hash", "training.log", "complete_results.json",
             "model_summary.json", *PARQUET]
    names += [f"norm_stats/fold_{k}.json" for k in range(N_FOLDS)]
    for mode in MODES:
        for k in range(N_FOLDS):
            names += [f"checkpoints/{mode}_fold{k}.safetensors",
                      f"confusion/{mode}_fold{k}.json", f"confusion/{mode}_fold{k}.csv",
                      f"folds/{mode}_fold{k}/result.json"]
    missing = [n for n in names if not (d / n).is_file()]
    assert not missing, missing
    assert (d / "config_hash").read_text().strip() == result.results["run"]["config_hash"]
    assert load_profile(d / "config.yaml") == cfg  # the saved config loads back equal
    assert not list(d.rglob("*.tmp"))  # atomic writes leave no temp files
    assert set(json.loads((d / "model_summary.json").read_text())) == set(MODES)


@pytest.mark.parametrize("name", sorted(PARQUET))
def test_parquet_schema_equals_the_declared_one(run, name):
    table = pq.read_table(run[1].run_dir / name)
    assert table.schema.equals(PARQUET[name]), (table.schema, PARQUET[name])
    meta = table.schema.metadata or {}
    assert meta.get(b"profy_artifact") == PARQUET[name].metadata[b"profy_artifact"]
    assert table.num_rows > 0


def test_predictions_cover_each_take_once_per_mode(run):
    _, result, _, splits = run
    pred = pd.read_parquet(result.run_dir / "predictions.parquet")
    held = splits[splits.role == "test"].set_index("sample_id")
    for mode in MODES:
        part = pred[pred["mode"] == mode].set_index("sample_id")
        assert sorted(part.index) == sorted(held.index)
        assert (part["fold"] == held.loc[part.index, "fold"]).all()  # scored on its test fold
    assert pred["probability"].between(0, 1).all()
    assert ((pred["probability"] > 0.5) == (pred["prediction"] == 1)).all()
    weights = pd.read_parquet(result.run_dir / "modality_weights.parquet")
    assert sorted(weights["sample_id"]) == sorted(held.index)
    assert (weights["sensor_weight"] + weights["audio_weight"] - 1).abs().max() < 1e-6
    assert (weights["sensor_weight"] >= 0.35 - 1e-6).all()
    gate = pd.read_parquet(result.run_dir / "gate_log.parquet")
    assert set(gate["epoch"]) == {1, 2} and set(gate["fold"]) == set(range(N_FOLDS))


def test_complete_results_validate_and_match_the_table(run):
    _, result, _, _ = run
    obj = read_complete_results(result.run_dir / "complete_results.json")
    table = result.table().set_index("mode")
    for mode in MODES:
        assert obj["modes"][mode]["mean"]["macro_f1"] == pytest.approx(
            table.loc[mode, "macro_f1_mean"])
        assert obj["modes"][mode]["std"]["macro_f1"] == pytest.approx(
            table.loc[mode, "macro_f1_std"])
        for k in range(N_FOLDS):
            cm = json.loads((result.run_dir / f"confusion/{mode}_fold{k}.json").read_text())
            assert cm["matrix"] == obj["modes"][mode]["folds"][str(k)]["confusion_matrix"]
    assert obj["run"]["seed"] == 0 and obj["run"]["profile"] == "mm-audiofix"


def test_training_log_references_norm_stats_and_summarises_weights(run):
    _, result, _, splits = run
    log = (result.run_dir / "training.log").read_text()
    refs = re.findall(r"^NORM_REF fold=(\d+) path=(\S+) sha256=([0-9a-f]{64})", log, re.M)
    assert sorted(int(k) for k, _, _ in refs) == list(range(N_FOLDS))
    for k, path, digest in refs:
        assert path == f"norm_stats/fold_{k}.json"
        assert file_sha256(result.run_dir / path) == digest
    summary = re.findall(r"^MODALITY_WEIGHTS fold=(\w+) .*mean_sensor=\S+ .*"
                         r"frac_sensor_ge_0\.5=\S+", log, re.M)
    assert summary == [*map(str, range(N_FOLDS)), "all"]
    for prefix in ("RUN", "CONFIG", "GIT", "VERSIONS", "SEED", "DEVICE", "DATA", "SPLIT",
                   "AUDIO_STATS", "EPOCH", "GATE", "FOLD", "RESULT", "DONE"):
        assert re.search(rf"^{prefix} ", log, re.M), prefix
    assert re.search(r"^CONFIG hash=" + result.results["run"]["config_hash"], log, re.M)
    # train-only normalization: no fold's stats ever saw a held-out take
    for k in range(N_FOLDS):
        stats = NormStats.from_json(result.run_dir / f"norm_stats/fold_{k}.json")
        part = splits[splits.fold == k]
        assert set(stats.sample_ids) == set(part.loc[part.role == "train", "sample_id"])


def test_epoch_history_marks_the_best_val_epoch(run):
    epochs = pd.read_parquet(run[1].run_dir / "epochs.parquet")
    for (mode, fold), part in epochs.groupby(["mode", "fold"]):
        assert part["best"].sum() == 1, (mode, fold)
        kept = part[part["best"]].iloc[0]
        # the default checkpoint_metric: lowest val loss, ties to the higher val macro F1
        assert kept["val_loss"] == part["val_loss"].min()
        tied = part[part["val_loss"] == kept["val_loss"]]
        assert kept["val_macro_f1"] == tied["val_macro_f1"].max()
        result = json.loads((run[1].run_dir / f"folds/{mode}_fold{fold}/result.json").read_text())
        assert result["kept_epoch"] == kept["epoch"] == result["best_epoch"]


def test_checkpoints_reproduce_the_predictions(run):
    """The saved weights are the ones that made predictions.parquet (best, not last)."""
    cfg, result, store, splits = run
    pred = pd.read_parquet(result.run_dir / "predictions.parquet").set_index(
        ["mode", "sample_id"])
    corpus = load_corpus(store, sorted(splits.sample_id.unique()), features=cfg.features)
    labels = splits.drop_duplicates("sample_id").set_index("sample_id")["label"]
    fold = 1
    stats = NormStats.from_json(result.run_dir / f"norm_stats/fold_{fold}.json")
    inputs: FoldInputs = normalize_fold(corpus, stats, labels, features=cfg.features)
    test_ids = set(splits[(splits.fold == fold) & (splits.role == "test")].sample_id)
    test = inputs.subset([i for i, s in enumerate(inputs.sample_ids) if s in test_ids])
    device = resolve_device(cfg.train.device)  # the run's device: CUDA kernels (TF32
    test = test.to(device)                     # convolutions) round differently from CPU
    for mode in MODES:
        ckpt = load_checkpoint(result.run_dir / f"checkpoints/{mode}_fold{fold}.safetensors")
        assert ckpt.config == cfg and ckpt.summary["mode"] == mode
        with torch.no_grad():
            out = ckpt.build_model().to(device)(**test.batch(torch.arange(len(test)), mode))
        want = pred.loc[[(mode, s) for s in test.sample_ids], "probability"].to_numpy()
        assert out.probs[:, 1].double().cpu().numpy() == pytest.approx(
            want, abs=1e-5 if device.type == "cpu" else 2e-3)


def test_collect_rebuilds_the_same_merged_files(run, tmp_path):
    cfg, result, _, _ = run
    before = {n: pd.read_parquet(result.run_dir / n) for n in PARQUET}
    obj = collect_run(result.run_dir, modes=cfg.train.modes, n_folds=N_FOLDS,
                      run_meta=result.results["run"])
    assert obj["modes"] == result.results["modes"]
    for name, frame in before.items():
        pd.testing.assert_frame_equal(pd.read_parquet(result.run_dir / name), frame)


def test_legacy_profile_runs_and_leaks_held_out_takes(tiny_corpus_ro, tmp_path):
    cfg = load_profile("legacy-20250925", ["train.epochs=2", "train.modes=[multimodal]"])
    store, splits, stats = _prepare(tiny_corpus_ro, tmp_path, cfg)
    (tmp_path / "legacy").mkdir()
    result = run_cv(cfg, tmp_path / "legacy", store=store, splits=splits, audio_stats=stats)
    for k in range(N_FOLDS):
        fitted = set(NormStats.from_json(result.run_dir / f"norm_stats/fold_{k}.json")
                     .sample_ids)
        held = set(splits[(splits.fold == k) & (splits.role == "test")].sample_id)
        assert held <= fitted  # the pre-plan leak, reproduced on purpose
    epochs = pd.read_parquet(result.run_dir / "epochs.parquet")
    last = epochs.sort_values("epoch").groupby("fold")["best"].last()
    assert last.all() and epochs["best"].sum() == N_FOLDS  # legacy keeps the LAST epoch
    log = (result.run_dir / "training.log").read_text()
    assert re.search(r"^WARNING what=\"LEGACY normalization fitted on all takes", log, re.M)
    summary = json.loads((result.run_dir / "model_summary.json").read_text())["multimodal"]
    assert summary["audio_channels_reaching_encoder"] == 64 and not summary["use_masks"]
