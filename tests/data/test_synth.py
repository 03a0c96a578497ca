"""Synthetic corpus: determinism, the real layout and formats, and real pro/amateur cues."""

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from profy.contract.schemas import LABEL_COLUMNS, PIECES, piece_kind
from profy.data._synth import SIZES, SynthConfig, synthesize_corpus
from profy.errors import ConfigError

HEX24 = re.compile(r"[0-9a-f]{24}")
# Two players, one take each (+1 untagged): the cheapest corpus that has every part.
MINI = replace(SIZES["tiny"], n_players=2, takes_per_player=(1, 1))


def _labels(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "labels.csv", dtype=str, keep_default_na=False)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree_digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _sensor(take: Path) -> np.ndarray:
    return pd.read_csv(take / "files" / "hackkey" / "hackkey.csv", header=None).to_numpy()


def _fmt_chunk(path: Path) -> bytes:
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    pos = 12
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos + 4:pos + 8], "little")
        if data[pos:pos + 4] == b"fmt ":
            return data[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    raise AssertionError(f"{path}: no fmt chunk")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return synthesize_corpus(tmp_path_factory.mktemp("tiny") / "corpus", size="tiny", seed=0)


# ------------------------------------------------------------------ determinism


def test_same_seed_same_bytes_any_workers_and_new_seed_differs(tmp_path):
    a = synthesize_corpus(tmp_path / "a", config=MINI, seed=5, workers=1).out_dir
    b = synthesize_corpus(tmp_path / "b", config=MINI, seed=5, workers=2).out_dir
    c = synthesize_corpus(tmp_path / "c", config=MINI, seed=6, workers=1).out_dir
    da, db, dc = _tree_digests(a), _tree_digests(b), _tree_digests(c)
    assert da == db  # labels.csv, every hackkey.csv, WAV and meta.json
    assert any(k.endswith("hackkey.csv") for k in da) and any(k.endswith(".wav") for k in da)
    assert da["labels.csv"] != dc["labels.csv"]
    first_c = sorted((c / "playdata").iterdir())[0]
    csv_c = _digest(first_c / "files" / "hackkey" / "hackkey.csv")
    wav_c = _digest(first_c / "files" / "sound" / "sound_raw.wav")
    assert csv_c not in da.values() and wav_c not in da.values()


# ------------------------------------------------------------- layout and formats


def test_layout_every_take_has_its_files_and_meta(tiny):
    root = tiny.out_dir
    takes = sorted((root / "playdata").iterdir())
    labels = _labels(root)
    assert {t.name for t in takes} == set(labels.playdata_id)
    assert tiny.n_takes == len(takes) and tiny.n_label_rows == len(labels)
    assert tiny.n_players == labels.player_id.nunique()
    sizes = sum(p.stat().st_size for p in (root / "playdata").rglob("*") if p.is_file())
    assert tiny.bytes_written == sizes + (root / "labels.csv").stat().st_size + \
        (root / "planted_defects.csv").stat().st_size
    for take in takes:
        assert (take / "files" / "hackkey" / "hackkey.csv").is_file()
        assert (take / "files" / "sound" / "sound_raw.wav").is_file()
        meta = json.loads((take / "meta.json").read_text())
        assert meta["playdata_id"] == take.name and meta["synthetic"] is True
        assert meta["piece"] in PIECES and HEX24.fullmatch(meta["player_id"])
        assert meta["created_at"].endswith("Z")
    assert not list(root.rglob("*.tmp"))  # atomic writes left no temporaries


def test_wav_is_stereo_float32_wave_format_extensible(tiny):
    for wav in (tiny.out_dir / "playdata").glob("*/files/sound/sound_raw.wav"):
        info = sf.info(wav)
        assert (info.format, info.subtype, info.channels, info.samplerate) == (
            "WAVEX", "FLOAT", 2, 44100)
        fmt = _fmt_chunk(wav)
        tag, channels, rate = int.from_bytes(fmt[0:2], "little"), fmt[2], int.from_bytes(
            fmt[4:8], "little")
        assert tag == 0xFFFE and channels == 2 and rate == 44100
        assert int.from_bytes(fmt[14:16], "little") == 32  # bits per sample
        assert int.from_bytes(fmt[24:26], "little") == 3  # sub-format GUID: IEEE float
        audio, _ = sf.read(wav, dtype="float32")
        assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
        assert 2.0 <= len(audio) / 44100 <= 16.0


def test_recording_defects_are_present(tiny):
    peaks, zeros, seconds = [], [], []
    for wav in (tiny.out_dir / "playdata").glob("*/files/sound/sound_raw.wav"):
        audio, sr = sf.read(wav, dtype="float32")
        peaks.append(np.abs(audio).max())
        zeros.append(np.mean(audio[:, 0] == 0.0))
        seconds.append(len(audio) / sr)
    assert max(peaks) == 1.0  # a take driven into clipping
    assert sorted(zeros)[-2] > 0.1  # digital silence: a zero-filled short take, a padded lead-in
    assert min(seconds) < 5.0 < max(seconds)  # a truncated short file among normal ones


def test_hackkey_is_headerless_89_columns_at_1khz(tiny):
    for take in (tiny.out_dir / "playdata").iterdir():
        first = (take / "files" / "hackkey" / "hackkey.csv").open().readline()
        assert len(first.split(",")) == 89
        float(first.split(",")[0])  # a number, not a header
        x = _sensor(take)
        assert x.shape[1] == 89 and 6000 <= len(x) <= 16000
        t = x[:, 0]
        assert t[0] >= 0.0 and t[0] < 0.01 and (np.diff(t) > 0).all()
        rate = (len(t) - 1) / (t[-1] - t[0])
        assert abs(rate - 1000.0) < 50.0
        keys = x[:, 1:]
        assert -0.1 < keys.min() < -0.06 and keys.max() < 0.06  # some key was pressed


def test_labels_file_like_the_real_one(tiny):
    root = tiny.out_dir
    assert (root / "labels.csv").read_text().splitlines()[0] == ",".join(LABEL_COLUMNS)
    labels = _labels(root)
    for col in ("user_id", "playdata_id", "player_id"):
        assert labels[col].map(lambda v: bool(HEX24.fullmatch(v))).all(), col
    per_take = labels.groupby("playdata_id")
    assert (per_take.size() >= 3).all() and per_take.size().mean() > 3
    assert (per_take[["player_id", "piecetask_name", "player_tag"]].nunique() == 1).all().all()
    assert not labels.duplicated(["playdata_id", "user_id"]).any()  # a rater answers once
    assert set(labels.player_tag) == {"pro", "amateur", ""}
    assert tiny.n_untagged_rows == (labels.player_tag == "").sum() > 0
    assert set(labels.piecetask_name) <= set(PIECES)
    assert {piece_kind(p) for p in labels.piecetask_name} == {"scale", "arpeggio"}
    scores = labels[["score1", "score2"]].astype(int)
    assert scores.min().min() >= 1 and scores.max().max() <= 7
    assert set(labels.is_answered) == {"True"}
    pd.to_datetime(labels.updated_at)  # ISO timestamps
    # rows are shuffled, not grouped by take
    assert (labels.playdata_id != labels.playdata_id.shift()).mean() > 0.5


# ---------------------------------------------------------------- cue structure


def _legato_overlap(keys: np.ndarray, t: np.ndarray) -> float:
    """Median time a key stays down after the next note's key goes down (one hand)."""
    notes = []
    pressed = keys < -0.035
    for k in np.flatnonzero(pressed.any(axis=0)):
        edges = np.diff(pressed[:, k].astype(np.int8), prepend=0, append=0)
        notes += [(t[a], t[min(b, len(t) - 1)]) for a, b in zip(
            np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]
    notes.sort()
    return float(np.median([off - nxt for (_, off), (nxt, _) in zip(notes, notes[1:])]))


def _audio_stats(wav: Path) -> tuple[float, float]:
    """RMS level (dBFS) of the louder half of 2048-sample frames, and their >4 kHz share."""
    y, sr = sf.read(wav, dtype="float64")
    mono = y.mean(axis=1)
    frames = mono[: len(mono) // 2048 * 2048].reshape(-1, 2048)
    power = np.abs(np.fft.rfft(frames * np.hanning(2048), axis=1)) ** 2
    energy = power.sum(axis=1)
    loud = energy >= np.median(energy)
    high = power[:, np.fft.rfftfreq(2048, 1 / sr) > 4000].sum(axis=1)
    return 10 * np.log10(np.mean(frames[loud] ** 2)), high[loud].sum() / energy[loud].sum()


def test_pro_and_amateur_differ_in_the_intended_direction(tmp_path):
    # Default difficulty knobs; only the recording defects are switched off.
    cfg = SynthConfig(n_players=16, takes_per_player=(2, 2), duration_s=(6.0, 7.0),
                      untagged_fraction=0.0, ratings_per_take=(3, 3), hands_together_fraction=0,
                      silence_fraction=0, short_fraction=0, clip_fraction=0, noisy_fraction=0)
    root = synthesize_corpus(tmp_path / "cues", config=cfg, seed=0, workers=2).out_dir
    tags = _labels(root).drop_duplicates("playdata_id").set_index("playdata_id").player_tag
    rows = []
    for take in (root / "playdata").iterdir():
        x = _sensor(take)
        rms, high = _audio_stats(take / "files" / "sound" / "sound_raw.wav")
        depth = np.median(x[:, 1:][x[:, 1:] < -0.035])  # held depth (median: wobble-proof)
        rows.append({"tag": tags[take.name], "overlap": _legato_overlap(x[:, 1:], x[:, 0]),
                     "rms_db": rms, "high": np.log10(high), "depth": depth})
    means = pd.DataFrame(rows).groupby("tag").mean()
    pro, am = means.loc["pro"], means.loc["amateur"]
    assert pro.overlap > am.overlap + 0.01  # sensor: pros hold keys into the next note
    assert pro.rms_db > am.rms_db + 0.5  # audio: pros play louder ...
    assert pro.high > am.high + 0.1  # ... and brighter (upper mel bands)
    assert abs(pro.depth - am.depth) < 0.03 * abs(am.depth)  # ... which the sensor can't see


# ----------------------------------------------------------- refusals and reuse


def test_refuses_non_corpus_folder_and_overwrites_a_previous_synthetic_one(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="refusing"):
        synthesize_corpus(foreign, config=MINI)
    assert (foreign / "thesis.tex").read_text() == "precious"
    assert [p.name for p in foreign.iterdir()] == ["thesis.tex"]
    (foreign / "labels.csv").write_text("user_id\n")  # a labels file alone is no corpus of ours
    with pytest.raises(ConfigError, match="refusing"):
        synthesize_corpus(foreign, config=MINI)
    assert (foreign / "labels.csv").read_text() == "user_id\n"

    out = tmp_path / "corpus"
    first = set(_labels(synthesize_corpus(out, config=MINI, seed=1).out_dir).playdata_id)
    second = set(_labels(synthesize_corpus(out, config=MINI, seed=2).out_dir).playdata_id)
    assert first.isdisjoint(second)
    assert {p.name for p in (out / "playdata").iterdir()} == second  # nothing left over

    (out / ".profy-synth").unlink()  # an unmarked corpus is reused only if all takes are synthetic
    meta = next((out / "playdata").glob("*/meta.json"))
    meta.write_text(json.dumps({"playdata_id": meta.parent.name}))
    with pytest.raises(ConfigError, match="not synthetic"):
        synthesize_corpus(out, config=MINI, seed=3)


def test_bad_size_and_config_values_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="tiny, small, medium, full"):
        synthesize_corpus(tmp_path / "x", size="huge")
    assert not (tmp_path / "x").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="not a folder"):
        synthesize_corpus(tmp_path / "file", config=MINI)
    with pytest.raises(ConfigError, match="pro_fraction"):
        SynthConfig(n_players=4, takes_per_player=(1, 2), pro_fraction=1.5)
    with pytest.raises(ConfigError, match="legato_effect"):
        replace(SIZES["tiny"], legato_effect=-1.0)


def test_presets_share_one_difficulty_setting():
    knobs = [f for f in SynthConfig.__dataclass_fields__ if f.endswith(("_effect", "_sd"))]
    assert len(knobs) == 7
    for name in knobs:
        assert len({getattr(cfg, name) for cfg in SIZES.values()}) == 1, name
    full = SIZES["full"]
    assert (full.n_players, full.takes_per_player) == (73, (10, 15))


# ------------------------------------------------------ planted defects (issue 20)


def test_synth_modules_import_no_module_that_imports_them_back():
    import ast

    folder = Path(__file__).parents[2] / "profy" / "data"
    mods = {p.stem: p for p in folder.glob("_synth*.py")}
    graph = {}
    for name, path in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):  # TYPE_CHECKING imports count too
            if isinstance(node, ast.ImportFrom) and node.module:
                deps.add(node.module.rsplit(".", 1)[-1])
        graph[name] = deps & set(mods)

    def reaches(src, dst, seen=()):
        return any(d == dst or (d not in seen and reaches(d, dst, (*seen, d)))
                   for d in graph[src])

    assert len(mods) >= 5
    cycles = [m for m in mods if reaches(m, m)]
    assert not cycles, f"import cycle through {cycles}: {graph}"


def test_defects_are_opt_in_and_leave_other_takes_byte_identical(tmp_path):
    plain = synthesize_corpus(tmp_path / "plain", size="tiny", seed=4).out_dir
    planted = synthesize_corpus(tmp_path / "planted", size="tiny-defects", seed=4).out_dir
    truth_plain = pd.read_csv(plain / "planted_defects.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(planted / "planted_defects.csv", dtype=str, keep_default_na=False)
    assert list(truth.columns) == ["playdata_id", "player_id", "defects", "sensor_lead_s",
                                   "dup_of", "detail"]
    legacy = {"lead_silence", "cut_zeros", "cut_truncated", "clip_hard", "noisy"}
    kinds_plain = set(";".join(truth_plain.defects).split(";")) - {""}
    assert kinds_plain <= legacy and kinds_plain  # the default corpus: legacy defects only
    new = {k for d in truth.defects for k in d.split(";") if k} - legacy
    assert new == {"dc_offset", "clip_normalised", "dead_channel", "false_stereo", "upsampled",
                   "dropout", "sync_offset"}  # tiny: too few takes for a duplicate
    assert _digest(plain / "labels.csv") == _digest(planted / "labels.csv")
    untouched = truth.playdata_id[~truth.defects.str.split(";").map(lambda k: bool(set(k) & new))]
    assert len(untouched) >= 8
    for sid in untouched:
        for rel in ("files/sound/sound_raw.wav", "files/hackkey/hackkey.csv", "meta.json"):
            assert _digest(plain / "playdata" / sid / rel) == _digest(planted / "playdata" / sid
                                                                      / rel), (sid, rel)
    lead = truth.set_index("playdata_id").sensor_lead_s.astype(float)
    sync = truth.playdata_id[truth.defects.str.contains("sync_offset")]
    assert (lead[sync] > 0.5).all() and (lead.drop(sync) <= 0.3).all()


def test_duplicates_copy_a_take_under_another_player(tmp_path):
    from profy.data._synth_config import DefectRates

    cfg = replace(SIZES["tiny"], defects=DefectRates(duplicate=0.15))
    root = synthesize_corpus(tmp_path / "dups", config=cfg, seed=2).out_dir
    truth = pd.read_csv(root / "planted_defects.csv", dtype=str, keep_default_na=False)
    dups = truth[truth.dup_of != ""]
    assert len(dups) >= 2 and (dups.defects == "duplicate").all()
    labels = _labels(root)
    players = truth.set_index("playdata_id").player_id
    for row in dups.itertuples():
        assert players[row.dup_of] != row.player_id  # filed under a second player id
        assert set(labels.player_id[labels.playdata_id == row.playdata_id]) == {row.player_id}
        a, _ = sf.read(root / "playdata" / row.playdata_id / "files/sound/sound_raw.wav")
        b, _ = sf.read(root / "playdata" / row.dup_of / "files/sound/sound_raw.wav")
        assert a.shape[0] <= b.shape[0] and not np.array_equal(a, b[: a.shape[0]])
