#!/usr/bin/env bash
# Real image check (`make image-test`): build the `guardrails` image with podman on a local
# base and run it as its non-root user. No registry is needed: the base comes from debootstrap.
#
#   1. apt-get install podman runc debootstrap when missing (needs root)
#   2. podman configured for this build only (CONTAINERS_CONF / CONTAINERS_STORAGE_CONF in
#      $WORK): runtime runc, cgroupfs, ulimits nofile 20000 / nproc 32768, overlay storage
#   3. localhost/debian:bookworm from `debootstrap --variant=minbase` + `podman import`,
#      with the host's apt sources and apt config (the mirror is a snapshot: no valid-until)
#   4. localhost/profy-python:3.11-bookworm: python3 + python3-venv from Debian on top
#   5. the Dockerfile's `guardrails` target on that base; the host CA bundle is mounted
#      read-only into the build for pip (PIP_CERT), never copied into a layer
#   6. `guardrails --help` as uid 10001, no network, read-only root filesystem; with
#      RUN_DIR set, `guardrails ci /runs/<run>` on the run mounted read-only: exit code
#      and verdict.json checked (EXPECT_EXIT, default: 0 or 1, the verdict must agree)
#   7. figures: image size, build and run times -> $WORK/image-test.json (+ stdout)
#
# Environment: WORK (default /var/tmp/profy-image-test; kept between calls, so a second
# build reuses the base and the dependency layers; `rm -rf` it for a cold measurement),
# RUN_DIR (else a tiny run is trained with PROFY, default .venv/bin/profy), EXPECT_EXIT, TARGET (default guardrails), IMAGE, HOST_CA, KEEP_BASE=0 to
# rebuild the bases, NO_CACHE=1 for a build without layer cache.
set -euo pipefail

ROOT="${PROFY_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
WORK="${WORK:-/var/tmp/profy-image-test}"
TARGET="${TARGET:-guardrails}"
IMAGE="${IMAGE:-localhost/profy-${TARGET}:test}"
HOST_CA="${HOST_CA:-/etc/ssl/certs/ca-certificates.crt}"
DEBIAN_BASE=localhost/debian:bookworm
PY_BASE=localhost/profy-python:3.11-bookworm
SUITE=bookworm

log() { printf '[image-test %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[image-test] FAIL: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" = 0 ] || die "needs root (rootful podman, debootstrap); run as root or in CI"

# ---- 1. tools
missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]} from apt"
  t=$(now)
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    podman runc debootstrap >/dev/null
  log "apt install: $(elapsed "$t") s"
fi

# ---- 2. podman, private to this build
mkdir -p "$WORK/storage" "$WORK/runroot" "$WORK/tmp"
cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "host"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$WORK/tmp"
EOF
cat >"$WORK/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$WORK/storage"
runroot = "$WORK/runroot"
EOF
export CONTAINERS_CONF="$WORK/containers.conf" CONTAINERS_STORAGE_CONF="$WORK/storage.conf"
export TMPDIR="$WORK/tmp"
podman --version

# ---- 3. debian base from debootstrap
if [ "${KEEP_BASE:-1}" = 0 ]; then podman rmi -f "$PY_BASE" "$DEBIAN_BASE" >/dev/null 2>&1 || true; fi
base_s=0
if ! podman image exists "$DEBIAN_BASE"; then
  t=$(now)
  mirror="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  rootfs="$WORK/rootfs"
  rm -rf "$rootfs"
  log "debootstrap --variant=minbase $SUITE from $mirror"
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; die "debootstrap failed"; }
  # The host's apt sources and config: the same mirror (a snapshot, so apt must not check
  # Valid-Until), the same keys. No credentials: auth.conf.d is not copied.
  rm -f "$rootfs/etc/apt/sources.list"
  cp -a /etc/apt/sources.list.d/. "$rootfs/etc/apt/sources.list.d/"
  find "$rootfs/etc/apt/sources.list.d" -name '*.disabled*' -delete
  cp -a /etc/apt/apt.conf.d/. "$rootfs/etc/apt/apt.conf.d/"
  [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$rootfs/etc/apt/sources.list"
  printf 'Acquire::Check-Valid-Until "false";\n' >"$rootfs/etc/apt/apt.conf.d/10no-valid-until"
  rm -rf "$rootfs/var/cache/apt/"*.bin "$rootfs/var/lib/apt/lists/"*
  tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$DEBIAN_BASE" >/dev/null
  rm -rf "$rootfs"
  base_s=$(elapsed "$t")
  log "base $DEBIAN_BASE: ${base_s} s"
fi

# ---- 4. a python base (python3.11 from Debian), the local stand-in for python:3.11-slim
py_s=0
if ! podman image exists "$PY_BASE"; then
  t=$(now)
  mkdir -p "$WORK/pybase"
  cat >"$WORK/pybase/Containerfile" <<EOF
FROM $DEBIAN_BASE
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
EOF
  podman build --quiet --pull=never --network host -t "$PY_BASE" "$WORK/pybase" >"$WORK/pybase.log" 2>&1 \
    || { tail -20 "$WORK/pybase.log"; die "python base build failed"; }
  py_s=$(elapsed "$t")
  log "base $PY_BASE: ${py_s} s"
fi

# ---- 5. the image
[ -r "$HOST_CA" ] || die "no CA bundle at $HOST_CA (set HOST_CA)"
build_args=(--pull=never --network host --target "$TARGET" -t "$IMAGE" -f "$ROOT/Dockerfile"
            --build-arg "BASE_IMAGE=$PY_BASE"
            -v "$HOST_CA:/etc/ssl/certs/host-ca.crt:ro"
            --build-arg PIP_CERT=/etc/ssl/certs/host-ca.crt)
[ "${NO_CACHE:-0}" = 1 ] && build_args+=(--no-cache)
log "podman build --target $TARGET (BASE_IMAGE=$PY_BASE)"
t=$(now)
podman build "${build_args[@]}" "$ROOT" >"$WORK/build.log" 2>&1 \
  || { tail -40 "$WORK/build.log"; die "podman build failed (log: $WORK/build.log)"; }
build_s=$(elapsed "$t")
size_bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")
base_bytes=$(podman image inspect --format '{{.Size}}' "$PY_BASE")
log "built $IMAGE in ${build_s} s: $((size_bytes / 1000000)) MB (base $((base_bytes / 1000000)) MB)"

# Nothing of the build's secrets or host paths in the image. (podman 4.3 leaves the empty
# mount-point file of a `build -v` behind in every stage a RUN ran in: empty is accepted,
# content is not.)
if podman history --no-trunc --format '{{.CreatedBy}}' "$IMAGE" | grep -q 'host-ca.crt.*COPY\|pip.conf'; then
  die "image history mentions the host CA or a pip config"
fi
podman run --rm --network none --entrypoint /bin/sh "$IMAGE" -c \
  'test ! -s /etc/ssl/certs/host-ca.crt && test ! -e /etc/pip.conf && ! command -v gcc && ! command -v pip && ! python3 -c "import torch" 2>/dev/null' \
  || die "the runtime image holds the host CA, a pip config, a compiler, pip or torch"

# ---- 6. run it
run_flags=(--rm --network none --read-only --tmpfs /tmp --user 10001:10001)
t=$(now)
whoami_out=$(podman run "${run_flags[@]}" --entrypoint /usr/bin/id "$IMAGE" -u)
[ "$whoami_out" = 10001 ] || die "runs as uid $whoami_out, not 10001"
podman run "${run_flags[@]}" "$IMAGE" --help >"$WORK/help.txt" || die "guardrails --help failed"
help_s=$(elapsed "$t")
grep -q 'usage: guardrails' "$WORK/help.txt" || die "guardrails --help printed no usage"
log "guardrails --help as uid 10001: ${help_s} s (two container starts)"

# The exit code passes through the entrypoint (2 = bad usage).
set +e
podman run "${run_flags[@]}" "$IMAGE" no-such-command >/dev/null 2>&1
usage_rc=$?
set -e
[ "$usage_rc" = 2 ] || die "a usage error exited $usage_rc in the container, not 2"

ci_s=null ci_rc=null verdict=null
# No run given: train a tiny one on the host (synthetic tiny corpus, 2 epochs, ~1 min).
if [ -z "${RUN_DIR:-}" ] && [ -x "${PROFY:-$ROOT/.venv/bin/profy}" ]; then
  profy_bin="${PROFY:-$ROOT/.venv/bin/profy}"
  log "no RUN_DIR: training a tiny run with $profy_bin"
  t=$(now)
  rm -rf "$WORK/tiny" && mkdir -p "$WORK/tiny"
  "$profy_bin" synth --size tiny --seed 0 --out "$WORK/tiny/corpus" >"$WORK/tiny.log" 2>&1
  "$profy_bin" train --config mm-audiofix --data "$WORK/tiny/corpus" --out "$WORK/tiny/runs" \
    --epochs 2 >>"$WORK/tiny.log" 2>&1 || { tail -20 "$WORK/tiny.log"; die "tiny training failed"; }
  RUN_DIR="$(ls -d "$WORK/tiny/runs"/experiment_* | sort | tail -1)"
  chmod -R a+rX "$WORK/tiny/runs"
  log "tiny run $RUN_DIR: $(elapsed "$t") s"
fi
if [ -n "${RUN_DIR:-}" ]; then
  run_dir="$(cd "$RUN_DIR" && pwd)"
  name="$(basename "$run_dir")"
  reports="$WORK/reports"
  rm -rf "$reports" && mkdir -p "$reports" && chown 10001:10001 "$reports"
  log "guardrails ci /runs/$name (read-only) -> $reports"
  t=$(now)
  set +e
  podman run "${run_flags[@]}" -v "$run_dir:/runs/$name:ro" -v "$reports:/reports" \
    "$IMAGE" ci "/runs/$name" --report-dir /reports --junit /reports/junit.xml \
    >"$WORK/ci.log" 2>&1
  ci_rc=$?
  set -e
  ci_s=$(elapsed "$t")
  tail -20 "$WORK/ci.log"
  log "guardrails ci exit $ci_rc in ${ci_s} s"
  case "${EXPECT_EXIT:-0|1}" in
    *"$ci_rc"*) ;;
    *) die "guardrails ci exited $ci_rc, expected ${EXPECT_EXIT:-0|1}" ;;
  esac
  [ -s "$reports/verdict.json" ] || die "no verdict.json written"
  [ -s "$reports/junit.xml" ] || die "no junit.xml written"
  verdict=$(python3 - "$reports/verdict.json" "$ci_rc" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
rc = int(sys.argv[2])
passed = data.get("passed")
if passed is None:
    passed = str(data.get("verdict", data.get("status", ""))).lower() in ("pass", "passed", "green")
if "exit_code" in data and int(data["exit_code"]) != rc:
    sys.exit(f"verdict.json records exit {data['exit_code']} but the container exited {rc}")
if bool(passed) != (rc == 0):
    sys.exit(f"verdict.json says passed={passed} but the exit code was {rc}")
print("pass" if passed else "fail")
PY
) || die "verdict and exit code disagree"
  log "verdict: $verdict (agrees with exit $ci_rc)"
  verdict="\"$verdict\""
fi

# ---- 7. figures
cat >"$WORK/image-test.json" <<EOF
{"target": "$TARGET", "image": "$IMAGE", "base_image": "$PY_BASE",
 "image_bytes": $size_bytes, "base_bytes": $base_bytes,
 "debian_base_s": $base_s, "python_base_s": $py_s, "build_s": $build_s,
 "help_two_runs_s": $help_s, "ci_s": $ci_s, "ci_exit": $ci_rc, "verdict": $verdict,
 "podman": "$(podman --version | awk '{print $3}')", "measured_at": "$(date -u +%FT%TZ)"}
EOF
cat "$WORK/image-test.json"
log "OK"
