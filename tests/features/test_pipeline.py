"""``compute_features`` over a real (tiny) corpus: the plan's regression test, the cache,
broken inputs, and per-fold normalization that never sees held-out takes."""

import json
import os
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from broken_inputs import DEFECTS

from profy.cli import main
from profy.config import FeatureConfig
from profy.contract.schemas import AUDIO_STATS_SCHEMA
from profy.data import build_manifest, make_folds, write_manifest
from profy.errors import DataError, LeakageError
from profy.features import FeatureStore, NormStats, compute_features, fit_fold_norm_stats


@pytest.fixture(scope="module")
def featured(tiny_corpus_ro, tmp_path_factory):
    """Features of the tiny corpus, computed once for the module."""
    out = tmp_path_factory.mktemp("features")
    manifest = build_manifest(tiny_corpus_ro)
    run = compute_features(tiny_corpus_ro, manifest.table, out)
    return manifest, run


def test_every_take_keeps_120_nonzero_frames(featured):
    """The improvement plan's Phase 1 regression test, on every synthetic take."""
    manifest, run = featured
    stats = pq.read_table(run.audio_stats_path)
    assert stats.schema.equals(AUDIO_STATS_SCHEMA, check_metadata=False)
    assert stats.num_rows == manifest.table.num_rows == run.n_takes
    rows = stats.to_pylist()
    assert all(r["nonzero_frames"] >= 120 for r in rows), [
        (r["sample_id"], r["nonzero_frames"]) for r in rows if r["nonzero_frames"] < 120]
    assert all(r["finite"] for r in rows)
    assert all(r["valid_frames"] <= r["audio_frames"] <= r["frames"] for r in rows)


def test_cached_rerun_is_bit_identical_and_all_hits(featured, tmp_path):
    manifest, run = featured
    first = FeatureStore(run.index_path)
    again = compute_features(manifest.root, manifest.table, tmp_path, cache_dir=run.cache_dir)
    assert (again.cache.hits, again.cache.misses, again.cache.rejected) == (run.n_takes, 0, 0)
    second = FeatureStore(again.index_path)
    for sid in first.sample_ids:
        a, b = first[sid], second[sid]
        assert all(a[k].tobytes() == b[k].tobytes() for k in a)


def test_tampered_entry_is_recomputed_not_used(featured, tmp_path):
    manifest, run = featured
    cache = tmp_path / "cache"
    shutil.copytree(run.cache_dir, cache)
    victim = sorted(cache.rglob("*.safetensors"))[0]
    data = bytearray(victim.read_bytes())
    data[-3] ^= 0x55
    victim.write_bytes(bytes(data))
    rerun = compute_features(manifest.root, manifest.table, tmp_path / "out", cache_dir=cache)
    assert (rerun.cache.rejected, rerun.cache.misses) == (1, 0)
    assert victim.read_bytes() != bytes(data)  # rewritten with the right content
    fresh, orig = FeatureStore(rerun.index_path), FeatureStore(run.index_path)
    assert all(fresh[s]["logmel"].tobytes() == orig[s]["logmel"].tobytes()
               for s in orig.sample_ids)


def test_feature_config_change_misses(featured, tmp_path):
    manifest, run = featured
    cfg = FeatureConfig(silence_db=-40.0)
    rerun = compute_features(manifest.root, manifest.table.slice(0, 2), tmp_path, cfg=cfg,
                             cache_dir=run.cache_dir)
    assert (rerun.cache.hits, rerun.cache.misses) == (0, 2)


def test_two_workers_match_one(featured, tmp_path):
    manifest, run = featured
    table = manifest.table.slice(0, 4)
    two = compute_features(manifest.root, table, tmp_path, cache_dir=tmp_path / "c2", workers=2)
    a, b = FeatureStore(run.index_path), FeatureStore(two.index_path)
    for sid in b.sample_ids:
        assert all(np.array_equal(a[sid][k], b[sid][k]) for k in a[sid])


def test_mostly_silent_take_is_flagged_by_its_mask(featured, tmp_path):
    manifest, _ = featured
    root = tmp_path / "corpus"
    shutil.copytree(manifest.root, root)
    sid = manifest.table["sample_id"][0].as_py()
    wav = root / manifest.table["audio_path"][0].as_py()
    sr = 44_100
    t = np.arange(9 * sr) / sr
    tone = np.where(t < 1.0, 0.3 * np.sin(2 * np.pi * 440 * t), 0.0).astype(np.float32)
    sf.write(wav, np.stack([tone, tone], 1), sr, subtype="FLOAT", format="WAVEX")
    table = build_manifest(root).table
    run = compute_features(root, table, tmp_path / "out")
    row = next(r for r in pq.read_table(run.audio_stats_path).to_pylist()
               if r["sample_id"] == sid)
    assert row["valid_frames"] < 70 and row["nonzero_frames"] < 120
    assert row["nonsilent_ratio"] < 0.15
    assert row["audio_frames"] > 400  # the silence is real audio, masked, not padding


@pytest.mark.parametrize("workers", [1, 2])  # in-process and the worker pool users get
@pytest.mark.parametrize("defect", DEFECTS.values(), ids=DEFECTS.keys())
def test_broken_inputs_give_clear_errors(featured, tmp_path, defect, workers):
    manifest, _ = featured
    root = tmp_path / "corpus"
    shutil.copytree(manifest.root, root)
    three = manifest.table.slice(0, 3)  # the middle take is broken: the pool is busy by then
    take = root / "playdata" / three["sample_id"][1].as_py()
    path = defect.apply(take)
    with pytest.raises(DataError) as info:
        compute_features(root, three, tmp_path / "out", cache_dir=tmp_path / "c", workers=workers)
    assert str(info.value).startswith(f"{path}: ")  # the file, then the problem
    assert defect.words in str(info.value)
    assert not (tmp_path / "out" / "audio_stats.parquet").exists()


@pytest.mark.parametrize("name", ["8bit", "one_sample", "nan_audio", "csv_nan"])
def test_cli_features_two_workers_one_line_exit_2(tiny_corpus, tmp_path, name):
    """The crash users hit: a worker's error used not to unpickle (BrokenProcessPool).

    The manifest is built first (as `profy data prepare` does) so the bad file reaches
    the worker pool; a fresh process, as a user types the command, no TTY, 80 columns.
    """
    import subprocess
    import sys

    manifest = build_manifest(tiny_corpus)
    manifest_path = write_manifest(manifest, tmp_path / "manifest.parquet")
    path = DEFECTS[name].apply(tiny_corpus / "playdata" / manifest.table["sample_id"][1].as_py())
    proc = subprocess.run(
        [sys.executable, "-m", "profy.cli", "features", str(tiny_corpus), "--out",
         str(tmp_path / "o"), "--workers", "2", "--manifest", str(manifest_path)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "80"})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(f"profy: error: {path}: "), proc.stderr
    assert DEFECTS[name].words in lines[0] and "Traceback" not in proc.stderr


def test_cli_features_reports_throughput_and_paths(tiny_corpus_ro, tmp_path, capsys):
    assert main(["features", str(tiny_corpus_ro), "--out", str(tmp_path), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "takes/s" in out and "audio per second" in out
    assert str(tmp_path / "audio_stats.parquet") in out


def test_cli_features_broken_wav_is_exit_2(tiny_corpus, tmp_path, capsys):
    wav = tiny_corpus / build_manifest(tiny_corpus).table["audio_path"][0].as_py()
    DEFECTS["8bit"].write(wav)
    assert main(["features", str(tiny_corpus), "--out", str(tmp_path / "o"),
                 "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert wav.parent.parent.parent.name in err and "8-bit" in err


def test_fold_norm_fits_on_train_takes_only(featured, tmp_path):
    manifest, run = featured
    takes = manifest.table.select(["sample_id", "player_id", "piece", "label"]).to_pandas()
    splits = make_folds(takes, n_folds=3, seed=0)
    store = FeatureStore(run.index_path)
    paths = fit_fold_norm_stats(store, splits, tmp_path)
    assert sorted(paths) == [0, 1, 2]
    for fold, path in paths.items():
        stats = NormStats.from_json(path)
        part = splits[splits.fold == fold]
        assert list(stats.sample_ids) == sorted(part[part.role == "train"].sample_id)
        assert not set(stats.sample_ids) & set(part[part.role != "train"].sample_id)
        assert stats.feature_config_hash == store.feature_config_hash


def test_legacy_fit_on_all_takes_is_caught(featured, tmp_path):
    manifest, run = featured
    takes = manifest.table.select(["sample_id", "player_id", "piece", "label"]).to_pandas()
    splits = make_folds(takes, n_folds=3, seed=0)
    paths = fit_fold_norm_stats(FeatureStore(run.index_path), splits, tmp_path, all_takes=True)
    stats = NormStats.from_json(paths[0])
    part = splits[splits.fold == 0]
    with pytest.raises(LeakageError, match="held-out"):
        stats.check_fitted_on(part[part.role == "train"].sample_id,
                              held_out=part[part.role != "train"].sample_id)


def _restamped(path, created_at="2000-01-01T00:00:00+00:00") -> bytes:
    """The artifact at ``path`` as another job's fit of the same takes would write it."""
    data = json.loads(path.read_text())
    data["created_at"] = created_at
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _splits(manifest):
    takes = manifest.table.select(["sample_id", "player_id", "piece", "label"]).to_pandas()
    return make_folds(takes, n_folds=3, seed=0)


def test_shared_folder_keeps_the_first_published_norm_stats(featured, tmp_path):
    manifest, run = featured
    splits, store = _splits(manifest), FeatureStore(run.index_path)
    paths = fit_fold_norm_stats(store, splits, tmp_path, keep_existing=True)
    theirs = {k: _restamped(p) for k, p in paths.items()}  # another job published first
    for k, p in paths.items():
        p.write_bytes(theirs[k])
    assert fit_fold_norm_stats(store, splits, tmp_path, keep_existing=True) == paths
    assert {k: p.read_bytes() for k, p in paths.items()} == theirs  # kept, so its logged
    fit_fold_norm_stats(store, splits, tmp_path)  # sha256 still holds; a plain fit replaces
    assert all(p.read_bytes() != theirs[k] for k, p in paths.items())


def test_a_job_that_loses_the_publish_race_uses_the_winners_stats(featured, tmp_path,
                                                                   monkeypatch):
    import profy.features._fold_norm as fold_norm

    manifest, run = featured
    splits, store = _splits(manifest), FeatureStore(run.index_path)
    winner = {k: _restamped(p) for k, p in fit_fold_norm_stats(store, splits, tmp_path / "w")
              .items()}
    real = fold_norm.atomic_create_bytes

    def racing(path, data):  # the other job's link lands between our fit and ours
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(winner[int(path.stem.split("_")[1])])
        return real(path, data)

    monkeypatch.setattr(fold_norm, "atomic_create_bytes", racing)
    paths = fit_fold_norm_stats(store, splits, tmp_path / "run", keep_existing=True)
    assert {k: p.read_bytes() for k, p in paths.items()} == winner
    assert not [p for p in (tmp_path / "run").rglob("*") if p.name.startswith(".")]


def test_shared_folder_refuses_norm_stats_fitted_on_other_takes(featured, tmp_path):
    manifest, run = featured
    splits, store = _splits(manifest), FeatureStore(run.index_path)
    paths = fit_fold_norm_stats(store, splits, tmp_path, keep_existing=True)
    paths[0].write_bytes(paths[1].read_bytes())  # fold 1's stats under fold 0's name
    with pytest.raises(LeakageError, match="fold 1"):
        fit_fold_norm_stats(store, splits, tmp_path, keep_existing=True)


def test_changed_input_file_recomputes_only_that_take(featured, tmp_path):
    manifest, run = featured
    root = tmp_path / "corpus"
    shutil.copytree(manifest.root, root)
    cache = tmp_path / "cache"
    shutil.copytree(run.cache_dir, cache)
    csv_path = root / manifest.table["sensor_path"][1].as_py()
    lines = csv_path.read_text().splitlines()
    cells = lines[5].split(",")
    cells[-1] = "0.01234"  # one key cell of one row changes (not the timestamp)
    lines[5] = ",".join(cells)
    csv_path.write_text("\n".join(lines) + "\n")
    rerun = compute_features(root, manifest.table, tmp_path / "out", cache_dir=cache)
    assert (rerun.cache.hits, rerun.cache.misses) == (run.n_takes - 1, 1)


def test_a_fully_cached_corpus_loads_no_torch(tmp_path, tiny_corpus_ro):
    """``profy features`` on a corpus whose every take is cached reads the cache only: the
    process never imports torch (its import is ~1.4 s of a ~3 s cached run)."""
    import subprocess
    import sys
    import textwrap

    out, cache = tmp_path / "out", tmp_path / "cache"
    args = [str(tiny_corpus_ro), "--out", str(out), "--cache", str(cache), "--workers", "1"]
    code = textwrap.dedent(f"""
        import sys
        from profy.cli import main
        assert main(["features", *{args!r}]) == 0
        print("TORCH", "torch" in sys.modules)
    """)
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr
    assert "TORCH True" in runs[0].stdout  # the cold run computed features
    assert "TORCH False" in runs[1].stdout, runs[1].stdout
