"""``docker|podman run [opts] IMAGE ARGS`` on the host, for :mod:`workflow_sim` (tests only).

The image's entry point (``$WORKFLOW_IMAGES``: tag -> entry point, registered by the
workflow's build step) runs with every argument under a ``-v`` mount's container path
rewritten to its host path, a clean environment (``-e`` only), torch made unimportable
for a ``guardrails`` image (``$WORKFLOW_NO_TORCH``: the slim image has none), and a
read-only mount (``:ro``) whose files changed turned into exit 126. An unknown option, an
image no earlier step built, or a missing mount source is exit 125, as an engine would.

    python tests/workflow_container.py docker run --rm -v "$PWD/runs:/runs:ro" IMG ARGS
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["container_main"]

BIN = Path(sys.executable).parent

# ---------------------------------------------------------------- container stand-in

_FLAGS = {"--rm", "--read-only", "-i", "-t", "-it", "--init", "--interactive", "--tty"}
_VALUED = {"--network", "--net", "--tmpfs", "-v", "--volume", "-e", "--env", "-w",
           "--workdir", "--user", "-u", "--name", "--entrypoint", "--security-opt",
           "--cap-drop", "--memory", "--cpus", "--shm-size", "--pids-limit"}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def container_main(argv: list[str]) -> int:
    """``docker|podman run [options] IMAGE [ARGS...]`` on the host (see the module doc)."""
    engine, args = argv[0], argv[1:]
    if not args or args[0] != "run":
        print(f"{engine} stand-in: only `{engine} run` is simulated, got {args[:1]}",
              file=sys.stderr)
        return 125
    opts: list[tuple[str, str | None]] = []
    i = 1
    while i < len(args) and args[i].startswith("-"):
        key, _, inline = args[i].partition("=")
        if key in _FLAGS and not inline:
            opts.append((key, None))
        elif key in _VALUED:
            if inline:
                opts.append((key, inline))
            else:
                i += 1
                opts.append((key, args[i]))
        else:
            print(f"{engine} stand-in: unknown option {args[i]!r}", file=sys.stderr)
            return 125
        i += 1
    if i >= len(args):
        print(f"{engine} stand-in: no image given", file=sys.stderr)
        return 125
    image, command = args[i], args[i + 1:]
    images = json.loads(os.environ.get("WORKFLOW_IMAGES", "{}"))
    entry = dict(opts).get("--entrypoint") or images.get(image)
    if entry is None:
        print(f"{engine} stand-in: Unable to find image '{image}' (not built by an earlier "
              f"step of this job; built: {sorted(images)})", file=sys.stderr)
        return 125
    mounts: list[tuple[str, Path, bool]] = []
    env = {"PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    for key, value in opts:
        if key in ("-v", "--volume"):
            parts = str(value).split(":")
            host, inside = Path(parts[0]), parts[1].rstrip("/") or "/"
            if not host.exists():
                print(f"{engine} stand-in: mount source {host} does not exist", file=sys.stderr)
                return 125
            mounts.append((inside, host.resolve(), "ro" in parts[2:]))
        elif key in ("-e", "--env"):
            k, sep, v = str(value).partition("=")
            env[k] = v if sep else os.environ.get(k, "")
    mounts.sort(key=lambda m: len(m[0]), reverse=True)

    def host_path(arg: str) -> str:
        if "=" in arg and arg.startswith("--"):
            flag, _, val = arg.partition("=")
            return f"{flag}={host_path(val)}"
        for inside, host, _ in mounts:
            if arg == inside or arg.startswith(inside + "/"):
                return str(host) + arg[len(inside):]
        return arg

    if entry == "guardrails" and os.environ.get("WORKFLOW_NO_TORCH"):
        env["PYTHONPATH"] = os.environ["WORKFLOW_NO_TORCH"]  # the slim image has no torch
    read_only = {host: _snapshot(host) for _, host, ro in mounts if ro and host.is_dir()}
    with tempfile.TemporaryDirectory(prefix="container-") as home:
        env["HOME"] = home
        exe = entry if os.sep in entry else str(BIN / entry)
        code = subprocess.run([exe, *map(host_path, command)], cwd=home, env=env).returncode
    for host, before in read_only.items():
        after = _snapshot(host)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        if changed:
            print(f"{engine} stand-in: the container wrote into read-only mount {host}: "
                  f"{changed[:5]}", file=sys.stderr)
            return 126
    return code


if __name__ == "__main__":
    sys.exit(container_main(sys.argv[1:]))
