"""The manifest: one checked row per labelled take, and the takes that failed checks.

``build_manifest`` reads ``labels.csv``, then reads every labelled take's audio and
sensor CSV and applies the input policy (:class:`~profy.data.InputPolicy`, the same
one the feature workers apply), so that a broken file is found once, up front, rather
than in the middle of training. Bad takes either stop the build (the default, with every
problem listed) or, with ``skip_bad``, are quarantined and reported.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from profy.contract.atomic import atomic_write_json, write_parquet_atomic
from profy.contract.layout import LABELS_FILE
from profy.contract.schemas import MANIFEST_SCHEMA
from profy.data._labels import TakeLabels, read_labels
from profy.data._paths import audio_path, relative_to_root, sensor_path, take_dir
from profy.data._policy import InputPolicy
from profy.data._readers import AudioData, SensorData, audio_info, read_audio, read_sensor
from profy.data._take_memo import TakeMemo
from profy.errors import (
    DataError,
    MalformedFileError,
    MissingInputError,
    UnsafePathError,
)

__all__ = ["Manifest", "Problem", "TakeRead", "assemble_manifest", "build_manifest",
           "check_take_audio", "check_take_sensor", "open_corpus", "read_manifest", "read_take",
           "remembered", "write_manifest", "write_quarantine"]

_SHOW = 5  # bad takes spelled out in an error message
# When one build finds several kinds of problem, the most serious names the error.
_SEVERITY: tuple[type[DataError], ...] = (UnsafePathError, MalformedFileError, MissingInputError)
_PHRASE = {
    UnsafePathError: "have a path escaping the data root",
    MalformedFileError: "have a malformed file",
    MissingInputError: "are missing on disk",
}
_SHORT = {UnsafePathError: "unsafe", MalformedFileError: "malformed", MissingInputError: "missing"}


@dataclass(frozen=True)
class Problem:
    """One bad take.

    Attributes:
        sample_id: the take id (``playdata_id``).
        path: the file or folder at fault, relative to the corpus root (POSIX).
        problem: what is wrong with it, one line.
        kind: ``malformed``, ``missing`` or ``unsafe`` (the error class behind it).
    """

    sample_id: str
    path: str
    problem: str
    kind: str = "malformed"


@dataclass(frozen=True)
class Manifest:
    """A checked corpus.

    Attributes:
        table: one row per good take, ``MANIFEST_SCHEMA``, sorted by ``sample_id``;
            ``audio_path``/``sensor_path`` are relative to ``root``.
        root: the corpus root (absolute, symlinks kept).
        labels: the deduplicated labels the takes came from.
        quarantined: the bad takes left out (empty unless ``skip_bad``).
        n_unlabelled_on_disk: take folders under ``playdata/`` with no tagged label
            row (ignored, but counted so a user can see them).
    """

    table: pa.Table
    root: Path
    labels: TakeLabels
    quarantined: tuple[Problem, ...] = ()
    n_unlabelled_on_disk: int = 0


# One checked take: its manifest fields, or the problem and the error class behind it.
_Checked = tuple[dict[str, Any] | None, Problem | None, type[DataError] | None]


def check_take_audio(path: Path, policy: InputPolicy) -> AudioData:
    """Read one take's audio whole and apply the policy (the features read it the same way).

    Raises:
        DataError: the file is missing, undecodable, truncated, non-finite or refused.
    """
    policy.check_audio(path, audio_info(path))
    return read_audio(path)  # every sample decoded: NaN/inf and short reads are found here


def check_take_sensor(path: Path, policy: InputPolicy) -> SensorData:
    """Read one take's sensor CSV and apply the policy.

    Raises:
        DataError: the file is missing, malformed or refused.
    """
    sensor = read_sensor(path)
    policy.check_sensor(path, sensor)
    return sensor


def remembered(root: Path, sample_id: str, memo: TakeMemo) -> tuple[_Checked | None, Any]:
    """A take the memo holds unchanged (its checked row), else ``None`` and the stamps to
    remember it under once it is read."""
    try:
        audio, sensor = audio_path(root, sample_id), sensor_path(root, sample_id)
    except UnsafePathError:
        return None, None  # the full check reports it
    hit = memo.get(audio, sensor)
    if hit is None:
        return None, memo.stamps(audio, sensor)
    return ({"audio_path": relative_to_root(root, audio),
             "sensor_path": relative_to_root(root, sensor), **hit}, None, None), None


@dataclass(frozen=True)
class TakeRead:
    """One take read once and checked: its manifest fields and arrays, or its problem."""

    row: dict[str, Any] | None
    problem: Problem | None = None
    kind: type[DataError] | None = None
    audio: AudioData | None = None
    sensor: SensorData | None = None

    @property
    def checked(self) -> _Checked:
        """The result without the arrays (what :func:`build_manifest` keeps)."""
        return self.row, self.problem, self.kind


def read_take(root: Path, sample_id: str, policy: InputPolicy) -> TakeRead:
    """Read one take's audio and sensor CSV under ``policy``; never raises a ``DataError``.

    The arrays come back with the fields, so a caller that goes on to compute features
    (``profy features``' worker processes) parses each file once.
    """
    try:
        folder = take_dir(root, sample_id)
    except UnsafePathError as exc:
        return TakeRead(None, Problem(sample_id, relative_to_root(root, exc.path), exc.problem),
                        type(exc))
    if not folder.is_dir():
        if folder.exists():
            return TakeRead(None, Problem(sample_id, relative_to_root(root, folder),
                                          "take path is not a folder"), MalformedFileError)
        return TakeRead(None, Problem(sample_id, relative_to_root(root, folder),
                                      "take folder does not exist"), MissingInputError)
    found: dict[str, Any] = {}
    errors: list[DataError] = []
    steps: tuple[tuple[str, Callable[..., Path], Callable[..., Any]], ...] = (
        ("audio", audio_path, check_take_audio), ("sensor", sensor_path, check_take_sensor))
    for name, locate, read in steps:
        try:
            path = locate(root, sample_id)
            found[name] = (path, read(path, policy))
        except DataError as exc:
            errors.append(exc)
    if errors:
        kind = next(k for k in _SEVERITY if any(isinstance(e, k) for e in errors))
        if len(errors) == 1:
            return TakeRead(None, Problem(sample_id, relative_to_root(root, errors[0].path),
                                          errors[0].problem), kind)
        # Both files bad: blame the take folder and spell out each file's problem.
        both = "; ".join(f"{relative_to_root(folder, e.path)}: {e.problem}" for e in errors)
        return TakeRead(None, Problem(sample_id, relative_to_root(root, folder), both), kind)
    (a_path, audio), (s_path, sensor) = found["audio"], found["sensor"]
    row = {
        "audio_path": relative_to_root(root, a_path),
        "sensor_path": relative_to_root(root, s_path),
        "duration_s": audio.duration_s, "sample_rate": audio.sample_rate,
        "channels": int(audio.samples.shape[1]), "sensor_rows": int(sensor.times.shape[0]),
        "sensor_rate_hz": sensor.rate_hz,
    }
    return TakeRead(row, audio=audio, sensor=sensor)


def _check_take(root: Path, sample_id: str, policy: InputPolicy,
                memo: TakeMemo | None = None) -> _Checked:
    """Read one take's audio and sensor CSV under ``policy``; never raises a ``DataError``.

    With ``memo``, a take whose two files are unchanged since they passed is not read
    (:class:`~profy.data._take_memo.TakeMemo`), and a take that passes is remembered.
    """
    stamps = None
    if memo is not None:
        checked, stamps = remembered(root, sample_id, memo)
        if checked is not None:
            return checked
    read = read_take(root, sample_id, policy)
    if memo is not None and stamps is not None and read.row is not None:
        memo.put(root / read.row["audio_path"], root / read.row["sensor_path"], read.row,
                 stamps=stamps)
    return read.checked


def _count_unlabelled(playdata: Path, labelled: set[str]) -> int:
    with os.scandir(playdata) as entries:
        return sum(1 for e in entries if e.is_dir() and e.name not in labelled)


def _check_all(root: Path, ids: Sequence[str], workers: int, progress: bool,
               policy: InputPolicy, memo: TakeMemo | None) -> list[_Checked]:
    """Check every take, in ``ids`` order, on ``workers`` threads."""
    def run(tick: Callable[[], None]) -> list[_Checked]:
        def one(sample_id: str) -> _Checked:
            result = _check_take(root, sample_id, policy, memo)
            tick()
            return result

        if workers <= 1:
            return [one(s) for s in ids]
        # Threads suffice: pyarrow's CSV parser and libsndfile release the GIL.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, ids))

    if not progress:
        return run(lambda: None)
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("checking takes", total=len(ids))
        return run(lambda: bar.advance(task))


def _failure(problems: list[tuple[Problem, type[DataError]]], root: Path,
             labels_name: str) -> DataError:
    """One error for all bad takes: the most serious class, every kind counted."""
    kind = next(k for k in _SEVERITY if any(k is c for _, c in problems))
    hint = "(skip_bad=True / --skip-bad quarantines bad takes and goes on)"
    if len(problems) == 1:
        (p, _), = problems
        return kind(root / p.path, f"{p.problem} [take {p.sample_id} listed in {labels_name}; "
                                   f"{hint[1:-1]}]")
    by_kind = {k: sum(1 for _, c in problems if c is k) for k in _SEVERITY}
    kinds = [f"{n} {_SHORT[k]}" for k, n in by_kind.items() if n]
    head = (f"{len(problems)} takes listed in {labels_name} {_PHRASE[kind]}"
            if len(kinds) == 1 else
            f"{len(problems)} takes listed in {labels_name} are bad ({', '.join(kinds)})")
    items = []
    for p, _ in problems[:_SHOW]:
        short = p.path.removeprefix(f"playdata/{p.sample_id}/")
        items.append(f"{p.sample_id} ({short}: {p.problem})")
    more = f", ... and {len(problems) - _SHOW} more" if len(problems) > _SHOW else ""
    return kind(root, f"{head}: {', '.join(items)}{more} {hint}")


def build_manifest(root: str | Path, *, labels_path: str | Path | None = None,
                   skip_bad: bool = False, progress: bool = False, workers: int = 2,
                   policy: InputPolicy | None = None, memo: TakeMemo | None = None
                   ) -> Manifest:
    """Check every labelled take of a corpus and tabulate the good ones.

    Args:
        root: corpus root holding ``playdata/`` (and ``labels.csv`` by default).
        labels_path: the labels file; default ``<root>/labels.csv``.
        skip_bad: quarantine bad takes (``Manifest.quarantined``) instead of raising.
        progress: show a rich progress bar on stderr.
        workers: threads reading takes in parallel (1 = sequential). (Default: ``2``)
        policy: the input policy; pass the one of the feature config the takes will be
            used with. (Default: ``InputPolicy.from_features()``, the default features)
        memo: takes checked before, by file identity (:class:`TakeMemo`, built with the
            same policy): unchanged takes are not read again; saved on return.

    Returns:
        ``Manifest`` whose table has one ``MANIFEST_SCHEMA`` row per good take.

    Raises:
        MissingInputError: no root, no ``playdata/``, no labels file, or (without
            ``skip_bad``) takes missing on disk.
        LabelsError: the labels file is malformed or inconsistent.
        UnsafePathError, MalformedFileError: (without ``skip_bad``) a take's id or
            path escapes the root, or one of its files is broken. Every bad take is
            counted in the message, the first few by id and problem.
    """
    root, labels = open_corpus(root, labels_path)
    ids = list(labels.takes["sample_id"])
    policy = policy or InputPolicy.from_features()
    if memo is not None and memo.policy != TakeMemo.policy_key(policy):
        raise ValueError("the take memo was built for another input policy")
    checked = _check_all(root, ids, max(1, int(workers)), progress, policy, memo)
    if memo is not None:
        memo.save()
    return assemble_manifest(root, labels, checked, skip_bad=skip_bad)


def open_corpus(root: str | Path, labels_path: str | Path | None = None
                ) -> tuple[Path, TakeLabels]:
    """The corpus root (absolute) and its labels, before any take is read.

    Raises:
        MissingInputError: no root, no ``playdata/`` or no labels file.
        LabelsError: the labels file is malformed or inconsistent.
    """
    root = Path(root).absolute()
    if not root.is_dir():
        raise MissingInputError(root, "corpus root does not exist or is not a folder")
    playdata = root / "playdata"
    if not playdata.is_dir():
        raise MissingInputError(playdata, "no playdata/ folder: not a Profy corpus root")
    return root, read_labels(root / LABELS_FILE if labels_path is None else labels_path)


def assemble_manifest(root: Path, labels: TakeLabels, checked: Sequence[_Checked], *,
                      skip_bad: bool = False, ids: Sequence[str] | None = None) -> Manifest:
    """The manifest of checked takes (one result per take of ``labels``, in their order).

    Args:
        ids: the takes ``checked`` covers when not every labelled take (a shard).

    Raises:
        DataError: (without ``skip_bad``) a take is bad; every bad take is counted.
    """
    takes = labels.takes
    if ids is not None:
        takes = takes[takes["sample_id"].isin(set(ids))]
    playdata = root / "playdata"
    rows: list[dict[str, Any]] = []
    problems: list[tuple[Problem, type[DataError]]] = []
    for record, (row, problem, kind) in zip(takes.to_dict("records"), checked, strict=True):
        if problem is not None and kind is not None:
            problems.append((dataclasses.replace(problem, kind=_SHORT[kind]), kind))
        elif row is not None:
            rows.append({**record, **row})
    if problems and not skip_bad:
        raise _failure(problems, root, labels.path.name)

    columns = {f.name: [r[f.name] for r in rows] for f in MANIFEST_SCHEMA}
    table = pa.table(columns, schema=MANIFEST_SCHEMA)  # rows follow takes: sorted by id
    return Manifest(table=table, root=root, labels=labels,
                    quarantined=tuple(p for p, _ in problems),
                    n_unlabelled_on_disk=_count_unlabelled(playdata,
                                                           set(labels.takes["sample_id"])))


def write_manifest(manifest: Manifest, path: str | Path) -> Path:
    """Write ``manifest.table`` to Parquet atomically, with provenance in its metadata.

    The schema metadata gains ``root``, ``labels_path`` (absolute) and
    ``n_quarantined`` next to ``MANIFEST_SCHEMA``'s own keys.

    Returns:
        ``path``.
    """
    meta = dict(manifest.table.schema.metadata or {})
    meta.update({
        b"root": str(manifest.root).encode(),
        b"labels_path": str(Path(manifest.labels.path).absolute()).encode(),
        b"n_quarantined": str(len(manifest.quarantined)).encode(),
    })
    return write_parquet_atomic(manifest.table.replace_schema_metadata(meta), path)


def write_quarantine(problems: Iterable[Problem], path: str | Path, *, n_candidates: int,
                     rule_breaks: Iterable[dict[str, Any]] = (),
                     criteria: dict[str, Any] | None = None) -> Path:
    """Write ``quarantine.json`` (format: :mod:`profy.contract.quarantine`) atomically.

    Args:
        problems: takes the input policy refused (``Manifest.quarantined``).
        path: the file to write.
        n_candidates: takes before any quarantine (left out + used).
        rule_breaks: takes left out by the data-quality rules
            (:func:`profy.contract.quarantine.take_rule_breaks`).
        criteria: where the rules' thresholds came from, and the thresholds.

    Returns:
        ``path``.
    """
    from profy.contract.quarantine import input_entry, quarantine_document

    takes = [input_entry(p.sample_id, p.kind, p.path, p.problem) for p in problems]
    takes += list(rule_breaks)
    return atomic_write_json(path, quarantine_document(takes, n_candidates=n_candidates,
                                                       criteria=criteria))


def read_manifest(path: str | Path) -> pa.Table:
    """Read a ``manifest.parquet`` and check it against :data:`MANIFEST_SCHEMA`.

    Raises:
        MissingInputError: no such file.
        MalformedFileError: unreadable Parquet, or columns/types differ from the schema.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise MissingInputError(path, "file does not exist")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise MalformedFileError(path, f"not a readable Parquet file ({exc})") from None
    if not table.schema.equals(MANIFEST_SCHEMA, check_metadata=False):
        raise MalformedFileError(path, f"not a Profy manifest: columns {table.column_names}, "
                                       f"expected {MANIFEST_SCHEMA.names}")
    return table
