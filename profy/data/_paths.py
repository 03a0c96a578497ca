"""Safe path resolution under a corpus root.

Take ids come from ``labels.csv``, a file Profy does not control, and take folders
may be symlinks. Every path Profy opens inside a corpus is therefore built here and
checked twice: lexically (the id cannot name another folder) and after resolving
symlinks (the file really lies inside the data root).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from profy.contract.layout import AUDIO_RELPATH, SENSOR_RELPATH  # where each modality lives
from profy.errors import UnsafePathError

__all__ = [
    "audio_path",
    "check_inside",
    "check_take_id",
    "relative_to_root",
    "sensor_path",
    "take_dir",
]

# Real ids are 24-hex; any letters/digits/'_'/'-' are accepted so that test and
# synthetic corpora can use readable ids. Dots are refused outright: no real id
# has one, and refusing them rules out '.' and '..' without special cases.
_ID_RE = re.compile(r"[0-9A-Za-z_-]+")


def check_take_id(playdata_id: str) -> str:
    """Return ``playdata_id`` if it is a safe single folder name, else raise.

    Raises:
        UnsafePathError: empty, not a string, absolute, containing a path separator,
            ``..``, a NUL byte, or any character outside ``[0-9A-Za-z_-]``.
    """
    if not isinstance(playdata_id, str):
        raise UnsafePathError(repr(playdata_id), "take id is not a string")
    shown = repr(playdata_id)
    if not playdata_id:
        raise UnsafePathError(shown, "take id is empty")
    # The specific reasons first, so the message says what is wrong, not just "invalid".
    if "\x00" in playdata_id:
        raise UnsafePathError(shown, "take id contains a NUL byte")
    if PurePosixPath(playdata_id).is_absolute() or PureWindowsPath(playdata_id).is_absolute():
        raise UnsafePathError(shown, "take id is an absolute path")
    if ".." in playdata_id:
        raise UnsafePathError(shown, "take id contains '..' (would escape the data root)")
    if "/" in playdata_id or "\\" in playdata_id:
        raise UnsafePathError(shown, "take id contains a path separator")
    if not _ID_RE.fullmatch(playdata_id):
        raise UnsafePathError(shown, "take id may only hold letters, digits, '_' and '-'")
    return playdata_id


def check_inside(root: Path, path: Path) -> Path:
    """Return ``path`` if, with symlinks followed, it lies inside ``root``; else raise.

    Args:
        root: the corpus root (resolved here, so it may itself be a symlink).
        path: a path built under ``root``; it need not exist.

    Raises:
        UnsafePathError: ``path`` resolves outside ``root``.
    """
    real_root = Path(root).resolve()
    # strict=False: a missing file is the caller's problem to report, not an escape.
    try:
        real = Path(path).resolve(strict=False)
    except (RuntimeError, OSError) as exc:  # 3.11 raises RuntimeError on a symlink loop
        raise UnsafePathError(path, f"cannot be resolved ({exc})") from None
    if real != real_root and not real.is_relative_to(real_root):
        raise UnsafePathError(path, f"resolves to {real}, outside the data root {real_root} "
                                    "(a symlink pointing out of the corpus?)")
    return Path(path)


def take_dir(root: Path, playdata_id: str) -> Path:
    """The folder of one take, ``<root>/playdata/<playdata_id>``, checked for safety.

    Args:
        root: the corpus root.
        playdata_id: the take id as it appears in ``labels.csv``.

    Returns:
        The lexical path (symlinks kept, so it stays relative-able to ``root``).

    Raises:
        UnsafePathError: the id is unsafe, or the folder resolves outside ``root``.
    """
    check_take_id(playdata_id)
    return check_inside(root, Path(root) / "playdata" / playdata_id)


def _take_file(root: Path, playdata_id: str, rel: PurePosixPath) -> Path:
    path = take_dir(root, playdata_id) / rel
    # Checked again: a file (or its subfolder) inside a safe take folder may itself be
    # a symlink out of the corpus.
    return check_inside(root, path)


def audio_path(root: Path, playdata_id: str) -> Path:
    """``<root>/playdata/<id>/files/sound/sound_raw.wav``, checked not to escape ``root``.

    Raises:
        UnsafePathError: the id is unsafe or the file resolves outside ``root``.
    """
    return _take_file(root, playdata_id, AUDIO_RELPATH)


def sensor_path(root: Path, playdata_id: str) -> Path:
    """``<root>/playdata/<id>/files/hackkey/hackkey.csv``, checked not to escape ``root``.

    Raises:
        UnsafePathError: the id is unsafe or the file resolves outside ``root``.
    """
    return _take_file(root, playdata_id, SENSOR_RELPATH)


def relative_to_root(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` as a POSIX string (as given if not under ``root``)."""
    try:
        return Path(path).relative_to(Path(root)).as_posix()
    except ValueError:
        return Path(path).as_posix()
