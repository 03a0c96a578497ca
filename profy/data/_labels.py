"""``labels.csv``: one row per rater answer, deduplicated to one sample per take.

A sample is a take, not a label row (DESIGN.md §1): each take is rated 3-53 times,
and training on rater rows would weight takes by how often they were rated and put
copies of one take on both sides of a split. Rows whose ``player_tag`` is empty
carry no label; they are skipped and counted, never silently dropped.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from profy.contract.schemas import LABELS, piece_kind
from profy.errors import LabelsError, MissingInputError

__all__ = ["REQUIRED_COLUMNS", "TAKE_COLUMNS", "TakeLabels", "read_labels"]

# The columns Profy uses; the others of schemas.LABEL_COLUMNS (rater, scores, dates)
# are carried by the real file but not needed to label a take.
REQUIRED_COLUMNS = ("playdata_id", "player_id", "piecetask_name", "player_tag")
TAKE_COLUMNS = ("sample_id", "player_id", "piece", "piece_kind", "label", "n_ratings")
_SHOW = 10  # offenders listed in an error message before "... and N more"


@dataclass(frozen=True)
class TakeLabels:
    """The labels file reduced to one row per labelled take.

    Attributes:
        takes: one row per tagged take, sorted by ``sample_id``, columns
            ``sample_id, player_id, piece, piece_kind, label, n_ratings``
            (``n_ratings`` counts all the take's rater rows, tagged or not).
        n_label_rows: data rows in the file.
        n_untagged_rows: rows with an empty ``player_tag`` (skipped).
        n_untagged_takes: takes none of whose rows carry a tag (left out).
        path: the labels file.
    """

    takes: pd.DataFrame
    n_label_rows: int
    n_untagged_rows: int
    n_untagged_takes: int
    path: Path


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOW])
    return shown + (f", ... and {len(items) - _SHOW} more" if len(items) > _SHOW else "")


def _lines(mask: pd.Series) -> str:
    """File line numbers of the rows in ``mask`` (header is line 1)."""
    return _listing([str(i + 2) for i in mask[mask].index])


def _read_frame(path: Path) -> pd.DataFrame:
    try:
        # pandas' C parser ends a field at a NUL byte, which would silently turn a
        # corrupted tag into an empty (untagged) one: refuse such files outright.
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if b"\x00" in line:
                    raise LabelsError(path, f"line {number} contains a NUL byte (corrupt file?)")
        # dtype=str + keep_default_na=False: ids stay exact strings (never floats or
        # NaN), and an empty tag stays "" so it can be counted. utf-8-sig drops the
        # BOM that spreadsheet exports put before the first header name.
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                           skipinitialspace=False, quoting=csv.QUOTE_MINIMAL)
    except pd.errors.EmptyDataError:
        raise LabelsError(path, "file is empty (no header)") from None
    except UnicodeDecodeError as exc:
        raise LabelsError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (pd.errors.ParserError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LabelsError(path, f"not a readable CSV: {first}") from None
    except OSError as exc:
        raise LabelsError(path, f"cannot be read: {exc}") from None


def _check_columns(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    frame = frame.rename(columns=lambda c: str(c).strip())
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise LabelsError(path, f"missing required column(s) {', '.join(missing)}; header is "
                                f"{','.join(map(str, frame.columns))!r}")
    # Stripped so a stray space in a spreadsheet cell is not a different id or tag.
    return frame[list(REQUIRED_COLUMNS)].apply(lambda col: col.str.strip())


def _check_rows(rows: pd.DataFrame, path: Path) -> None:
    empty_id = rows["playdata_id"] == ""
    if empty_id.any():
        raise LabelsError(path, f"{int(empty_id.sum())} row(s) with an empty playdata_id "
                                f"(line(s) {_lines(empty_id)})")
    bad_tag = ~rows["player_tag"].isin([*LABELS, ""])
    if bad_tag.any():
        counts = rows.loc[bad_tag, "player_tag"].value_counts()
        values = _listing([f"{v[:40]!r} ({n} row(s))" for v, n in counts.items()])
        raise LabelsError(path, f"{int(bad_tag.sum())} row(s) with a player_tag other than "
                                f"pro, amateur or empty: {values} (line(s) {_lines(bad_tag)})")


def _check_tagged(tagged: pd.DataFrame, path: Path) -> None:
    no_player = tagged["player_id"] == ""
    if no_player.any():
        raise LabelsError(path, f"{int(no_player.sum())} tagged row(s) with an empty player_id "
                                f"(line(s) {_lines(no_player)})")
    # One value per take for each of these, or the take's label is ambiguous.
    spread = tagged.groupby("playdata_id", sort=True)[
        ["player_tag", "player_id", "piecetask_name"]].nunique()
    bad = spread[(spread > 1).any(axis=1)]
    if len(bad):
        items = [f"{take} ({', '.join(c for c in bad.columns if bad.loc[take, c] > 1)})"
                 for take in bad.index]
        raise LabelsError(path, f"{len(bad)} take(s) whose rater rows disagree on "
                                f"player_tag, player_id or piecetask_name: {_listing(items)}")
    bad_pieces = []
    for piece in sorted(tagged["piecetask_name"].unique()):
        try:
            piece_kind(piece)
        except ValueError:
            bad_pieces.append(repr(piece[:60]))
    if bad_pieces:
        raise LabelsError(path, f"piece name(s) starting with neither 'Scale' nor 'Arpeggio': "
                                f"{_listing(bad_pieces)}")


def read_labels(path: str | Path) -> TakeLabels:
    """Read ``labels.csv`` and reduce it to one labelled row per take.

    Args:
        path: the labels file (header as in ``profy.contract.schemas.LABEL_COLUMNS``; only
            ``playdata_id, player_id, piecetask_name, player_tag`` are required).

    Returns:
        ``TakeLabels``; its ``takes`` frame has one row per tagged take.

    Raises:
        MissingInputError: the file does not exist.
        LabelsError: unreadable, a required column missing, an empty ``playdata_id``,
            a tag other than pro/amateur/empty, a tagged row without ``player_id``,
            a take whose tagged rows disagree, a piece that is neither a scale nor
            an arpeggio, or no tagged row at all.
    """
    path = Path(path)
    if not path.exists():
        raise MissingInputError(path, "labels file does not exist")
    if not path.is_file():
        raise LabelsError(path, "is not a regular file")
    rows = _check_columns(_read_frame(path), path)
    if rows.empty:
        raise LabelsError(path, "has a header but no rows")
    _check_rows(rows, path)
    untagged = rows["player_tag"] == ""
    tagged = rows[~untagged]
    if tagged.empty:
        raise LabelsError(path, f"none of its {len(rows)} row(s) has a player_tag "
                                "(pro or amateur): nothing to learn from")
    _check_tagged(tagged, path)

    n_ratings = rows.groupby("playdata_id", sort=False).size()
    takes = (tagged.drop_duplicates("playdata_id")
             .rename(columns={"playdata_id": "sample_id", "piecetask_name": "piece",
                              "player_tag": "label"})
             .sort_values("sample_id", kind="stable")
             .reset_index(drop=True))
    takes["piece_kind"] = takes["piece"].map(piece_kind)
    takes["n_ratings"] = takes["sample_id"].map(n_ratings).astype("int32")
    takes = takes[list(TAKE_COLUMNS)]
    untagged_takes = set(rows.loc[untagged, "playdata_id"]) - set(takes["sample_id"])
    return TakeLabels(takes=takes, n_label_rows=len(rows), n_untagged_rows=int(untagged.sum()),
                      n_untagged_takes=len(untagged_takes), path=path)
