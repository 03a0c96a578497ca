"""A family of real broken files for one take: every input class the pipeline refuses.

Each defect rewrites one file of a take folder in place (a real file on disk, not a
mock) and names the words the error must contain. Used by the bad-input tests of the
feature pipeline (in-process and worker pool), the CLI, and the inspect-vs-features
consistency property, so all three judge the same family.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = ["AUDIO_DEFECTS", "CSV", "DEFECTS", "SENSOR_DEFECTS", "WAV", "Defect", "write_corpus"]

WAV = "files/sound/sound_raw.wav"
CSV = "files/hackkey/hackkey.csv"
_SR = 44_100


def _noise(seconds: float = 0.5, channels: int = 2) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal((int(_SR * seconds), channels))).astype(np.float32)


def _sensor(seconds: float = 0.5, rate: float = 1000.0, start: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(1)
    rows = int(rate * seconds)
    return np.column_stack([start + np.arange(rows) / rate,
                            rng.uniform(-0.08, 0.05, (rows, 88))])


def _write_csv(path: Path, data: np.ndarray) -> None:
    np.savetxt(path, data, delimiter=",", fmt="%.6g")


def _nan_audio(path: Path) -> None:
    x = _noise()
    x[_SR // 10, 1] = np.nan
    sf.write(path, x, _SR, subtype="FLOAT", format="WAVEX")


def _csv_with(change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    return lambda path: _write_csv(path, change(_sensor()))


def _nan_cell(data: np.ndarray) -> np.ndarray:
    data[10, 5] = np.nan
    return data


def _backwards(data: np.ndarray) -> np.ndarray:
    data[20, 0] = data[5, 0]
    return data


@dataclass(frozen=True)
class Defect:
    """One way a take's file can be broken: which file, how, and what the error says."""

    name: str
    file: str  # WAV or CSV, relative to the take folder
    write: Callable[[Path], None]
    words: str

    def apply(self, take_folder: Path) -> Path:
        """Break the take's file; returns the file's path."""
        path = take_folder / self.file
        self.write(path)
        return path


AUDIO_DEFECTS = (
    Defect("truncated_header", WAV, lambda p: p.write_bytes(p.read_bytes()[:30]), "readable"),
    Defect("zero_length", WAV, lambda p: p.write_bytes(b""), "empty"),
    Defect("8bit", WAV, lambda p: sf.write(p, _noise(), _SR, subtype="PCM_U8", format="WAV"),
           "8-bit"),
    Defect("one_sample", WAV, lambda p: sf.write(p, _noise()[:1], _SR, subtype="FLOAT",
                                                 format="WAVEX"), "too short"),
    Defect("wrong_rate", WAV, lambda p: sf.write(p, _noise(), 8_000, subtype="FLOAT",
                                                 format="WAVEX"), "sample rate 8000"),
    Defect("nan_audio", WAV, _nan_audio, "non-finite"),
    Defect("nine_channels", WAV, lambda p: sf.write(p, _noise(channels=9), _SR, subtype="FLOAT",
                                                    format="WAVEX"), "9 audio channels"),
    Defect("not_audio", WAV, lambda p: p.write_text("hello, not a wav"), "readable"),
)
SENSOR_DEFECTS = (
    Defect("csv_columns", CSV, _csv_with(lambda d: d[:, :50]), "columns"),
    Defect("csv_nan", CSV, _csv_with(_nan_cell), "non-finite"),
    Defect("csv_backwards", CSV, _csv_with(_backwards), "strictly increasing"),
    Defect("csv_rate", CSV, lambda p: _write_csv(p, _sensor(rate=500.0)), "sensor rate"),
    Defect("csv_late", CSV, lambda p: _write_csv(p, _sensor(start=30.0)), "no sensor row"),
    Defect("csv_text", CSV, lambda p: p.write_text(",".join(["0.0", "n/a", *["0"] * 87]) + "\n"),
           "non-numeric"),
    Defect("csv_empty", CSV, lambda p: p.write_bytes(b""), "empty"),
    Defect("csv_missing", CSV, lambda p: p.unlink(), "does not exist"),
)
DEFECTS = {d.name: d for d in (*AUDIO_DEFECTS, *SENSOR_DEFECTS)}


def write_corpus(root: Path, n_takes: int) -> list[str]:
    """A good corpus of ``n_takes`` short takes (2 per player, pro/amateur alternating)."""
    from profy.contract.schemas import LABEL_COLUMNS

    ids, rows = [], []
    for i in range(n_takes):
        tid = f"{i + 1:024x}"
        ids.append(tid)
        folder = root / "playdata" / tid
        (folder / WAV).parent.mkdir(parents=True)
        (folder / CSV).parent.mkdir(parents=True)
        sf.write(folder / WAV, _noise(), _SR, subtype="FLOAT", format="WAVEX")
        _write_csv(folder / CSV, _sensor())
        rows.append({"user_id": "u0", "playdata_id": tid, "updated_at": "", "is_answered": "True",
                     "score1": "1", "score2": "2", "player_id": f"player{i // 2}",
                     "piecetask_name": "Scale Des-dur",
                     "player_tag": "pro" if (i // 2) % 2 == 0 else "amateur", "preparation": ""})
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(LABEL_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return ids
