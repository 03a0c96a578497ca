"""The ``profy`` CLI end to end on a real (tiny) corpus written to disk."""

import csv
import json
import subprocess
import sys

import pyarrow.parquet as pq

from profy.cli import main


def _take_ids(root):
    return sorted(p.name for p in (root / "playdata").iterdir())


def _labelled_ids(root):
    """Takes with at least one tagged rater row (the ones that become samples)."""
    with open(root / "labels.csv", newline="") as handle:
        return sorted({r["playdata_id"] for r in csv.DictReader(handle) if r["player_tag"]})


def test_synth_prints_where(tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["synth", "--size", "tiny", "--seed", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out.resolve()) in printed.replace("\n", "")
    assert (out / "labels.csv").is_file()


def test_inspect_json_counts_match_disk(tiny_corpus_ro, capsys):
    assert main(["data", "inspect", str(tiny_corpus_ro), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # untagged takes exist on disk but are not samples
    assert report["takes"] + report["untagged_takes"] == len(_take_ids(tiny_corpus_ro))
    assert report["problems"] == []
    assert set(report["labels"]) == {"pro", "amateur"}
    assert report["rater_rows"] > report["takes"]


def test_inspect_lists_every_problem_and_exits_1(tiny_corpus, capsys):
    ids = _labelled_ids(tiny_corpus)
    (tiny_corpus / "playdata" / ids[0] / "files/sound/sound_raw.wav").unlink()
    (tiny_corpus / "playdata" / ids[1] / "files/hackkey/hackkey.csv").write_text("1,2,3\n")
    assert main(["data", "inspect", str(tiny_corpus), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert {p["sample_id"] for p in report["problems"]} == set(ids[:2])
    assert report["takes"] == len(ids) - 2


def test_prepare_writes_manifest_and_splits(tiny_corpus_ro, tmp_path, capsys):
    out = tmp_path / "prep"
    assert main(["data", "prepare", str(tiny_corpus_ro), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "manifest.parquet" in printed and "splits.parquet" in printed
    manifest = pq.read_table(out / "manifest.parquet")
    splits = pq.read_table(out / "splits.parquet").to_pandas()
    assert manifest.num_rows * 3 == len(splits)
    assert set(splits.role) == {"train", "val", "test"}


def test_missing_file_is_exit_2_one_line_and_nothing_written(tiny_corpus, tmp_path):
    ids = _labelled_ids(tiny_corpus)
    wav = tiny_corpus / "playdata" / ids[0] / "files/sound/sound_raw.wav"
    wav.unlink()
    out = tmp_path / "prep"
    out.mkdir()
    (out / "manifest.parquet").write_bytes(b"previous")  # an earlier output must survive
    proc = subprocess.run([sys.executable, "-m", "profy.cli", "data", "prepare", str(tiny_corpus),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert ids[0] in lines[0] and "sound_raw.wav" in lines[0]
    assert (out / "manifest.parquet").read_bytes() == b"previous"
    assert not (out / "splits.parquet").exists()


def test_skip_bad_quarantines_and_continues(tiny_corpus, tmp_path, capsys):
    ids = _labelled_ids(tiny_corpus)
    (tiny_corpus / "playdata" / ids[0] / "files/sound/sound_raw.wav").write_bytes(b"")
    out = tmp_path / "prep"
    code = main(["data", "prepare", str(tiny_corpus), "--out", str(out), "--skip-bad"])
    assert code == 0
    assert "quarantined" in capsys.readouterr().out
    quarantine = json.loads((out / "quarantine.json").read_text())
    assert ids[0] in json.dumps(quarantine)
    manifest_ids = set(pq.read_table(out / "manifest.parquet")["sample_id"].to_pylist())
    assert manifest_ids == set(ids[1:])


def test_labels_missing_column_is_exit_2(tiny_corpus, capsys):
    labels = tiny_corpus / "labels.csv"
    lines = labels.read_text().splitlines()
    header = lines[0].split(",")
    idx = header.index("player_tag")
    labels.write_text("\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != idx)
                                for line in lines) + "\n")
    assert main(["data", "inspect", str(tiny_corpus)]) == 2
    err = capsys.readouterr().err
    assert "labels.csv" in err and "player_tag" in err


def test_missing_root_is_exit_2(tmp_path, capsys):
    assert main(["data", "inspect", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


def test_unknown_size_is_exit_2(tmp_path, capsys):
    assert main(["synth", "--size", "huge", "--out", str(tmp_path / "x")]) == 2
    assert "huge" in capsys.readouterr().err


def test_features_reuses_a_prepared_manifest(tiny_corpus_ro, tmp_path, capsys):
    prep = tmp_path / "prep"
    assert main(["data", "prepare", str(tiny_corpus_ro), "--out", str(prep)]) == 0
    args = ["features", str(tiny_corpus_ro), "--out", str(tmp_path / "f"), "--workers", "1"]
    assert main([*args, "--manifest", str(prep / "manifest.parquet")]) == 0
    assert "misses" in capsys.readouterr().out
    # a Parquet file that is not a manifest is refused by name
    assert main([*args, "--manifest", str(prep / "splits.parquet")]) == 2
    err = capsys.readouterr().err
    assert "splits.parquet" in err and "not a Profy manifest" in err
