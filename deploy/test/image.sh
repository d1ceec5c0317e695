#!/usr/bin/env bash
# deploy/test/image.sh: CI proof that deploy/Dockerfile builds unchanged and the image runs as
# documented, on a machine with no Docker engine and no container registry.
#
# How: Debian's buildah builds images with `--isolation chroot` (no daemon, no runtime). The two
# base images the Dockerfile's FROM lines name cannot be pulled, so this script makes them
# locally and tags them with exactly those names:
#   - docker.io/library/debian:bookworm-slim: a `debootstrap --variant=minbase` rootfs from the
#     Debian mirror this machine's apt uses, trimmed the way the official slim image is;
#   - docker.io/library/rust:X.Y-bookworm: that rootfs plus gcc/libc6-dev/libssl-dev/pkg-config/
#     ca-certificates (the official image has them from buildpack-deps) and the
#     host's Rust X.Y toolchain (rustup layout, same ENV as the official image), since no
#     toolchain can be downloaded here. The host's extra CA certificates go in too, so cargo in the
#     builder trusts what cargo on the host trusts (a TLS-inspecting egress proxy, for instance).
# Then `buildah bud` builds deploy/Dockerfile as is, and the checks run the image's entrypoint in a
# chroot with the image's user.
#
# Usage: deploy/test/image.sh            build and check (as root)
#        deploy/test/image.sh --clean    drop the cache (base images, cargo caches, rootfs)
# Environment:
#   LAMINA_IMAGE_CACHE    cache dir (default ~/.cache/lamina-image): rootfs tarball, buildah
#                         storage with the base images, cargo registry and build caches.
#   LAMINA_IMAGE_TAG      tag of the built image (default localhost/lamina:ci).
#   LAMINA_DEBIAN_MIRROR  Debian mirror URL (default: the one apt uses on this machine).
#   LAMINA_IMAGE_BASE_MAX_AGE_DAYS  rebuild the cached rootfs when older (default 30).
#   LAMINA_IMAGE_MAX_MB   fail if the runtime image is larger (default 200).
#   LAMINA_IMAGE_SERVER_CHECKS  auto (default), 1 or 0: the checks against a running
#                         `lamina serve` (HOOK(server) below); auto runs them unless the binary is
#                         the placeholder whose serve says "not built yet".
#
# Checks today: image metadata (ENTRYPOINT, CMD, USER, VOLUME, EXPOSE, HEALTHCHECK, size), the
# entrypoint runs as user lamina, the data volume is writable by it and the system is not, no
# toolchain left in the image, and the HEALTHCHECK script against a stand-in HTTP server.
# HOOK(server) and HOOK(initiator) mark where /healthz, /readyz, /metrics, initiator I/O and the
# SIGTERM drain are checked against the real server.
#
# Networking: chroot isolation shares the host's network namespace; buildah bind-mounts the host's
# /etc/resolv.conf and writes /etc/hosts, and passes *_proxy variables through (--http-proxy
# defaults to true). So apt in the base-image steps and cargo in the builder stage reach Debian's
# mirror and crates.io exactly as the host does.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly REPO_ROOT
readonly DOCKERFILE=$REPO_ROOT/deploy/Dockerfile
readonly CACHE=${LAMINA_IMAGE_CACHE:-$HOME/.cache/lamina-image}
readonly IMAGE_TAG=${LAMINA_IMAGE_TAG:-localhost/lamina:ci}
readonly BASE_MAX_AGE_DAYS=${LAMINA_IMAGE_BASE_MAX_AGE_DAYS:-30}
readonly IMAGE_MAX_MB=${LAMINA_IMAGE_MAX_MB:-200}
readonly SUITE=bookworm
# Bump when the way base images are made changes: cached base images with another recipe are
# rebuilt.
readonly RECIPE=2
# buildah's run state (locks, mount bookkeeping) belongs on tmpfs; its image store in the cache.
readonly RUNROOT=/run/lamina-image-buildah
readonly STORAGE=$CACHE/storage

# The image contract from deploy/Dockerfile that the checks hold it to.
readonly WANT_USER_NAME=lamina
readonly WANT_UID=10001
readonly WANT_ENTRYPOINT='["lamina"]'
readonly WANT_CMD='["serve", "--listen", "0.0.0.0:4420", "--data-dir", "/var/lib/lamina", "--metrics", "0.0.0.0:9440"]'
readonly DATA_DIR=/var/lib/lamina

PASSED=0
FAILED=0
CONTAINER=""
BG_PIDS=()
TIMINGS=()
SCRATCH=""

log() { printf '%s [image.sh] %s\n' "$(date +%T)" "$*"; }
die() {
    log "FATAL: $*" >&2
    exit 1
}
step() { printf '\n==> [image.sh] %s (%s)\n' "$*" "$(date +%T)"; }

bah() { buildah --root "$STORAGE" --runroot "$RUNROOT" "$@"; }

# bah_run ARGS...: `buildah run`, retried when buildah's own re-exec fails before the command
# starts. buildah copies itself into a sealed memfd to run the chroot runtime, and the kernel
# sometimes refuses the seal with EBUSY ("Close_Fd sealing memfd copy: Device or resource busy",
# seen about once in a few hundred runs here); the command never ran, so running it again is safe.
bah_run() {
    local attempt err rc
    err=$(mktemp)
    for attempt in 1 2 3; do
        rc=0
        buildah --root "$STORAGE" --runroot "$RUNROOT" run "$@" 2>"$err" || rc=$?
        cat "$err" >&2
        if ((rc == 0)) || ! grep -q 'sealing memfd copy' "$err"; then
            break
        fi
        log "buildah run: memfd seal refused (EBUSY), retrying ($attempt/3)" >&2
    done
    rm -f "$err"
    return "$rc"
}

# check DESCRIPTION COMMAND...: runs COMMAND, records pass or fail, never aborts the run.
check() {
    local what=$1
    shift
    if "$@"; then
        PASSED=$((PASSED + 1))
        log "ok   - $what"
    else
        FAILED=$((FAILED + 1))
        log "FAIL - $what" >&2
    fi
}

# timed LABEL COMMAND...: runs COMMAND and records its wall time for the summary. Not in an
# `||` or `if` context, so errexit keeps applying inside COMMAND: a failing step ends the run.
timed() {
    local label=$1 start
    shift
    start=$(date +%s)
    "$@"
    TIMINGS+=("$(printf '%-42s %4ss' "$label" $(($(date +%s) - start)))")
}

cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n $CONTAINER ]]; then
        bah rm "$CONTAINER" >/dev/null 2>&1 || true
    fi
    if [[ -n $SCRATCH ]]; then
        rm -rf "$SCRATCH"
    fi
}

# The base images (debootstrap rootfs, debian:bookworm-slim, rust:X.Y-bookworm): image_bases.sh.
# shellcheck source=deploy/test/image_bases.sh
source "$REPO_ROOT/deploy/test/image_bases.sh"

# ---------------------------------------------------------------------------------------------
# Host preparation
# ---------------------------------------------------------------------------------------------

ensure_packages() {
    local missing=() cmd pkg
    for cmd in buildah:buildah debootstrap:debootstrap python3:python3 curl:curl flock:util-linux; do
        command -v "${cmd%%:*}" >/dev/null 2>&1 || missing+=("${cmd#*:}")
    done
    # buildah's overlay driver and chroot isolation need nothing else as root.
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    for pkg in buildah debootstrap; do
        command -v "$pkg" >/dev/null || die "$pkg is still missing after apt-get install"
    done
    log "$(buildah --version)"
}

# Sets RUST_IMAGE and RUNTIME_IMAGE from the Dockerfile's FROM lines, and RUST_VERSION from the
# builder's tag. Anything else in FROM is a change this script must learn about: fail loudly.
read_from_lines() {
    local image
    RUST_IMAGE="" RUNTIME_IMAGE=""
    while read -r image; do
        case $image in
        docker.io/library/rust:*-"$SUITE") RUST_IMAGE=$image ;;
        docker.io/library/debian:"$SUITE"-slim) RUNTIME_IMAGE=$image ;;
        *) die "deploy/Dockerfile: FROM $image: this test only knows how to make docker.io/library/rust:X.Y-$SUITE and docker.io/library/debian:$SUITE-slim locally" ;;
        esac
    done < <(awk 'toupper($1) == "FROM" { for (i = 2; i <= NF; i++) if ($i !~ /^--/) { print $i; break } }' "$DOCKERFILE")
    [[ -n $RUST_IMAGE && -n $RUNTIME_IMAGE ]] ||
        die "deploy/Dockerfile: expected a rust:X.Y-$SUITE builder and a debian:$SUITE-slim runtime FROM"
    RUST_VERSION=${RUST_IMAGE##*:}
    RUST_VERSION=${RUST_VERSION%-"$SUITE"}
    [[ $RUST_VERSION =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]] || die "cannot read a Rust version from $RUST_IMAGE"
    log "FROM images: $RUST_IMAGE (Rust $RUST_VERSION), $RUNTIME_IMAGE"
}

# ---------------------------------------------------------------------------------------------
# The image under test
# ---------------------------------------------------------------------------------------------

build_image() {
    local old
    old=$(bah inspect --type image --format '{{.FromImageID}}' "$IMAGE_TAG" 2>/dev/null || true)
    # TMPDIR: buildah keeps RUN --mount=type=cache directories under $TMPDIR/buildah-cache, so
    # the cargo registry and build caches of the Dockerfile persist in the cache dir.
    local attempt rc
    for attempt in 1 2 3; do
        rc=0
        TMPDIR=$CACHE/tmp bah bud --isolation chroot --format docker --pull=never \
            --build-arg "LAMINA_GIT_COMMIT=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
            -f "$DOCKERFILE" -t "$IMAGE_TAG" "$REPO_ROOT" 2>&1 | tee "$SCRATCH/bud.log" || rc=$?
        # See bah_run: a RUN step whose chroot runtime could not start is safe to build again.
        if ((rc == 0)) || ! grep -q 'sealing memfd copy' "$SCRATCH/bud.log"; then
            break
        fi
        log "buildah bud: memfd seal refused (EBUSY) in a RUN step, building again ($attempt/3)"
    done
    ((rc == 0)) || die "buildah bud failed (exit $rc)"
    local new
    new=$(bah inspect --type image --format '{{.FromImageID}}' "$IMAGE_TAG")
    if [[ -n $old && $old != "$new" ]]; then
        bah rmi "$old" >/dev/null 2>&1 || true
    fi
    log "built $IMAGE_TAG (${new:0:12})"
}

# image_config_json: the image's Docker config (HEALTHCHECK lives only in the Docker format).
image_config_json() {
    bah inspect --type image "$IMAGE_TAG" | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["Docker"]["config"]))'
}

# config_field FIELD: prints one config field as JSON.
config_field() {
    python3 -c 'import json, sys; print(json.dumps(json.loads(sys.argv[1]).get(sys.argv[2])))' "$IMAGE_CONFIG" "$1"
}

check_metadata() {
    IMAGE_CONFIG=$(image_config_json)
    check "ENTRYPOINT is $WANT_ENTRYPOINT" [ "$(config_field Entrypoint)" = "$WANT_ENTRYPOINT" ]
    check "CMD is $WANT_CMD" [ "$(config_field Cmd)" = "$WANT_CMD" ]
    check "USER is $WANT_UID:$WANT_UID (numeric, for runAsNonRoot)" [ "$(config_field User)" = "\"$WANT_UID:$WANT_UID\"" ]
    check "VOLUME $DATA_DIR" grep -q "\"$DATA_DIR\"" <<<"$(config_field Volumes)"
    check "EXPOSE 4420/tcp and 9440/tcp" [ "$(config_field ExposedPorts)" = '{"4420/tcp": {}, "9440/tcp": {}}' ]
    check "HEALTHCHECK runs lamina-healthcheck" grep -q '"Test": \["CMD", "lamina-healthcheck"\]' <<<"$(config_field Healthcheck)"
    check "ENV LAMINA_RPC_SOCKET points into the data volume" \
        grep -q "\"LAMINA_RPC_SOCKET=$DATA_DIR/lamina.sock\"" <<<"$(config_field Env)"
}

# in_image ARGS...: runs a command in the test container as the image's user.
in_image() { bah_run --isolation chroot "$CONTAINER" -- "$@"; }

# fails COMMAND...: succeeds when COMMAND fails (for negative checks).
fails() { ! "$@"; }

check_runtime_basics() {
    local version want_version
    CONTAINER=$(bah from --pull=never --name "lamina-image-test-$$" "$IMAGE_TAG")
    local size_mb
    size_mb=$(du -sxm "$(bah mount "$CONTAINER")" | cut -f1)
    bah umount "$CONTAINER" >/dev/null
    log "runtime image root filesystem: $size_mb MB"
    check "runtime image is at most $IMAGE_MAX_MB MB ($size_mb MB)" [ "$size_mb" -le "$IMAGE_MAX_MB" ]
    check "runs as user $WANT_USER_NAME" [ "$(in_image id -un)" = "$WANT_USER_NAME" ]
    check "runs as uid $WANT_UID, not root" [ "$(in_image id -u)" = "$WANT_UID" ]
    want_version=$(sed -n -E '/^\[workspace\.package\]/,/^\[/ s/^version = "([^"]+)"/\1/p' "$REPO_ROOT/Cargo.toml")
    version=$(in_image lamina --version 2>&1 || true)
    log "lamina --version: $version"
    check "entrypoint binary runs and reports version $want_version" grep -q -- "$want_version" <<<"$version"
    check "binary resolves all its shared libraries" fails grep -q 'not found' <<<"$(in_image ldd /usr/local/bin/lamina 2>&1)"
    check "data dir $DATA_DIR is writable by $WANT_USER_NAME" \
        in_image sh -c "test -O $DATA_DIR && echo probe >$DATA_DIR/.probe && grep -qx probe $DATA_DIR/.probe && rm $DATA_DIR/.probe"
    check "system dirs are not writable (non-root)" in_image sh -c '! touch /usr/local/bin/.probe 2>/dev/null'
    check "no compiler toolchain in the runtime image" in_image sh -c '! command -v cargo && ! command -v rustc && ! command -v cc'
    check "no curl/wget needed: health check script present" in_image test -x /usr/local/bin/lamina-healthcheck
}

# free_port: prints a TCP port free on 127.0.0.1 right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The HEALTHCHECK script against a stand-in HTTP server on loopback: 200 is healthy, anything
# else (404, refused) is not. Chroot isolation shares the host's network, so the container
# reaches the stand-in at 127.0.0.1.
check_healthcheck_script() {
    local port closed_port docroot pid
    docroot=$SCRATCH/http
    mkdir -p "$docroot"
    echo ok >"$docroot/healthz"
    port=$(free_port)
    closed_port=$(free_port)
    while [[ $closed_port == "$port" ]]; do closed_port=$(free_port); done
    python3 -m http.server --bind 127.0.0.1 --directory "$docroot" "$port" >"$SCRATCH/http.log" 2>&1 &
    pid=$!
    BG_PIDS+=("$pid")
    for _ in $(seq 50); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break
        sleep 0.1
    done
    check "healthcheck: 200 on /healthz is healthy" \
        in_image env LAMINA_HEALTHCHECK_ADDR="0.0.0.0:$port" lamina-healthcheck
    check "healthcheck: LAMINA_METRICS is followed" \
        in_image env LAMINA_METRICS="127.0.0.1:$port" lamina-healthcheck
    check "healthcheck: 404 is unhealthy" \
        fails in_image env LAMINA_HEALTHCHECK_ADDR="127.0.0.1:$port" LAMINA_HEALTHCHECK_PATH=/readyz lamina-healthcheck
    check "healthcheck: connection refused is unhealthy" \
        fails in_image env LAMINA_HEALTHCHECK_ADDR="127.0.0.1:$closed_port" lamina-healthcheck
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# HOOK(server): checks that need `lamina serve` (target, management and observability issues).
# They switch on by themselves once `serve` is more than the placeholder (see
# server_checks_skip_reason).
# ---------------------------------------------------------------------------------------------

image_has_server() { in_image lamina serve --help >/dev/null 2>&1; }

# lamina_pid BUILDAH_PID: prints the host PID of the lamina process under a `buildah run`.
# Chroot isolation keeps the host's PID namespace, so the process is visible (and signalable).
lamina_pid() {
    local parent=$1 child
    for child in $(pgrep -P "$parent" || true); do
        if [[ $(cat "/proc/$child/comm" 2>/dev/null) == lamina ]]; then
            echo "$child"
            return 0
        fi
        lamina_pid "$child" && return 0
    done
    return 1
}

# The image's CMD with the two wildcard binds moved to loopback ports (a CI machine exposes
# nothing), run through the image's ENTRYPOINT.
server_argv() {
    python3 - "$IMAGE_CONFIG" "$1" "$2" <<'EOF'
import json, sys
config, nvme_port, metrics_port = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
argv = config["Entrypoint"] + config["Cmd"]
swap = {"--listen": f"127.0.0.1:{nvme_port}", "--metrics": f"127.0.0.1:{metrics_port}"}
out = []
for i, arg in enumerate(argv):
    out.append(swap[argv[i - 1]] if i > 0 and argv[i - 1] in swap else arg)
print("\0".join(out), end="")
EOF
}

# Prints why the server checks do not apply to this image, or nothing when they do.
# LAMINA_IMAGE_SERVER_CHECKS=1 forces them, =0 skips them; by default they run unless the
# binary is the placeholder whose `serve` says "not built yet". So they switch on by themselves
# when the server lands, and a server that dies at start-up for any other reason fails them.
server_checks_skip_reason() {
    local log=$1
    case ${LAMINA_IMAGE_SERVER_CHECKS:-auto} in
    0) echo "LAMINA_IMAGE_SERVER_CHECKS=0" ;;
    1) ;;
    *) grep -q 'not built yet' "$log" && echo "lamina serve is the placeholder ('$(head -n 1 "$log")')" ;;
    esac
    return 0
}

# promtool_clean TEXT: a non-empty exposition that promtool accepts without lint warnings.
promtool_clean() { [[ -n $1 ]] && promtool check metrics <<<"$1"; }

check_server() {
    local nvme_port metrics_port argv=() run_pid pid attempt rc=0 metrics skip
    nvme_port=$(free_port)
    metrics_port=$(free_port)
    mapfile -d '' -t argv < <(server_argv "$nvme_port" "$metrics_port")
    log "starting: ${argv[*]}"
    for attempt in 1 2 3; do
        bah run --isolation chroot "$CONTAINER" -- "${argv[@]}" >"$SCRATCH/serve.log" 2>&1 &
        run_pid=$!
        BG_PIDS+=("$run_pid")
        sleep 1
        # See bah_run: the chroot runtime may fail to start before lamina does.
        if kill -0 "$run_pid" 2>/dev/null || ! grep -q 'sealing memfd copy' "$SCRATCH/serve.log"; then
            break
        fi
        log "buildah run: memfd seal refused (EBUSY), starting again ($attempt/3)"
    done

    # The HEALTHCHECK as Docker would run it: no override, it finds --metrics on the process.
    for _ in $(seq 120); do
        kill -0 "$run_pid" 2>/dev/null || break
        in_image lamina-healthcheck >/dev/null 2>&1 && break
        sleep 0.5
    done
    if ! kill -0 "$run_pid" 2>/dev/null; then
        wait "$run_pid" || rc=$?
        skip=$(server_checks_skip_reason "$SCRATCH/serve.log")
        if [[ -n $skip ]]; then
            log "HOOK(server): $skip: /healthz, /readyz, /metrics, initiator I/O and SIGTERM drain NOT CHECKED"
            return 0
        fi
        check "server: lamina serve stays up (it exited with status $rc)" false
        tail -n 50 "$SCRATCH/serve.log" >&2 || true
        return 0
    fi
    check "server: HEALTHCHECK reports healthy (finds --metrics on the process)" in_image lamina-healthcheck
    check "server: /readyz answers 200" curl -fsS -o /dev/null "http://127.0.0.1:$metrics_port/readyz"
    metrics=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics" || true)
    check "server: /metrics scrapes and exposes lamina_ series" grep -q '^lamina_' <<<"$metrics"
    if command -v promtool >/dev/null; then
        check "server: promtool check metrics is clean" promtool_clean "$metrics"
    fi

    check "server: lamina rpc in the image reaches the server (LAMINA_RPC_SOCKET)" \
        in_image lamina rpc spdk_get_version

    # HOOK(initiator): our Rust initiator connects to 127.0.0.1:$nvme_port, writes a pattern to
    # the default namespace (nqn.2026-11.io.lamina:default), reads it back and compares.
    check_initiator "$nvme_port"

    # SIGTERM drains and exits 0; buildah run passes the exit status through.
    pid=$(lamina_pid "$run_pid") || pid=""
    check "server: lamina process found for SIGTERM" [ -n "$pid" ]
    [[ -z $pid ]] || kill -TERM "$pid"
    for _ in $(seq 240); do
        kill -0 "$run_pid" 2>/dev/null || break
        sleep 0.5
    done
    wait "$run_pid" || rc=$?
    check "server: SIGTERM drains and exits 0 (exit $rc)" [ "$rc" -eq 0 ]
    check "server: embedded default lvstore created in the data volume" in_image test -s "$DATA_DIR/lvs0.img"
    if ((FAILED)); then
        log "serve log (last 50 lines):"
        tail -n 50 "$SCRATCH/serve.log" >&2 || true
    fi
}

check_initiator() {
    local port=$1 perf=${LAMINA_PERF:-$REPO_ROOT/build/release/lamina-perf}
    if [[ ! -x $perf ]]; then
        log "building lamina-perf (our initiator) for the I/O check"
        (cd "$REPO_ROOT" && cargo build --release --locked -p lamina-integration --bin lamina-perf) >&2
    fi
    # Our Rust initiator writes self-describing blocks to the default namespace and reads every
    # one back (--verify), in the capsule and by R2T, then once more with both digests.
    check "initiator: 4 KiB random writes and reads verified (lamina-perf --verify)" \
        "$perf" -a "127.0.0.1:$port" -n nqn.2026-11.io.lamina:default -w randrw -M 50 \
        -q 16 -o 4k -t 2 --verify
    check "initiator: 128 KiB writes by R2T with both digests verified" \
        "$perf" -a "127.0.0.1:$port" -n nqn.2026-11.io.lamina:default -w write \
        -q 4 -o 128k -t 1 --digest hdr,data --verify
}

# ---------------------------------------------------------------------------------------------

clean_cache() {
    [[ -d $CACHE ]] || return 0
    bah rm --all >/dev/null 2>&1 || true
    bah rmi --all --force >/dev/null 2>&1 || true
    # Unmount anything buildah left mounted under the store before deleting it.
    grep -o " ${STORAGE}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$CACHE"
    log "removed $CACHE"
}

main() {
    [[ $(id -u) -eq 0 ]] || die "run as root (buildah chroot isolation and debootstrap need it)"
    [[ -f $DOCKERFILE ]] || die "missing $DOCKERFILE"
    if [[ ${1:-} == --clean ]]; then
        clean_cache
        return 0
    fi
    mkdir -p "$CACHE/tmp" "$RUNROOT"
    # One run at a time per cache: two would fight over the same rootfs, images and cargo caches.
    exec 9>"$CACHE/lock"
    flock -w 1800 9 || die "another image.sh holds $CACHE/lock"
    SCRATCH=$(mktemp -d "$CACHE/tmp/run.XXXXXX")
    trap cleanup EXIT
    trap "exit 130" INT TERM

    local start
    start=$(date +%s)
    step "tools and inputs"
    timed "tools" ensure_packages
    detect_mirrors
    read_from_lines
    find_host_toolchain

    step "base images (cached under $CACHE)"
    timed "rootfs (debootstrap)" make_rootfs
    timed "$RUNTIME_IMAGE" make_runtime_base
    timed "$RUST_IMAGE" make_builder

    step "buildah bud -f deploy/Dockerfile (unchanged)"
    timed "build deploy/Dockerfile" build_image

    step "image contract"
    check_metadata
    timed "runtime checks" check_runtime_basics
    check_healthcheck_script

    step "HOOK(server): lamina serve in the image, on loopback"
    if [[ ${LAMINA_IMAGE_SERVER_CHECKS:-auto} == 0 ]]; then
        log "HOOK(server): LAMINA_IMAGE_SERVER_CHECKS=0: server checks NOT RUN"
    elif image_has_server; then
        timed "server checks" check_server
    else
        log "HOOK(server): this lamina has no 'serve' subcommand: server checks NOT RUN"
        [[ ${LAMINA_IMAGE_SERVER_CHECKS:-auto} != 1 ]] || check "lamina serve exists" false
    fi

    # Images left untagged by a rebuilt base (its old version, still under the old builder when
    # it was replaced) serve nothing: keep the cache at one copy of each image.
    bah rmi --prune >/dev/null 2>&1 || true

    step "summary"
    printf '  %s\n' "${TIMINGS[@]}"
    log "total $(($(date +%s) - start))s; image $IMAGE_TAG in $STORAGE"
    log "inspect it with: buildah --root $STORAGE --runroot $RUNROOT inspect $IMAGE_TAG"
    echo "image.sh: $PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

# Sourcing the script (for debugging one check by hand) defines the functions and runs nothing.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
