"""The atomic claim of a run folder that several jobs share (``--only-fold``, Indexed Jobs).

Jobs started at the same instant on a new ``--run-dir`` must agree on one ``config.yaml``,
``config_hash`` and ``splits.parquet``. The protocol needs no lock server and no ``fcntl``
lock (unreliable on NFS), only an exclusive create, atomic on local disks and NFSv3+:

1. A job whose folder already holds the completion marker (:data:`CLAIM_DONE_FILE`) only
   verifies (:func:`claim` calls ``verify``).
2. Otherwise it tries ``os.open(CLAIM_FILE, O_CREAT | O_EXCL)``. The one that succeeds is
   the claimer: it records ``pid``, ``host``, pid namespace, time and a random token in
   the claim file, runs ``write`` (config, hash, splits: each written atomically), checks
   that the claim is still its own, then writes the marker atomically.
3. Every other job polls for the marker (``timeout`` seconds at most, then a
   :class:`~profy.errors.MissingInputError` naming the run folder, the claim file and its
   holder: exit 2), then verifies: another config or other splits are a ``ConfigError``,
   never a mix.

A claimer that dies between its claim and the marker leaves a stale claim, taken over
(renamed aside, atomically; the one job whose rename succeeds goes back to step 2) when:

- it was made on this host, in this pid namespace, by a process that no longer exists
  (taken over at once), or
- it was made elsewhere (another pod, another machine) and is older than ``stale_after``
  seconds; an unreadable (empty) claim file is judged by its modification time. A live
  claimer only writes three small files, so a claim that old without a marker is dead.

Both times can be set per job with the environment variables ``PROFY_CLAIM_TIMEOUT_S``
and ``PROFY_CLAIM_STALE_S`` (e.g. in a Job manifest), or per call.

A claimer that fails while writing removes its own claim, so the next job may try. Every
job that joins verifies the stored config and splits against its own, so even a claimer
wrongly judged stale cannot make two configs mix silently.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from profy.contract.atomic import atomic_write_json
from profy.contract.layout import CLAIM_DONE_FILE, CLAIM_FILE
from profy.errors import ConfigError, MissingInputError

__all__ = ["CLAIM_TIMEOUT_S", "STALE_AFTER_S", "claim", "read_claim", "seconds_from_env"]

CLAIM_TIMEOUT_S = 300.0  # how long a job waits for another job's claim to complete
STALE_AFTER_S = 120.0  # a claim from another host without a marker is dead after this
TIMEOUT_ENV, STALE_ENV = "PROFY_CLAIM_TIMEOUT_S", "PROFY_CLAIM_STALE_S"
_POLL_S = 0.02


def seconds_from_env(name: str, default: float) -> float:
    """A positive number of seconds from the environment variable ``name``, or ``default``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"environment variable {name}={text!r}: expected a positive number "
                          "of seconds")
    return value


def _pid_namespace() -> str:
    """Identity of this process's pid namespace (containers on one host differ)."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "unknown"


def _holder(token: str, config_hash: str) -> dict[str, Any]:
    return {"token": token, "pid": os.getpid(), "host": socket.gethostname(),
            "pid_namespace": _pid_namespace(), "time": time.time(),
            "config_hash": config_hash}


def read_claim(path: Path) -> dict[str, Any] | None:
    """The claim file's JSON, or ``None`` when it is absent, empty or half written."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def _try_create(path: Path, holder: dict[str, Any]) -> bool:
    """The exclusive create: ``True`` for the one process that made ``path``."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(holder, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # exists (another user's) or not a pid we can judge
    return True


def _is_stale(holder: dict[str, Any] | None, mtime: float, stale_after: float) -> bool:
    """A dead local claimer now; any other claimer once older than ``stale_after``."""
    local = holder is not None and holder.get("host") == socket.gethostname() \
        and holder.get("pid_namespace") == _pid_namespace() \
        and holder.get("pid_namespace") != "unknown"
    if local:
        return not _pid_alive(int(holder["pid"]))  # type: ignore[index]
    made = float(holder["time"]) if holder is not None and "time" in holder else mtime
    return time.time() - made > stale_after


def _take_over(path: Path, seen: os.stat_result) -> None:
    """Move the stale claim ``seen`` aside; put back a newer one moved by mistake."""
    aside = path.with_name(f"{path.name}.stale.{uuid.uuid4().hex}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # another job took it over first
    moved = os.stat(aside)
    if (moved.st_ino, moved.st_dev) != (seen.st_ino, seen.st_dev):  # a fresh claim: restore
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
    aside.unlink(missing_ok=True)


def _release(path: Path, token: str) -> None:
    """Remove the claim if it is still ``token``'s (a failed claimer lets others try)."""
    holder = read_claim(path)
    if holder is not None and holder.get("token") == token:
        path.unlink(missing_ok=True)


def _timeout_error(run_dir: Path, path: Path, timeout: float) -> MissingInputError:
    holder = read_claim(path)
    who = ("an unreadable claim" if holder is None else
           f"pid {holder.get('pid')} on host {holder.get('host')}, claimed at "
           f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(float(holder.get('time', 0))))}")
    return MissingInputError(run_dir, (
        f"waited {timeout:g} s for the job holding the claim file {path} ({who}) to write "
        f"config, hash and splits ({CLAIM_DONE_FILE} never appeared); if that job is dead, "
        f"delete {path} and rerun"))


def claim(run_dir: str | Path, *, config_hash: str, write: Callable[[], None],
          verify: Callable[[], None], timeout: float | None = None,
          stale_after: float | None = None) -> bool:
    """Claim ``run_dir`` and ``write`` its identity, or wait for the job that did and
    ``verify`` it.

    Args:
        config_hash: this job's config hash, recorded in the claim and the marker.
        write: writes (or, for files already there, checks) config, hash and splits.
        verify: raises ``ConfigError`` if the folder's config or splits are not this job's.
        timeout: seconds to wait for another job's claim to complete. (Default:
            ``$PROFY_CLAIM_TIMEOUT_S``, else :data:`CLAIM_TIMEOUT_S`)
        stale_after: seconds after which a claim from another host is dead. (Default:
            ``$PROFY_CLAIM_STALE_S``, else :data:`STALE_AFTER_S`)

    Returns:
        bool: ``True`` if this job wrote the folder's identity, ``False`` if it joined.

    Raises:
        MissingInputError: the marker did not appear within ``timeout`` seconds.
        ConfigError: (from ``verify``) the folder holds another config or other splits; a
            bad ``PROFY_CLAIM_*`` value.
    """
    timeout = seconds_from_env(TIMEOUT_ENV, CLAIM_TIMEOUT_S) if timeout is None else timeout
    stale_after = seconds_from_env(STALE_ENV, STALE_AFTER_S) if stale_after is None \
        else stale_after
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path, done = run_dir / CLAIM_FILE, run_dir / CLAIM_DONE_FILE
    deadline = time.monotonic() + timeout
    while True:
        if done.is_file():
            verify()
            return False
        token = uuid.uuid4().hex
        holder = _holder(token, config_hash)
        if _try_create(path, holder):
            try:
                write()
            except BaseException:
                _release(path, token)
                raise
            owner = read_claim(path)
            if owner is not None and owner.get("token") == token:
                atomic_write_json(done, {"claimed_by": holder, "config_hash": config_hash,
                                         "done": time.time()})
                return True
            continue  # judged stale and taken over while writing: the new claimer finishes
        try:
            seen = os.stat(path)
        except FileNotFoundError:
            continue  # released or taken over just now: try again
        if _is_stale(read_claim(path), seen.st_mtime, stale_after):
            _take_over(path, seen)
            continue
        if time.monotonic() > deadline:
            raise _timeout_error(run_dir, path, timeout)
        time.sleep(_POLL_S)
