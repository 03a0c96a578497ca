"""labels.csv: dedup to one sample per take, counting, and every malformed case."""

import csv
import random
from pathlib import Path

import pytest
from assertions import raises_naming
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profy.contract.schemas import LABEL_COLUMNS, PIECES
from profy.data._labels import TakeLabels, read_labels
from profy.errors import LabelsError, MissingInputError


def _row(take: str, player: str = "p1", piece: str = "Scale C-dur", tag: str = "pro",
         rater: str = "u1") -> dict:
    return {"user_id": rater, "playdata_id": take, "updated_at": "2024-01-01T00:00:00Z",
            "is_answered": "True", "score1": "3", "score2": "4", "player_id": player,
            "piecetask_name": piece, "player_tag": tag, "preparation": ""}


def _write(path: Path, rows: list[dict], columns=LABEL_COLUMNS) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _error(path: Path, *words: str) -> str:
    return raises_naming(LabelsError, path, *words, call=read_labels)


def test_dedup_basic(tmp_path):
    rows = ([_row("t2", "p1", "Scale C-dur", "pro", f"u{i}") for i in range(3)]
            + [_row("t1", "p2", "Arpeggio gis-moll", "amateur", f"u{i}") for i in range(5)]
            + [_row("t2", "p1", "Scale C-dur", "", "u9")]  # untagged answer of a tagged take
            + [_row("t3", "p3", "Scale B-dur", "", "u1"), _row("t3", "p3", "Scale B-dur", "")])
    labels = read_labels(_write(tmp_path / "labels.csv", rows))
    assert isinstance(labels, TakeLabels)
    assert list(labels.takes.columns) == ["sample_id", "player_id", "piece", "piece_kind",
                                          "label", "n_ratings"]
    assert labels.takes.to_dict("records") == [
        {"sample_id": "t1", "player_id": "p2", "piece": "Arpeggio gis-moll",
         "piece_kind": "arpeggio", "label": "amateur", "n_ratings": 5},
        {"sample_id": "t2", "player_id": "p1", "piece": "Scale C-dur", "piece_kind": "scale",
         "label": "pro", "n_ratings": 4},
    ]
    assert (labels.n_label_rows, labels.n_untagged_rows, labels.n_untagged_takes) == (11, 3, 1)
    assert labels.path == tmp_path / "labels.csv"


def test_ids_stay_strings(tmp_path):
    # As floats these would all be 0.0 or 1e5 and collide; as strings they are 3 takes.
    ids = ["0000000000000000000000e1", "0000000000000000000000e2", "00000000000000000001e5"]
    rows = [_row(i, player="000123", tag="pro") for i in ids]
    labels = read_labels(_write(tmp_path / "labels.csv", rows))
    assert list(labels.takes.sample_id) == sorted(ids)
    assert set(labels.takes.player_id) == {"000123"}


def test_whitespace_and_bom_tolerated(tmp_path):
    path = _write(tmp_path / "labels.csv", [_row(" t1 ", tag=" pro "), _row("t1", tag="pro")])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    labels = read_labels(path)
    assert list(labels.takes.sample_id) == ["t1"] and labels.takes.n_ratings[0] == 2


def test_extra_and_reordered_columns_ok(tmp_path):
    cols = ["player_tag", "extra", *reversed(LABEL_COLUMNS[:-2]), "preparation"]
    rows = [{**_row("t1"), "extra": "x"}]
    assert len(read_labels(_write(tmp_path / "labels.csv", rows, cols)).takes) == 1


def test_missing_file(tmp_path):
    with pytest.raises(MissingInputError) as info:
        read_labels(tmp_path / "labels.csv")
    assert "labels.csv" in str(info.value) and "not exist" in str(info.value)


@pytest.mark.parametrize("drop", [["player_tag"], ["player_id", "piecetask_name"]])
def test_missing_columns(tmp_path, drop):
    cols = [c for c in LABEL_COLUMNS if c not in drop]
    text = _error(_write(tmp_path / "labels.csv", [_row("t1")], cols), "missing required column")
    for col in drop:
        assert col in text


def test_empty_file(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("")
    _error(path, "empty")


def test_header_only(tmp_path):
    _error(_write(tmp_path / "labels.csv", []), "no rows")


def test_all_untagged(tmp_path):
    _error(_write(tmp_path / "labels.csv", [_row("t1", tag=""), _row("t2", tag="")]),
           "none of its 2 row(s)")


def test_not_utf8(tmp_path):
    path = _write(tmp_path / "labels.csv", [_row("t1", player="p\xe9")])
    path.write_bytes(path.read_bytes().replace("é".encode(), b"\xe9"))
    _error(path, "utf-8")


def test_bad_tag_value(tmp_path):
    rows = [_row("t1"), _row("t2", tag="Pro"), _row("t3", tag="expert"), _row("t4", tag="Pro")]
    text = _error(_write(tmp_path / "labels.csv", rows), "player_tag", "'Pro' (2 row(s))",
                  "'expert' (1 row(s))")
    assert "line(s) 3, 4, 5" in text


@pytest.mark.parametrize("field,value", [("player_tag", "amateur"), ("player_id", "p9"),
                                         ("piecetask_name", "Scale B-dur")])
def test_disagreeing_rows(tmp_path, field, value):
    rows = [_row("t1"), _row("t1"), _row("t2"), {**_row("t2"), field: value}]
    text = _error(_write(tmp_path / "labels.csv", rows), "1 take(s)", "disagree")
    assert f"t2 ({field})" in text and "t1" not in text.split("disagree")[1]


def test_disagreement_ignores_untagged_rows(tmp_path):
    rows = [_row("t1", player="p1"), {**_row("t1", player="", piece="", tag="")}]
    labels = read_labels(_write(tmp_path / "labels.csv", rows))
    assert labels.takes.player_id[0] == "p1" and labels.takes.n_ratings[0] == 2


def test_many_disagreeing_takes_listed_briefly(tmp_path):
    rows = []
    for i in range(25):
        rows += [_row(f"t{i:02d}", tag="pro"), _row(f"t{i:02d}", tag="amateur")]
    text = _error(_write(tmp_path / "labels.csv", rows), "25 take(s)", "and 15 more")
    assert "t09" in text and "t10" not in text


def test_bad_piece(tmp_path):
    _error(_write(tmp_path / "labels.csv", [_row("t1", piece="Etude Op.10")]),
           "'Etude Op.10'", "Scale", "Arpeggio")


def test_empty_playdata_id(tmp_path):
    _error(_write(tmp_path / "labels.csv", [_row("t1"), _row("", tag="")]),
           "empty playdata_id", "line(s) 3")


def test_empty_player_id_in_tagged_row(tmp_path):
    _error(_write(tmp_path / "labels.csv", [_row("t1", player="")]), "empty player_id")


def test_unparseable_csv(tmp_path):
    path = _write(tmp_path / "labels.csv", [_row("t1")])
    with open(path, "a") as handle:
        handle.write('a,"unterminated\n')
    with pytest.raises(LabelsError) as info:
        read_labels(path)
    assert "labels.csv" in str(info.value)


# ----------------------------------------------------------------------------- properties

@st.composite
def label_tables(draw):
    """Takes with a random number of rater rows each; some rows untagged; shuffled."""
    n_takes = draw(st.integers(1, 25))
    takes = []
    for i in range(n_takes):
        n_tagged = draw(st.integers(0, 6))
        n_untagged = draw(st.integers(0 if n_tagged else 1, 4))
        takes.append({"id": f"{i:024x}", "player": f"p{draw(st.integers(0, 5))}",
                      "piece": draw(st.sampled_from(PIECES)),
                      "tag": draw(st.sampled_from(["pro", "amateur"])),
                      "n_tagged": n_tagged, "n_untagged": n_untagged})
    seed = draw(st.integers(0, 2**32 - 1))
    return takes, seed


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(spec=label_tables())
def test_dedup_property(tmp_path, spec):
    takes, seed = spec
    rows = []
    for t in takes:
        rows += [_row(t["id"], t["player"], t["piece"], t["tag"], f"u{k}")
                 for k in range(t["n_tagged"])]
        rows += [_row(t["id"], t["player"], t["piece"], "", f"v{k}")
                 for k in range(t["n_untagged"])]
    random.Random(seed).shuffle(rows)
    if not any(t["n_tagged"] for t in takes):
        _error(_write(tmp_path / "labels.csv", rows), "none of its")
        return
    labels = read_labels(_write(tmp_path / "labels.csv", rows))
    tagged = {t["id"]: t for t in takes if t["n_tagged"]}
    got = labels.takes
    assert list(got.sample_id) == sorted(tagged)  # one row per tagged take, sorted
    for rec in got.to_dict("records"):
        t = tagged[rec["sample_id"]]
        assert (rec["player_id"], rec["piece"], rec["label"]) == (t["player"], t["piece"],
                                                                  t["tag"])
        assert rec["n_ratings"] == t["n_tagged"] + t["n_untagged"]
    assert labels.n_label_rows == len(rows)
    assert labels.n_untagged_rows == sum(t["n_untagged"] for t in takes)
    assert labels.n_untagged_takes == sum(1 for t in takes if not t["n_tagged"])
    assert int(got.n_ratings.sum()) + sum(
        t["n_untagged"] for t in takes if not t["n_tagged"]) == len(rows)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(junk=st.text(min_size=0, max_size=30))
def test_junk_tag_gives_labels_error(tmp_path, junk):
    path = _write(tmp_path / "labels.csv", [_row("t1"), _row("t2", tag=junk)])
    if junk.strip() in ("pro", "amateur", ""):
        labels = read_labels(path)
        assert set(labels.takes.sample_id) <= {"t1", "t2"}
    else:
        with pytest.raises(LabelsError):
            read_labels(path)
