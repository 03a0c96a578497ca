"""build_manifest / write_manifest / write_quarantine on small corpora written here."""

import csv
import json
import os
import zlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from profy.contract.schemas import LABEL_COLUMNS, MANIFEST_SCHEMA
from profy.data._manifest import Manifest, Problem, build_manifest, write_manifest, write_quarantine
from profy.errors import (
    LabelsError,
    MalformedFileError,
    MissingInputError,
    UnsafePathError,
)

WAV = "files/sound/sound_raw.wav"
CSV = "files/hackkey/hackkey.csv"


def _take_files(folder: Path, seconds: float = 0.2, sensor_rate: float = 1000.0) -> None:
    rng = np.random.default_rng(zlib.crc32(folder.name.encode()))
    (folder / WAV).parent.mkdir(parents=True, exist_ok=True)
    (folder / CSV).parent.mkdir(parents=True, exist_ok=True)
    audio = rng.uniform(-0.3, 0.3, (int(44_100 * seconds), 2)).astype(np.float32)
    sf.write(folder / WAV, audio, 44_100, subtype="FLOAT", format="WAVEX")
    rows = int(sensor_rate * seconds)
    sensor = np.column_stack([np.arange(rows) / sensor_rate, rng.uniform(-0.08, 0.05, (rows, 88))])
    np.savetxt(folder / CSV, sensor, delimiter=",", fmt="%.6g")


def make_corpus(root: Path, n_takes: int = 6, ratings: int = 3, files: bool = True) -> list[str]:
    """Write ``n_takes`` takes (alternating pro/amateur, 2 takes per player) and labels.csv."""
    ids, rows = [], []
    for i in range(n_takes):
        tid = f"{i:024x}"
        ids.append(tid)
        tag = "pro" if (i // 2) % 2 == 0 else "amateur"
        piece = "Scale Des-dur" if i % 2 else "Arpeggio gis-moll"
        for r in range(ratings):
            rows.append({"user_id": f"u{r}", "playdata_id": tid, "updated_at": "", "is_answered":
                         "True", "score1": "1", "score2": "2", "player_id": f"player{i // 2}",
                         "piecetask_name": piece, "player_tag": tag, "preparation": ""})
        if files:
            _take_files(root / "playdata" / tid)
    (root / "playdata").mkdir(parents=True, exist_ok=True)
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(LABEL_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return ids


@pytest.fixture
def corpus(tmp_path) -> tuple[Path, list[str]]:
    root = tmp_path / "corpus"
    return root, make_corpus(root)


def test_build_ok(corpus):
    root, ids = corpus
    (root / "playdata" / "not_labelled").mkdir()
    m = build_manifest(root)
    assert isinstance(m, Manifest)
    assert m.table.schema.equals(MANIFEST_SCHEMA, check_metadata=True)
    t = m.table.to_pylist()
    assert [r["sample_id"] for r in t] == sorted(ids)
    first = t[0]
    assert first["audio_path"] == f"playdata/{ids[0]}/{WAV}"
    assert first["sensor_path"] == f"playdata/{ids[0]}/{CSV}"
    assert (first["sample_rate"], first["channels"], first["sensor_rows"]) == (44_100, 2, 200)
    assert first["duration_s"] == pytest.approx(0.2)
    assert first["sensor_rate_hz"] == pytest.approx(1000.0, rel=1e-3)
    assert first["label"] == "pro" and first["piece_kind"] == "arpeggio"
    assert first["n_ratings"] == 3 and first["player_id"] == "player0"
    assert m.quarantined == () and m.n_unlabelled_on_disk == 1
    assert m.root == root.absolute() and m.labels.n_label_rows == 18
    # the stored relative paths really open from the root
    assert (m.root / first["audio_path"]).is_file()


def test_workers_and_progress_same_result(corpus):
    root, _ = corpus
    assert build_manifest(root, workers=4, progress=True).table.equals(build_manifest(root).table)


def test_explicit_labels_path(corpus, tmp_path):
    root, ids = corpus
    moved = tmp_path / "elsewhere.csv"
    (root / "labels.csv").rename(moved)
    with pytest.raises(MissingInputError, match="labels.csv"):
        build_manifest(root)
    m = build_manifest(root, labels_path=moved)
    assert m.table.num_rows == len(ids) and m.labels.path == moved


def test_root_checks(tmp_path):
    with pytest.raises(MissingInputError, match="does not exist"):
        build_manifest(tmp_path / "nope")
    (tmp_path / "labels.csv").write_text(",".join(LABEL_COLUMNS) + "\n")
    with pytest.raises(MissingInputError, match="playdata"):
        build_manifest(tmp_path)


def test_labels_error_propagates(corpus):
    root, _ = corpus
    text = (root / "labels.csv").read_text().replace("player_tag", "tag", 1)
    (root / "labels.csv").write_text(text)
    with pytest.raises(LabelsError, match="player_tag"):
        build_manifest(root)


def test_missing_files_raise_then_quarantine(corpus):
    root, ids = corpus
    (root / "playdata" / ids[1] / WAV).unlink()
    (root / "playdata" / ids[3] / CSV).unlink()
    (root / "playdata" / ids[4] / WAV).unlink()
    (root / "playdata" / ids[4] / CSV).unlink()
    with pytest.raises(MissingInputError) as info:
        build_manifest(root)
    text = str(info.value)
    assert "3 takes listed in labels.csv are missing on disk" in text
    assert f"{ids[1]} ({WAV}: file does not exist)" in text
    assert f"{ids[3]} ({CSV}: file does not exist)" in text
    assert f"{ids[4]} (" in text and "--skip-bad" in text

    m = build_manifest(root, skip_bad=True)
    assert m.table.num_rows == 3
    assert [p.sample_id for p in m.quarantined] == [ids[1], ids[3], ids[4]]
    assert m.quarantined[0] == Problem(ids[1], f"playdata/{ids[1]}/{WAV}", "file does not exist",
                                       kind="missing")
    assert m.quarantined[2].path == f"playdata/{ids[4]}"  # both files gone: blame the folder
    assert WAV in m.quarantined[2].problem and CSV in m.quarantined[2].problem


def test_missing_take_folder(corpus):
    root, ids = corpus
    os.rename(root / "playdata" / ids[2], root / "moved")
    with pytest.raises(MissingInputError) as info:
        build_manifest(root)
    assert ids[2] in str(info.value) and "take folder does not exist" in str(info.value)


def test_one_truncated_wav_names_the_file(corpus):
    root, ids = corpus
    wav = root / "playdata" / ids[0] / WAV
    wav.write_bytes(wav.read_bytes()[: wav.stat().st_size // 2])
    with pytest.raises(MalformedFileError) as info:
        build_manifest(root)
    text = str(info.value)
    assert text.startswith(str(wav.absolute())) and "truncated" in text and ids[0] in text
    m = build_manifest(root, skip_bad=True)
    assert m.table.num_rows == len(ids) - 1
    assert "truncated" in m.quarantined[0].problem


def test_mixed_problems_pick_most_serious(corpus, tmp_path):
    root, ids = corpus
    (root / "playdata" / ids[0] / CSV).write_text("1,2,3\n4,5,6\n")
    (root / "playdata" / ids[1] / WAV).write_bytes(b"")
    (root / "playdata" / ids[2] / WAV).unlink()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.rename(root / "playdata" / ids[3], outside / ids[3])
    os.symlink(outside / ids[3], root / "playdata" / ids[3])
    with pytest.raises(UnsafePathError) as info:
        build_manifest(root)
    text = str(info.value)
    assert "4 takes listed in labels.csv are bad (1 unsafe, 2 malformed, 1 missing)" in text
    assert all(i in text for i in ids[:4])
    m = build_manifest(root, skip_bad=True)
    assert m.table.num_rows == 2 and len(m.quarantined) == 4
    assert "outside the data root" in m.quarantined[3].problem


def test_unsafe_id_in_labels(corpus):
    root, _ = corpus
    text = (root / "labels.csv").read_text().replace(f"{0:024x}", "../x")
    (root / "labels.csv").write_text(text)
    with pytest.raises(UnsafePathError) as info:
        build_manifest(root)
    assert "'../x'" in str(info.value) and ".." in str(info.value)
    m = build_manifest(root, skip_bad=True)
    assert [p.sample_id for p in m.quarantined] == ["../x"]


def test_many_problems_listed_briefly(tmp_path):
    root = tmp_path / "c"
    ids = make_corpus(root, n_takes=12, files=False)
    with pytest.raises(MissingInputError) as info:
        build_manifest(root)
    text = str(info.value)
    assert "12 takes" in text and "and 7 more" in text and ids[4] in text and ids[5] not in text


def test_all_quarantined_gives_empty_table(tmp_path):
    root = tmp_path / "c"
    make_corpus(root, n_takes=3, files=False)
    m = build_manifest(root, skip_bad=True)
    assert m.table.num_rows == 0 and m.table.schema.equals(MANIFEST_SCHEMA)
    assert len(m.quarantined) == 3


def test_write_manifest_and_quarantine(corpus, tmp_path):
    root, ids = corpus
    (root / "playdata" / ids[5] / WAV).write_text("not audio")
    m = build_manifest(root, skip_bad=True)
    out = write_manifest(m, tmp_path / "out" / "manifest.parquet")
    back = pq.read_table(out)
    assert back.schema.equals(MANIFEST_SCHEMA, check_metadata=False)
    assert back.equals(m.table)
    meta = back.schema.metadata
    assert meta[b"profy_artifact"] == b"manifest"
    assert meta[b"root"].decode() == str(root.absolute())
    assert meta[b"labels_path"].decode() == str((root / "labels.csv").absolute())
    assert meta[b"n_quarantined"] == b"1"
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]

    qpath = write_quarantine(m.quarantined, tmp_path / "out" / "quarantine.json",
                             n_candidates=len(ids))
    report = json.loads(qpath.read_text())
    assert report["count"] == 1 and report["n_candidates"] == len(ids)
    assert report["takes"][0]["sample_id"] == ids[5]
    assert report["takes"][0]["rule"] == "input.malformed"
    assert report["takes"][0]["path"] == f"playdata/{ids[5]}/{WAV}"
    assert "not a readable audio file" in report["takes"][0]["problem"]
