"""Feature cache: identical arrays back, tampering and truncation detected, concurrency-safe."""

import multiprocessing as mp

import numpy as np
import pytest

from profy.features._cache import FeatureCache, cache_key, file_sha256


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {"logmel": rng.standard_normal((128, 50)).astype(np.float32),
            "audio_mask": rng.random(50) > 0.3,
            "quality": rng.standard_normal(5).astype(np.float32)}


def test_round_trip_is_bit_identical(tmp_path):
    cache = FeatureCache(tmp_path)
    key = cache_key("a" * 64, "b" * 64, "c" * 64)
    arrays = _arrays()
    cache.put(key, arrays, meta={"audio_sha256": "a" * 64})
    back = cache.get(key, meta={"audio_sha256": "a" * 64})
    assert back is not None and set(back) == set(arrays)
    for name in arrays:
        assert back[name].dtype == arrays[name].dtype
        assert back[name].tobytes() == arrays[name].tobytes()
    assert cache.stats.hits == 1


def test_key_depends_on_every_input():
    base = cache_key("a", "b", "c")
    assert len({base, cache_key("x", "b", "c"), cache_key("a", "x", "c"),
                cache_key("a", "b", "x")}) == 4


def test_miss_then_hit(tmp_path):
    cache = FeatureCache(tmp_path)
    assert cache.get("0" * 64) is None and cache.stats.misses == 1


@pytest.mark.parametrize("damage", ["truncate", "flip_payload", "garbage", "empty"])
def test_damaged_entry_is_rejected(tmp_path, damage):
    cache = FeatureCache(tmp_path)
    key = cache_key("a", "b", "c")
    path = cache.put(key, _arrays())
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "flip_payload":
        data[-5] ^= 0xFF  # inside the last tensor's bytes: header still parses
        path.write_bytes(bytes(data))
    elif damage == "garbage":
        path.write_bytes(b"not a safetensors file at all")
    else:
        path.write_bytes(b"")
    assert cache.get(key) is None
    assert cache.stats.rejected == 1


def test_entry_under_wrong_key_or_meta_is_rejected(tmp_path):
    cache = FeatureCache(tmp_path)
    k1, k2 = cache_key("a", "b", "c"), cache_key("a", "b", "d")
    cache.put(k1, _arrays(), meta={"feature_config_hash": "c"})
    cache.path_for(k2).parent.mkdir(parents=True, exist_ok=True)
    cache.path_for(k2).write_bytes(cache.path_for(k1).read_bytes())  # stale copy under new key
    assert cache.get(k2) is None
    assert cache.get(k1, meta={"feature_config_hash": "other"}) is None


def _fill(args):
    root, seed = args
    cache = FeatureCache(root)
    for i in range(20):
        cache.put(cache_key(str(i), "s", "c"), _arrays(i))
    return seed


def test_two_processes_filling_one_cache(tmp_path):
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_fill, [(tmp_path, 0), (tmp_path, 1)])
    cache = FeatureCache(tmp_path)
    for i in range(20):
        back = cache.get(cache_key(str(i), "s", "c"))
        assert back is not None and np.array_equal(back["logmel"], _arrays(i)["logmel"])
    assert not list(tmp_path.rglob("*.tmp"))


def test_file_sha256(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"abc")
    assert file_sha256(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_hash_memo_reuses_and_notices_changes(tmp_path):
    import os

    from profy.features._cache import HashMemo

    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    memo = HashMemo(tmp_path / "memo.json")
    first = memo.sha256(f)
    memo.save()
    again = HashMemo(tmp_path / "memo.json")
    assert again.sha256(f) == first and not again._dirty  # served from the memo
    f.write_bytes(b"abd")  # same size; a new mtime
    st = os.stat(f)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert again.sha256(f) == file_sha256(f) != first


def test_damaged_memo_is_ignored(tmp_path):
    from profy.features._cache import HashMemo

    (tmp_path / "memo.json").write_text("{not json")
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    assert HashMemo(tmp_path / "memo.json").sha256(f) == file_sha256(f)
