"""``featurize_corpus`` (what ``profy features ROOT`` runs): the manifest's checks and the
features in one pass, each file parsed once, with the same tables, keys and errors as
``build_manifest`` followed by ``compute_features``."""

import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from broken_inputs import DEFECTS

import profy.data._manifest as manifest_mod
from profy.data import build_manifest
from profy.errors import DataError
from profy.features import compute_features, featurize_corpus
from profy.features._cache import HASH_MEMO_FILE, HashMemo, file_sha256


def _index_without_cache_dir(path):
    table = pq.read_table(path)
    meta = {k: v for k, v in table.schema.metadata.items() if k != b"cache_dir"}
    return table.replace_schema_metadata(meta)


@pytest.mark.parametrize("workers", [1, 2])
def test_one_pass_gives_the_two_step_tables_and_keys(tiny_corpus_ro, tmp_path, workers):
    two_step = build_manifest(tiny_corpus_ro)
    before = compute_features(tiny_corpus_ro, two_step.table, tmp_path / "a",
                              cache_dir=tmp_path / "ca")
    manifest, run = featurize_corpus(tiny_corpus_ro, tmp_path / "b", cache_dir=tmp_path / "cb",
                                     workers=workers)
    assert manifest.table.equals(two_step.table)
    assert pq.read_table(run.audio_stats_path).equals(pq.read_table(before.audio_stats_path),
                                                      check_metadata=True)
    assert _index_without_cache_dir(run.index_path).equals(
        _index_without_cache_dir(before.index_path), check_metadata=True)
    assert (run.cache.hits, run.cache.misses) == (0, run.n_takes)


def test_each_file_is_parsed_once_cold_and_not_at_all_when_unchanged(tiny_corpus_ro, tmp_path,
                                                                     monkeypatch):
    calls = {"audio": 0, "sensor": 0}

    def counting(name, real):
        def wrapper(path, *args, **kwargs):
            calls[name] += 1
            return real(path, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(manifest_mod, "read_audio", counting("audio", manifest_mod.read_audio))
    monkeypatch.setattr(manifest_mod, "read_sensor", counting("sensor", manifest_mod.read_sensor))
    kwargs = {"cache_dir": tmp_path / "c", "workers": 1}  # in this process: calls are seen
    _, cold = featurize_corpus(tiny_corpus_ro, tmp_path / "o", **kwargs)
    assert calls == {"audio": cold.n_takes, "sensor": cold.n_takes}
    _, warm = featurize_corpus(tiny_corpus_ro, tmp_path / "o", **kwargs)
    assert calls == {"audio": cold.n_takes, "sensor": cold.n_takes}  # nothing read again
    assert (warm.cache.hits, warm.cache.misses) == (cold.n_takes, 0)
    # the hashes the workers computed are the files' own, remembered for the next run
    memo = HashMemo(tmp_path / "c" / HASH_MEMO_FILE)
    wav = next((tiny_corpus_ro / "playdata").glob("*/files/sound/sound_raw.wav"))
    assert memo._data[str(wav.resolve())][3] == file_sha256(wav)


def test_skip_bad_quarantines_as_build_manifest_does(tiny_corpus, tmp_path):
    first = build_manifest(tiny_corpus).table["sample_id"][0].as_py()
    DEFECTS["csv_nan"].apply(tiny_corpus / "playdata" / first)
    expected = build_manifest(tiny_corpus, skip_bad=True)
    manifest, run = featurize_corpus(tiny_corpus, tmp_path / "o", skip_bad=True, workers=2)
    assert manifest.table.equals(expected.table)
    assert manifest.quarantined == expected.quarantined
    stats = pq.read_table(run.audio_stats_path).column("sample_id").to_pylist()
    assert first not in stats and stats == manifest.table.column("sample_id").to_pylist()


def test_cli_bad_take_two_workers_same_error_and_good_takes_kept(tiny_corpus, tmp_path):
    """As a user types it (fresh process, no TTY, 80 columns, --workers 2): a broken take
    stops the command with build_manifest's one-line error naming it in full; the good
    takes' features are cached, so the rerun after the fix computes only that take."""
    take = tiny_corpus / "playdata" / build_manifest(tiny_corpus).table["sample_id"][1].as_py()
    good_csv = (take / "files/hackkey/hackkey.csv").read_bytes()
    path = DEFECTS["csv_nan"].apply(take)
    with pytest.raises(DataError) as expected:
        build_manifest(tiny_corpus)
    cmd = [sys.executable, "-m", "profy.cli", "features", str(tiny_corpus), "--out",
           str(tmp_path / "o"), "--cache", str(tmp_path / "c"), "--workers", "2"]
    env = {**os.environ, "COLUMNS": "80"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"profy: error: {expected.value}"]
    assert str(path) in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o" / "audio_stats.parquet").exists()
    path.write_bytes(good_csv)  # the fix (a new mtime: the take is read again)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    n = build_manifest(tiny_corpus).table.num_rows
    assert f"cache: {n - 1} hits, 1 misses" in proc.stdout.replace("\n", " ")


def test_hash_memo_records_a_digest_only_for_an_unchanged_file(tmp_path):
    file = tmp_path / "f.bin"
    file.write_bytes(b"one")
    st = os.stat(file)
    stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
    memo = HashMemo(tmp_path / "m.json")
    memo.record(file, "digest-one", stamp)
    assert memo.sha256(file) == "digest-one"  # trusted: same size, mtime and inode
    file.write_bytes(b"two!")
    other = HashMemo(tmp_path / "n.json")
    other.record(file, "stale", stamp)  # the file changed after the stamp: not recorded
    assert other.sha256(file) == file_sha256(file)
