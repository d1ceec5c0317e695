#!/usr/bin/env bash
# deploy/test/systemd.sh: checks deploy/systemd/lamina.service without a running systemd.
#
# Works in a container or VM where systemd is not PID 1: systemd-analyze loads units offline.
# It runs against a scratch root (--root) holding the distribution's units (so targets such as
# sysinit.target resolve), the unit under test, the sysusers file and a real `lamina` binary (verify
# checks that ExecStart= is executable). Checks:
#   1. systemd-analyze verify prints nothing (it exits 0 even on unknown keys and bad values, so
#      any output counts as a failure), proven able to fail by a broken copy first;
#   2. systemd-sysusers creates the `lamina` user from lamina.sysusers.conf;
#   3. the exposure score of `systemd-analyze security --offline` stays at or below 2.5;
#   4. the system call filter allows every call a tokio + io_uring storage server makes;
#   5. the settings the deployment relies on are present (restart policy, state directory, user).
#
# Usage: deploy/test/systemd.sh
# Environment: LAMINA_BIN (default: build/release/lamina or build/debug/lamina, else a debug build).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly REPO_ROOT
readonly UNIT=$REPO_ROOT/deploy/systemd/lamina.service
readonly SYSUSERS=$REPO_ROOT/deploy/systemd/lamina.sysusers.conf
# systemd-analyze security --threshold is on a 0-100 scale: 25 is an exposure of 2.5.
readonly MAX_EXPOSURE=25
# What a tokio runtime with io_uring, file and block-device I/O and TCP serving calls (x86-64
# names). A call missing here would be an EPERM at run time, far from this file.
readonly NEEDED_SYSCALLS="read write pread64 pwrite64 readv writev preadv2 pwritev2 openat close
fstat newfstatat statx lseek fsync fdatasync sync_file_range fallocate ftruncate renameat2 unlinkat
mkdirat fchmod flock ioctl mmap munmap mprotect madvise mremap brk io_uring_setup io_uring_enter
io_uring_register epoll_create1 epoll_ctl epoll_wait epoll_pwait eventfd2 socket bind listen
accept4 connect setsockopt getsockopt getsockname getpeername sendto recvfrom sendmsg recvmsg
shutdown clone3 futex rseq set_robust_list sched_getaffinity sched_yield getrandom prctl
sigaltstack rt_sigaction rt_sigprocmask rt_sigreturn prlimit64 exit_group clock_nanosleep
clock_gettime getpid gettid tgkill uname"

PASSED=0
FAILED=0
ROOT=""

log() { printf '%s [systemd.sh] %s\n' "$(date +%T)" "$*"; }

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

ensure_systemd_tools() {
    if ! command -v systemd-analyze >/dev/null || ! command -v systemd-sysusers >/dev/null; then
        log "installing systemd (its tools work without systemd as PID 1)"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
    fi
    log "$(systemd-analyze --version | head -n 1); PID 1 here is $(tr '\0' ' ' </proc/1/cmdline | cut -c1-40)"
}

# Prints the path of a lamina binary, building one when none exists.
find_binary() {
    local target=${CARGO_TARGET_DIR:-$REPO_ROOT/build} candidate
    for candidate in "${LAMINA_BIN:-}" "$target/release/lamina" "$target/debug/lamina"; do
        if [[ -n $candidate && -x $candidate ]]; then
            echo "$candidate"
            return 0
        fi
    done
    log "no lamina binary: cargo build -p lamina-target" >&2
    (cd "$REPO_ROOT" && cargo build --locked -p lamina-target >&2)
    echo "$target/debug/lamina"
}

# The scratch root: distribution units, the unit under test, sysusers file, lamina binary.
make_root() {
    local binary=$1
    ROOT=$(mktemp -d)
    mkdir -p "$ROOT/usr/lib/systemd" "$ROOT/etc/systemd/system" "$ROOT/usr/local/bin" \
        "$ROOT/usr/lib/sysusers.d" "$ROOT/etc"
    cp -a /usr/lib/systemd/system "$ROOT/usr/lib/systemd/"
    install -m 0755 "$binary" "$ROOT/usr/local/bin/lamina"
    install -m 0644 "$UNIT" "$ROOT/etc/systemd/system/lamina.service"
    install -m 0644 "$SYSUSERS" "$ROOT/usr/lib/sysusers.d/lamina.conf"
}

# verify_quiet UNIT_NAME: systemd-analyze verify with no output at all.
verify_quiet() {
    local out
    out=$(systemd-analyze verify --root="$ROOT" --man=no "$1" 2>&1) || {
        printf '%s\n' "$out" >&2
        return 1
    }
    [[ -z $out ]] || {
        printf '%s\n' "$out" >&2
        return 1
    }
}

broken_unit_is_flagged() { ! verify_quiet lamina-broken.service 2>/dev/null; }

check_verify() {
    sed -e 's/^KillSignal=/KilSignal=/' -e 's/^ProtectSystem=strict/ProtectSystem=strictly/' \
        "$UNIT" >"$ROOT/etc/systemd/system/lamina-broken.service"
    check "self-test: verify flags a misspelt key and a bad value" broken_unit_is_flagged
    rm "$ROOT/etc/systemd/system/lamina-broken.service"
    check "systemd-analyze verify lamina.service: clean" verify_quiet lamina.service
}

root_has_lamina_user() { grep -q '^lamina:' "$ROOT/etc/passwd" && grep -q '^lamina:' "$ROOT/etc/group"; }

check_sysusers() {
    systemd-sysusers --root="$ROOT" >/dev/null 2>&1 || true
    check "systemd-sysusers creates user and group lamina" root_has_lamina_user
}

check_security() {
    local score
    score=$(systemd-analyze security --offline=true --root="$ROOT" lamina.service 2>&1 |
        sed -n 's/.*Overall exposure level for lamina.service: \([0-9.]*\).*/\1/p')
    log "exposure level: ${score:-unknown} (systemd-analyze security --offline)"
    check "exposure level at most $((MAX_EXPOSURE / 10)).$((MAX_EXPOSURE % 10))" exposure_within_threshold
}

exposure_within_threshold() {
    systemd-analyze security --offline=true --root="$ROOT" --threshold="$MAX_EXPOSURE" lamina.service >/dev/null 2>&1
}

# expand GROUP: prints the system calls of a filter group, nested groups expanded.
expand() {
    local name
    while read -r name; do
        case $name in
        "" | \#*) ;;
        @*) expand "$name" ;;
        *) echo "$name" ;;
        esac
    done < <(systemd-analyze syscall-filter "$1" | tail -n +2)
}

# Prints the calls the unit's SystemCallFilter= lines allow (allow lists minus ~deny lists).
allowed_syscalls() {
    local line word allow="" deny=""
    while IFS= read -r line; do
        line=${line#SystemCallFilter=}
        if [[ $line == ~* ]]; then
            for word in ${line#\~}; do deny+=$'\n'$( [[ $word == @* ]] && expand "$word" || echo "$word"); done
        else
            for word in $line; do allow+=$'\n'$( [[ $word == @* ]] && expand "$word" || echo "$word"); done
        fi
    done < <(grep '^SystemCallFilter=' "$UNIT")
    comm -23 <(sort -u <<<"$allow") <(sort -u <<<"$deny")
}

check_syscalls() {
    local allowed missing=() call
    allowed=$(allowed_syscalls)
    for call in $NEEDED_SYSCALLS; do
        grep -qx "$call" <<<"$allowed" || missing+=("$call")
    done
    ((${#missing[@]} == 0)) || log "not allowed: ${missing[*]}" >&2
    check "SystemCallFilter allows the calls Lamina needs ($(wc -w <<<"$NEEDED_SYSCALLS") checked)" \
        test "${#missing[@]}" -eq 0
    check "SystemCallFilter denies @privileged (e.g. setuid)" fails grep -qx setuid <<<"$allowed"
}

# fails COMMAND...: succeeds when COMMAND fails (negative checks).
fails() { ! "$@"; }

# has SETTING: the unit sets exactly this line.
has() { grep -qx -- "$1" "$UNIT"; }

check_settings() {
    check "Restart=on-failure" has "Restart=on-failure"
    check "StateDirectory=lamina" has "StateDirectory=lamina"
    check "runs as User=lamina (not root)" has "User=lamina"
    check "no capabilities (CapabilityBoundingSet empty)" has "CapabilityBoundingSet="
    check "ExecStart runs lamina serve" has "ExecStart=/usr/local/bin/lamina serve"
    local stop_timeout
    stop_timeout=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$UNIT")
    check "stop timeout leaves time to drain (TimeoutStopSec=${stop_timeout:-unset} >= 60)" \
        test "${stop_timeout:-0}" -ge 60
    check "block devices stay reachable (no PrivateDevices=yes)" fails has "PrivateDevices=yes"
}

main() {
    ensure_systemd_tools
    local binary
    binary=$(find_binary)
    log "ExecStart binary for verify: $binary"
    make_root "$binary"
    trap 'rm -rf "$ROOT"' EXIT
    check_verify
    check_sysusers
    check_security
    check_syscalls
    check_settings
    echo "systemd.sh: $PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

main "$@"
