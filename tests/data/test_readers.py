"""Sensor/audio readers and path safety, on real files written to tmp_path (no mocks)."""

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from assertions import raises_naming

from profy.data._paths import audio_path, sensor_path, take_dir
from profy.data._readers import audio_info, read_audio, read_sensor
from profy.errors import DataError, MalformedFileError, MissingInputError, UnsafePathError

RATE = 44_100


def _sensor_matrix(rows: int = 300, rate: float = 1000.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    times = 1.5 + np.arange(rows) / rate
    keys = rng.uniform(-0.08, 0.05, size=(rows, 88))
    return np.column_stack([times, keys])


def _write_csv(path: Path, data: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, data, delimiter=",", fmt="%.9g")
    return path


def _write_wav(path: Path, frames: int = 4410, subtype: str = "FLOAT", fmt: str = "WAVEX",
               channels: int = 2) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(1).uniform(-0.5, 0.5, (frames, channels)).astype(np.float32)
    sf.write(path, data, RATE, subtype=subtype, format=fmt)
    return data


_raises = raises_naming


# ----------------------------------------------------------------------------- sensor

def test_read_sensor_valid(tmp_path):
    data = _sensor_matrix(rows=500, rate=1000.0)
    s = read_sensor(_write_csv(tmp_path / "hackkey.csv", data))
    assert s.times.shape == (500,) and s.times.dtype == np.float64
    assert s.keys.shape == (500, 88) and s.keys.dtype == np.float32
    np.testing.assert_allclose(s.keys, data[:, 1:], rtol=1e-6, atol=1e-7)
    assert s.rate_hz == pytest.approx(1000.0, rel=1e-6)
    assert s.path == tmp_path / "hackkey.csv"


def test_read_sensor_rate_not_checked_here(tmp_path):
    s = read_sensor(_write_csv(tmp_path / "h.csv", _sensor_matrix(rows=50, rate=250.0)))
    assert s.rate_hz == pytest.approx(250.0, rel=1e-6)


def test_sensor_missing(tmp_path):
    _raises(MissingInputError, tmp_path / "hackkey.csv", "not exist", call=read_sensor)


def test_sensor_empty_file(tmp_path):
    path = tmp_path / "hackkey.csv"
    path.write_bytes(b"")
    _raises(MalformedFileError, path, "empty", call=read_sensor)


def test_sensor_blank_lines_only(tmp_path):
    path = tmp_path / "hackkey.csv"
    path.write_text("\n\n")
    _raises(MalformedFileError, path, "no rows", call=read_sensor)


def test_sensor_88_columns(tmp_path):
    path = _write_csv(tmp_path / "hackkey.csv", _sensor_matrix()[:, :88])
    _raises(MalformedFileError, path, "88 columns", "89", call=read_sensor)


def test_sensor_ragged_row(tmp_path):
    path = _write_csv(tmp_path / "hackkey.csv", _sensor_matrix(rows=10))
    lines = path.read_text().splitlines()
    lines[4] = lines[4].rsplit(",", 1)[0]  # drop the last key of line 5
    path.write_text("\n".join(lines) + "\n")
    _raises(MalformedFileError, path, "line 5", "88 columns", call=read_sensor)


def test_sensor_non_numeric_cell(tmp_path):
    path = _write_csv(tmp_path / "hackkey.csv", _sensor_matrix(rows=10))
    lines = path.read_text().splitlines()
    cells = lines[6].split(",")
    cells[3] = "abc"
    lines[6] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    _raises(MalformedFileError, path, "non-numeric", "'abc'", "line 7", "column 4",
            call=read_sensor)


def test_sensor_empty_cell(tmp_path):
    path = _write_csv(tmp_path / "hackkey.csv", _sensor_matrix(rows=10))
    lines = path.read_text().splitlines()
    cells = lines[2].split(",")
    cells[10] = ""
    lines[2] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    _raises(MalformedFileError, path, "non-numeric", "line 3", call=read_sensor)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_sensor_non_finite(tmp_path, bad):
    data = _sensor_matrix(rows=20)
    data[12, 40] = bad
    path = _write_csv(tmp_path / "hackkey.csv", data)
    _raises(MalformedFileError, path, "non-finite", "row 13", "column 41", call=read_sensor)


def test_sensor_non_monotonic_time(tmp_path):
    data = _sensor_matrix(rows=20)
    data[9, 0] = data[7, 0]
    path = _write_csv(tmp_path / "hackkey.csv", data)
    _raises(MalformedFileError, path, "strictly increasing", "row 10", call=read_sensor)


def test_sensor_single_row(tmp_path):
    path = _write_csv(tmp_path / "hackkey.csv", _sensor_matrix(rows=1))
    _raises(MalformedFileError, path, "at least 2", call=read_sensor)


# ----------------------------------------------------------------------------- audio

def test_read_audio_float_wavex(tmp_path):
    path = tmp_path / "sound_raw.wav"
    data = _write_wav(path, frames=4410)
    info = audio_info(path)
    assert (info.sample_rate, info.channels, info.frames) == (RATE, 2, 4410)
    assert info.duration_s == pytest.approx(0.1)
    assert (info.format, info.subtype) == ("WAVEX", "FLOAT")
    audio = read_audio(path)
    assert audio.samples.shape == (4410, 2) and audio.samples.dtype == np.float32
    np.testing.assert_array_equal(audio.samples, data)
    assert audio.sample_rate == RATE and audio.duration_s == pytest.approx(0.1)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_U8", "PCM_24"])
def test_read_audio_integer_pcm(tmp_path, subtype):
    path = tmp_path / "sound_raw.wav"
    data = _write_wav(path, frames=2000, subtype=subtype, fmt="WAV", channels=1)
    audio = read_audio(path)
    assert audio.samples.shape == (2000, 1) and audio.samples.dtype == np.float32
    np.testing.assert_allclose(audio.samples, data, atol=1 / 64)


def test_audio_missing(tmp_path):
    for call in (read_audio, audio_info):
        _raises(MissingInputError, tmp_path / "sound_raw.wav", "not exist", call=call)


def test_audio_zero_bytes(tmp_path):
    path = tmp_path / "sound_raw.wav"
    path.write_bytes(b"")
    for call in (read_audio, audio_info):
        _raises(MalformedFileError, path, "empty", call=call)


def test_audio_text_file(tmp_path):
    path = tmp_path / "sound_raw.wav"
    path.write_text("this is not audio\n" * 20)
    for call in (read_audio, audio_info):
        _raises(MalformedFileError, path, "not a readable audio file", call=call)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_audio_truncated_mid_data(tmp_path, keep):
    path = tmp_path / "sound_raw.wav"
    _write_wav(path, frames=4410)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    # libsndfile alone would return a shorter take here; the reader must refuse it.
    for call in (read_audio, audio_info):
        _raises(MalformedFileError, path, "truncated", call=call)


@pytest.mark.parametrize("keep", [6, 20, 60, 100])
def test_audio_truncated_mid_header(tmp_path, keep):
    path = tmp_path / "sound_raw.wav"
    _write_wav(path, frames=4410)
    path.write_bytes(path.read_bytes()[:keep])
    for call in (read_audio, audio_info):
        with pytest.raises(MalformedFileError) as info:
            call(path)
        assert path.name in str(info.value)


def test_audio_zero_frames(tmp_path):
    path = tmp_path / "sound_raw.wav"
    _write_wav(path, frames=0)
    for call in (read_audio, audio_info):
        _raises(MalformedFileError, path, "no audio frames", call=call)


def test_audio_non_finite_samples(tmp_path):
    path = tmp_path / "sound_raw.wav"
    data = np.zeros((1000, 2), np.float32)
    data[500, 1] = np.nan
    sf.write(path, data, RATE, subtype="FLOAT", format="WAVEX")
    assert audio_info(path).frames == 1000  # the header is fine
    _raises(MalformedFileError, path, "non-finite", "frame 500", call=read_audio)


def test_audio_odd_chunk_before_data(tmp_path):
    """A word-aligned odd-sized chunk before 'data' must not confuse the RIFF walk."""
    path = tmp_path / "sound_raw.wav"
    _write_wav(path, frames=100, subtype="PCM_16", fmt="WAV")
    raw = path.read_bytes()
    at = raw.index(b"data")
    extra = b"junk" + (3).to_bytes(4, "little") + b"abc\x00"
    body = raw[12:at] + extra + raw[at:]
    path.write_bytes(b"RIFF" + (4 + len(body)).to_bytes(4, "little") + b"WAVE" + body)
    assert read_audio(path).samples.shape == (100, 2)


# ----------------------------------------------------------------------------- paths

def test_paths_valid(tmp_path):
    tid = "0123456789abcdef01234567"
    assert take_dir(tmp_path, tid) == tmp_path / "playdata" / tid
    assert audio_path(tmp_path, tid) == tmp_path / "playdata" / tid / "files/sound/sound_raw.wav"
    assert sensor_path(tmp_path, tid) == (tmp_path / "playdata" / tid
                                          / "files/hackkey/hackkey.csv")
    assert take_dir(tmp_path, "take_01-b").name == "take_01-b"


@pytest.mark.parametrize("bad,word", [
    ("../x", ".."), ("..", ".."), ("a/b", "separator"), ("a\\b", "separator"),
    ("/etc", "absolute"), ("C:\\x", "absolute"), ("", "empty"), ("a\x00b", "NUL"),
    ("a.b", "letters"), ("a b", "letters"),
])
def test_unsafe_ids(tmp_path, bad, word):
    for call in (take_dir, audio_path, sensor_path):
        with pytest.raises(UnsafePathError) as info:
            call(tmp_path, bad)
        assert word.lower() in str(info.value).lower()
        assert repr(bad) in str(info.value)


def test_symlinked_take_dir_outside_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "elsewhere"
    (root / "playdata").mkdir(parents=True)
    outside.mkdir()
    os.symlink(outside, root / "playdata" / "t1")
    for call in (take_dir, audio_path, sensor_path):
        with pytest.raises(UnsafePathError) as info:
            call(root, "t1")
        assert "t1" in str(info.value) and "outside the data root" in str(info.value)


def test_symlinked_file_outside_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "secret.wav"
    _write_wav(outside, frames=10)
    wav = root / "playdata" / "t1" / "files" / "sound" / "sound_raw.wav"
    wav.parent.mkdir(parents=True)
    os.symlink(outside, wav)
    take_dir(root, "t1")  # the folder itself is fine
    with pytest.raises(UnsafePathError) as info:
        audio_path(root, "t1")
    assert "sound_raw.wav" in str(info.value) and "outside" in str(info.value)


def test_symlink_inside_root_is_fine(tmp_path):
    root = tmp_path / "root"
    real = root / "store" / "t1"
    real.mkdir(parents=True)
    (root / "playdata").mkdir()
    os.symlink(real, root / "playdata" / "t1")
    assert take_dir(root, "t1") == root / "playdata" / "t1"


def test_errors_are_data_errors():
    assert issubclass(MalformedFileError, DataError) and issubclass(UnsafePathError, DataError)


def test_symlink_loop_is_unsafe(tmp_path):
    (tmp_path / "playdata").mkdir()
    os.symlink(tmp_path / "playdata" / "t1", tmp_path / "playdata" / "t1")
    with pytest.raises(UnsafePathError) as info:
        take_dir(tmp_path, "t1")
    assert "t1" in str(info.value)
