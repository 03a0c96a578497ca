"""Torch-free reader and writer of the semantic-tag registry (``tags.json``).

:func:`add_tag` validates a record, hashes the files it names and rewrites the registry
atomically; :func:`profy.training.register_tag` calls it after opening the checkpoints
(which needs torch) for their config hashes. Reading and resolving needs only ``json``
and ``hashlib``, so the guardrails (which must never import torch) use this module.
Format (version 1)::

    {"version": 1,
     "tags": {"mm-audiofix": {"run": "experiment_20261124_101500", "mode": "multimodal",
                              "folds": [0, 1, 2],
                              "files": {"checkpoints/multimodal_fold0.safetensors": "<sha256>",
                                        "config.yaml": "<sha256>"},
                              "config_hash": "<hash>|mixed",
                              "created_at": "2026-11-24T12:00:00+00:00"}}}

``run`` is relative (POSIX) to the folder holding ``tags.json`` when the run lies under it,
the normal ``runs/tags.json`` + ``runs/experiment_*`` layout: the registry is written on one
machine (a CI runner) and read on another (the runs folder mounted at ``/runs`` in the
guardrails image), so an absolute path would name a folder that is not there. A relative
``run`` that leaves the registry's folder (``..``, or a symlink out) is refused: the runs
folder is the data root a registry may point into. Absolute ``run`` values (older
registries, or a run tagged outside the registry's folder) are still read as they are.

Every error is a :mod:`profy.errors` exception naming the registry or the file at fault.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from profy.contract import layout
from profy.contract.atomic import atomic_write_json
from profy.contract.hashing import file_sha256
from profy.contract.layout import checkpoint_name, onnx_name
from profy.errors import ConfigError, MalformedFileError, MissingInputError, UnsafePathError

__all__ = ["MIXED", "REGISTRY_VERSION", "TAG_RE", "TagEntry", "add_tag", "check_new_tag",
           "checkpoint_name", "empty_registry", "entry_from_raw",
           "file_sha256", "list_tags", "read_registry", "resolve_tag", "run_field",
           "tagged_run_dir", "verify_entry"]

REGISTRY_VERSION = 1
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_ENTRY_KEYS = ("run", "mode", "folds", "files", "config_hash", "created_at")
MIXED = "mixed"  # the ``config_hash`` of a tag whose checkpoints disagree on it


@dataclass(frozen=True)
class TagEntry:
    """What a semantic tag names: a run, a mode, its folds and the files' hashes."""

    tag: str
    run_dir: Path
    mode: str
    folds: tuple[int, ...]
    files: dict[str, str]  # path relative to run_dir -> sha256
    config_hash: str
    created_at: str

    def checkpoint_paths(self) -> list[Path]:
        """Absolute paths of the tagged checkpoints, fold order."""
        return [self.run_dir / layout.CHECKPOINTS_DIR / checkpoint_name(self.mode, k)
                for k in self.folds]

    def onnx_path(self, fold: int) -> Path:
        """Where the ONNX export of ``fold`` lives (``RUN/onnx/<mode>_fold<K>.onnx``)."""
        return self.run_dir / layout.ONNX_DIR / onnx_name(self.mode, fold)


def empty_registry() -> dict[str, Any]:
    """The content of a registry with no tag yet."""
    return {"version": REGISTRY_VERSION, "tags": {}}


def read_registry(path: str | Path, *, missing_ok: bool = True) -> dict[str, Any]:
    """Parse and validate the registry JSON.

    Args:
        path: the registry file.
        missing_ok: an absent file reads as an empty registry. (Default: ``True``)

    Raises:
        MissingInputError: absent file and not ``missing_ok``.
        MalformedFileError: not JSON, wrong version, or an entry missing a field.
    """
    path = Path(path)
    if not path.is_file():
        if missing_ok:
            return empty_registry()
        raise MissingInputError(path, "tag registry does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedFileError(path, f"tag registry is not readable JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("version") != REGISTRY_VERSION \
            or not isinstance(data.get("tags"), dict):
        raise MalformedFileError(path, f"not a version-{REGISTRY_VERSION} tag registry")
    for tag, raw in data["tags"].items():
        if not isinstance(raw, dict) or any(k not in raw for k in _ENTRY_KEYS):
            raise MalformedFileError(path, f"tag {tag!r} lacks one of {', '.join(_ENTRY_KEYS)}")
        if not isinstance(raw["files"], dict) or not isinstance(raw["folds"], list):
            raise MalformedFileError(path, f"tag {tag!r}: 'files' must be an object and "
                                           "'folds' a list")
        if not isinstance(raw["run"], str) or not raw["run"]:
            raise MalformedFileError(path, f"tag {tag!r}: 'run' must be a non-empty path")
    return data


def run_field(registry: str | Path, run_dir: str | Path) -> str:
    """What the registry stores as ``run``: the path relative to the registry's folder
    (POSIX separators) when ``run_dir`` lies under it, else the absolute path.

    Both sides are resolved first, so ``runs/x`` and ``/abs/runs/x`` store the same value.
    """
    base, run = Path(registry).parent.resolve(), Path(run_dir).resolve()
    return run.relative_to(base).as_posix() if run.is_relative_to(base) else str(run)


def tagged_run_dir(registry: str | Path, tag: str, run: str) -> Path:
    """The run folder a record's ``run`` names: a relative one against the registry's
    folder (wherever that is now), an absolute one as it is.

    Raises:
        UnsafePathError: a relative ``run`` that resolves outside the registry's folder;
            the message names the registry.
    """
    path = Path(run)
    if path.is_absolute():  # older registries, or a run tagged outside the runs folder
        return path
    registry = Path(registry)
    base = registry.parent.resolve()
    try:
        # followed symlinks included: a link in the runs folder must not lead out of it
        real = (base / path).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # loop, NUL byte
        raise UnsafePathError(registry, f"tag {tag!r}: run {run!r} cannot be resolved "
                                        f"({exc})") from None
    if not real.is_relative_to(base):
        raise UnsafePathError(registry, f"tag {tag!r}: run {run!r} resolves to {real}, "
                                        f"outside the registry's folder {base} (a relative "
                                        "run must stay inside the folder holding tags.json)")
    return real


def entry_from_raw(tag: str, raw: dict[str, Any], registry: str | Path) -> TagEntry:
    """A :class:`TagEntry` from one record of ``registry`` (relative runs resolved
    against its folder, see :func:`tagged_run_dir`)."""
    return TagEntry(tag=tag, run_dir=tagged_run_dir(registry, tag, raw["run"]),
                    mode=str(raw["mode"]),
                    folds=tuple(int(k) for k in raw["folds"]), files=dict(raw["files"]),
                    config_hash=str(raw["config_hash"]), created_at=str(raw["created_at"]))


def verify_entry(entry: TagEntry) -> TagEntry:
    """Re-hash every file the tag names.

    Raises:
        MissingInputError: a tagged file is gone.
        MalformedFileError: a tagged file changed since it was tagged.
    """
    for rel, digest in entry.files.items():
        path = entry.run_dir / rel
        if not path.is_file():
            raise MissingInputError(path, f"file of tag {entry.tag!r} is gone")
        if file_sha256(path) != digest:
            raise MalformedFileError(path, f"changed since it was tagged {entry.tag!r}")
    return entry


def resolve_tag(registry: str | Path, tag: str, *, verify: bool = True) -> TagEntry:
    """Look ``tag`` up; with ``verify``, re-hash every file it names.

    Raises:
        ConfigError: unknown tag (the known ones are listed).
        MalformedFileError: a tagged file changed since it was tagged, or a bad registry.
        MissingInputError: a tagged file is gone.
        UnsafePathError: the tag's relative run leaves the registry's folder.
    """
    registry = Path(registry)
    tags = read_registry(registry)["tags"]
    if tag not in tags:
        raise ConfigError(f"unknown tag {tag!r} in {registry}; known: "
                          f"{', '.join(sorted(tags)) or '(none)'}")
    entry = entry_from_raw(tag, tags[tag], registry)
    return verify_entry(entry) if verify else entry


def list_tags(registry: str | Path) -> list[TagEntry]:
    """Every tag in the registry, sorted by name (an absent registry has none)."""
    tags = read_registry(Path(registry))["tags"]
    return [entry_from_raw(t, tags[t], registry) for t in sorted(tags)]


# --- writing --------------------------------------------------------------------------


def check_new_tag(registry: str | Path, tag: str, *, replace: bool = False) -> dict[str, Any]:
    """The parsed registry, once ``tag`` is a valid name that is free (or ``replace``).

    Raises:
        ConfigError: a bad tag name, or an existing tag without ``replace``.
        MalformedFileError: a bad registry.
    """
    if not isinstance(tag, str) or not TAG_RE.fullmatch(tag):  # fullmatch: no trailing "\n"
        raise ConfigError(f"tag {tag!r} must match {TAG_RE.pattern}")
    data = read_registry(registry)
    if tag in data["tags"] and not replace:
        raise ConfigError(f"tag {tag!r} already names {data['tags'][tag]['run']}; "
                          "pass replace=True to move it")
    return data


def add_tag(registry: str | Path, tag: str, run_dir: str | Path, *, mode: str,
            folds: Iterable[int], config_hashes: Iterable[str], replace: bool = False,
            created_at: str | None = None) -> TagEntry:
    """Name ``mode``'s ``folds`` checkpoints of ``run_dir`` with ``tag`` and rewrite the
    registry atomically (created if absent).

    Every checkpoint and the run's ``config.yaml`` (when present) are hashed here, so the
    tag pins their bytes; a run under the registry's folder is stored relative to it
    (:func:`run_field`).

    Args:
        registry: the registry JSON.
        tag: lowercase letters, digits, ``.``, ``_``, ``-`` (e.g. ``mm-audiofix``).
        run_dir: the run folder.
        mode: which mode's checkpoints.
        folds: which folds (at least one).
        config_hashes: the checkpoints' config hashes: one value is stored as it is, more
            than one as :data:`MIXED`.
        replace: allow moving an existing tag. (Default: ``False``)
        created_at: ISO time of the record. (Default: now, UTC, seconds)

    Raises:
        ConfigError: a bad tag name, or an existing tag without ``replace``.
        MissingInputError: no fold, or a checkpoint is missing.
        MalformedFileError: a bad registry.
    """
    registry, run_dir = Path(registry), Path(run_dir).resolve()
    data = check_new_tag(registry, tag, replace=replace)
    folds = [int(k) for k in folds]
    if not folds:
        raise MissingInputError(run_dir / layout.CHECKPOINTS_DIR,
                                f"no {mode} checkpoint to tag")
    files: dict[str, str] = {}
    for fold in folds:
        rel = f"{layout.CHECKPOINTS_DIR}/{checkpoint_name(mode, fold)}"
        if not (run_dir / rel).is_file():
            raise MissingInputError(run_dir / rel, f"checkpoint of tag {tag!r} is missing")
        files[rel] = file_sha256(run_dir / rel)
    if (run_dir / layout.CONFIG_FILE).is_file():
        files[layout.CONFIG_FILE] = file_sha256(run_dir / layout.CONFIG_FILE)
    hashes = sorted(set(config_hashes))
    entry = {"run": run_field(registry, run_dir), "mode": mode, "folds": folds, "files": files,
             "config_hash": hashes[0] if len(hashes) == 1 else MIXED,
             "created_at": created_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    data["tags"][tag] = entry
    atomic_write_json(registry, data)
    return entry_from_raw(tag, entry, registry)
