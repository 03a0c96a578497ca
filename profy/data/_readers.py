"""Readers for one take's files: ``hackkey.csv`` (key sensor) and ``sound_raw.wav``.

Every failure becomes a :class:`~profy.errors.DataError` subclass whose message
names the file and the problem; nothing from pyarrow or libsndfile leaks out raw.
A broken file is always an error, never silently shorter data.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from profy.contract.model_io import N_KEYS  # piano keys A0..C8
from profy.errors import MalformedFileError, MissingInputError

__all__ = [
    "N_KEYS",
    "SENSOR_COLUMNS",
    "AudioData",
    "AudioInfo",
    "SensorData",
    "audio_info",
    "read_audio",
    "read_sensor",
]

SENSOR_COLUMNS = 1 + N_KEYS  # time in seconds, then one column per key


@dataclass(frozen=True)
class SensorData:
    """One take's key-depth recording.

    Attributes:
        times: ``(rows,)`` float64 timestamps in seconds, strictly increasing.
        keys: ``(rows, 88)`` float32 key displacement, A0..C8, arbitrary units.
        path: the CSV it came from.
    """

    times: np.ndarray
    keys: np.ndarray
    path: Path

    @property
    def rate_hz(self) -> float:
        """Sampling rate from the median timestamp step (robust to a few dropped rows)."""
        return float(1.0 / np.median(np.diff(self.times)))


@dataclass(frozen=True)
class AudioData:
    """One take's audio.

    Attributes:
        samples: ``(frames, channels)`` float32 in [-1, 1] for PCM sources.
        sample_rate: frames per second.
        path: the file it came from.
    """

    samples: np.ndarray
    sample_rate: int
    path: Path

    @property
    def duration_s(self) -> float:
        """Duration in seconds."""
        return self.samples.shape[0] / self.sample_rate


@dataclass(frozen=True)
class AudioInfo:
    """An audio file's header, checked against the file's size."""

    sample_rate: int
    channels: int
    frames: int
    duration_s: float
    format: str
    subtype: str


# --------------------------------------------------------------------------- sensor

def _check_file(path: Path) -> None:
    if not path.exists():
        raise MissingInputError(path, "file does not exist")
    if not path.is_file():
        raise MalformedFileError(path, "is not a regular file")
    if path.stat().st_size == 0:
        raise MalformedFileError(path, "file is empty (0 bytes)")


def _first_bad_line(path: Path, arrow_message: str) -> str:
    """Locate the first line whose field count or cell is wrong (error path only, slow)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            cells = line.rstrip("\r\n").split(",")
            if len(cells) != SENSOR_COLUMNS:
                return f"line {lineno} has {len(cells)} columns, expected {SENSOR_COLUMNS}"
            for col, cell in enumerate(cells):
                try:
                    float(cell)
                except ValueError:
                    shown = cell.strip()[:40]
                    return f"line {lineno}, column {col + 1}: non-numeric cell {shown!r}"
    return arrow_message.strip().splitlines()[0][:200]


def read_sensor(path: str | Path) -> SensorData:
    """Read a headerless 89-column ``hackkey.csv`` (time, then 88 keys).

    The sampling rate is exposed (:attr:`SensorData.rate_hz`) but not checked here;
    tolerance on it is the features' business.

    Args:
        path: the CSV file.

    Returns:
        ``SensorData`` with ``times`` ``(rows,)`` float64 and ``keys`` ``(rows, 88)`` float32.

    Raises:
        MissingInputError: the file does not exist.
        MalformedFileError: empty, wrong column count, non-numeric/empty cell, NaN or
            inf, fewer than 2 rows, or timestamps not strictly increasing.
    """
    path = Path(path)
    _check_file(path)
    names = [f"f{i}" for i in range(SENSOR_COLUMNS)]
    try:
        table = pacsv.read_csv(
            path,
            # One thread per file: callers parallelize over files (workers), and
            # pyarrow's own threads only contend with them (31 vs 50 ms per 10k rows).
            read_options=pacsv.ReadOptions(autogenerate_column_names=True, use_threads=False),
            # null_values=[]: an empty cell or "NA" is an error, not a silent null;
            # "nan"/"inf" parse as floats and are caught by the finiteness check.
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.float64()), null_values=[]),
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV" in str(exc):
            raise MalformedFileError(path, "holds no rows") from None
        # pyarrow's message names neither the line nor always the cell: find them.
        raise MalformedFileError(path, f"not a {SENSOR_COLUMNS}-column numeric CSV: "
                                       f"{_first_bad_line(path, str(exc))}") from None
    except OSError as exc:
        raise MalformedFileError(path, f"cannot be read: {exc}") from None
    if table.num_columns != SENSOR_COLUMNS:
        raise MalformedFileError(path, f"has {table.num_columns} columns, expected "
                                       f"{SENSOR_COLUMNS} (time + {N_KEYS} keys)")
    if table.num_rows < 2:
        raise MalformedFileError(path, f"has {table.num_rows} row(s), need at least 2")
    data = np.column_stack([table.column(i).to_numpy() for i in range(SENSOR_COLUMNS)])
    finite = np.isfinite(data)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        n_bad = int((~finite).sum())
        raise MalformedFileError(path, f"{n_bad} non-finite value(s) (NaN/inf); first at row "
                                       f"{row + 1}, column {col + 1}: {data[row, col]}")
    times = np.ascontiguousarray(data[:, 0])
    steps = np.diff(times)
    if not (steps > 0).all():
        bad = int(np.argmax(steps <= 0)) + 1  # 0-based index of the offending row
        raise MalformedFileError(path, f"timestamps not strictly increasing: row {bad + 1} "
                                       f"(t={times[bad]:g}) follows t={times[bad - 1]:g}")
    keys = np.ascontiguousarray(data[:, 1:], dtype=np.float32)
    return SensorData(times=times, keys=keys, path=path)


# --------------------------------------------------------------------------- audio

def _riff_data_shortfall(path: Path) -> str | None:
    """Compare a RIFF/RF64 file's declared ``data`` size with the bytes present.

    libsndfile quietly clamps a too-long ``data`` chunk to what is on disk, so a
    truncated WAV would load as a shorter take. Walking the chunk list ourselves is
    the only reliable way to notice.

    Returns:
        A problem description if the data chunk is cut short, else ``None`` (also for
        non-RIFF formats, whose integrity is left to libsndfile).
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in (b"RIFF", b"RF64"):
            return None
        rf64_data_size = None
        offset = 12
        while offset + 8 <= size:
            handle.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", handle.read(8))
            if chunk_id == b"ds64":
                body = handle.read(16)
                if len(body) == 16:
                    rf64_data_size = struct.unpack("<QQ", body)[1]
            if chunk_id == b"data":
                declared = chunk_size
                if chunk_size == 0xFFFFFFFF:  # RF64 or a streaming writer
                    if rf64_data_size is None:
                        return None
                    declared = rf64_data_size
                present = size - offset - 8
                if present < declared:
                    return (f"truncated: data chunk declares {declared} bytes but only "
                            f"{present} are present")
                return None
            offset += 8 + chunk_size + (chunk_size & 1)  # chunks are word-aligned
    return None  # no data chunk: libsndfile reports that itself


# libsndfile keeps the text of the last failed open in one global buffer: when threads
# (the manifest's) fail at once, a message can come out as "(Garbled error message from
# libsndfile)". A failed open is therefore retried once under this lock for its message.
_SF_ERROR_LOCK = threading.Lock()


def _open_error(path: Path, exc: Exception) -> MalformedFileError:
    import soundfile as sf

    with _SF_ERROR_LOCK:
        for _ in range(3):  # another thread's unlocked failure can still garble one try
            try:
                sf.info(str(path))
            except (RuntimeError, sf.SoundFileError, ValueError) as again:
                exc = again
            if "Garbled" not in str(exc):
                break
    text = str(exc)
    # soundfile prefixes "Error opening '<path>': "; the path already leads our message.
    detail = text.split("': ", 1)[1] if "': " in text else text
    return MalformedFileError(path, f"not a readable audio file ({detail.strip()})")


def audio_info(path: str | Path) -> AudioInfo:
    """Read an audio file's header only, and check the file is not truncated.

    Args:
        path: the audio file (WAV of any common subtype; other libsndfile formats too).

    Returns:
        ``AudioInfo`` with rate, channels, frames, duration, format and subtype.

    Raises:
        MissingInputError: the file does not exist.
        MalformedFileError: empty, not audio, corrupt header, truncated, or no frames.
    """
    import soundfile as sf  # lazy: the torch-free guardrails side never reads audio

    path = Path(path)
    _check_file(path)
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.SoundFileError, ValueError) as exc:
        raise _open_error(path, exc) from None
    shortfall = _riff_data_shortfall(path)
    if shortfall:
        raise MalformedFileError(path, shortfall)
    if info.frames <= 0:
        raise MalformedFileError(path, "holds no audio frames")
    if info.samplerate <= 0 or info.channels <= 0:
        raise MalformedFileError(path, f"invalid header: {info.samplerate} Hz, "
                                       f"{info.channels} channel(s)")
    return AudioInfo(sample_rate=int(info.samplerate), channels=int(info.channels),
                     frames=int(info.frames), duration_s=info.frames / info.samplerate,
                     format=str(info.format), subtype=str(info.subtype))


def read_audio(path: str | Path) -> AudioData:
    """Read a whole audio file as float32, refusing broken files.

    Integer PCM (8/16/24/32-bit) is scaled to [-1, 1]; float files are read as is.

    Args:
        path: the audio file.

    Returns:
        ``AudioData`` with ``samples`` ``(frames, channels)`` float32.

    Raises:
        MissingInputError: the file does not exist.
        MalformedFileError: empty, not audio, corrupt, truncated, no frames, or
            non-finite samples.
    """
    import soundfile as sf

    path = Path(path)
    info = audio_info(path)
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.SoundFileError, ValueError) as exc:
        raise _open_error(path, exc) from None
    if samples.shape[0] != info.frames:
        raise MalformedFileError(path, f"truncated or corrupt: header says {info.frames} "
                                       f"frames, read {samples.shape[0]}")
    finite = np.isfinite(samples)
    if not finite.all():
        frame = int(np.argwhere(~finite)[0][0])
        raise MalformedFileError(path, f"{int((~finite).sum())} non-finite sample(s) (NaN/inf); "
                                       f"first at frame {frame} ({frame / rate:.3f} s)")
    return AudioData(samples=samples, sample_rate=int(rate), path=path)
