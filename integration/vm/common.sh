# shellcheck shell=bash
# Host-side helpers shared by build-base.sh and run.sh (sourced, not executed): the cache
# location, logging, and installing the host tools the VM harness needs.

# shellcheck disable=SC2034 # used by the scripts that source this file
LAMINA_VM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LAMINA_VM_CACHE="${LAMINA_VM_CACHE:-${HOME:-/root}/.cache/lamina-vm}"

# Host packages and the command each one must provide (Debian 12 names).
LAMINA_VM_HOST_PKGS=(qemu-system-x86 cpio kmod xz-utils)
LAMINA_VM_HOST_CMDS=(qemu-system-x86_64 cpio depmod xz)

# The Debian suites a guest can be built from (build-base.sh --suite, run.sh --suite).
LAMINA_VM_SUITES=(bookworm trixie)

# Prints the calling script's header comment (its usage text).
vm_usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

vm_check_suite() {
    local s
    for s in "${LAMINA_VM_SUITES[@]}"; do [[ $1 == "$s" ]] && return 0; done
    vm_die "unknown suite '$1' (known: ${LAMINA_VM_SUITES[*]})"
}

# Where the base of suite $1 is cached.
vm_suite_cache() { printf '%s/%s\n' "$LAMINA_VM_CACHE" "$1"; }

# Transparent huge pages of the guest kernel: bookworm's 6.1 BUGs in hardened usercopy
# (mm/usercopy.c) when nvme-tcp sends THP-backed pages over loopback, so THP is off there; it
# stays on with trixie's 6.12, which does not have that bug.
vm_suite_thp() {
    case "$1" in
    bookworm) echo never ;;
    *) echo always ;;
    esac
}

vm_log() { printf '[lamina-vm %s] %s\n' "$(date +%T)" "$*" >&2; }
vm_die() { vm_log "error: $*"; exit 1; }

# Runs `apt-get update` at most once per process. Extra third-party sources that are unreachable
# make apt-get exit non-zero while Debian's own lists were refreshed fine, so a failure is only a
# warning here: whatever we then fail to find or download is reported precisely by the caller.
APT_UPDATED=0
vm_apt_update() {
    [[ $APT_UPDATED == 1 ]] && return 0
    APT_UPDATED=1
    if [[ $(id -u) != 0 ]]; then
        vm_log "not root: skipping apt-get update (package lists may be stale)"
        return 0
    fi
    vm_log "apt-get update"
    if ! DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2; then
        vm_log "warning: apt-get update reported errors; continuing with the lists it fetched"
    fi
}

# Installs the host packages whose commands are missing. Needs root when something is missing.
vm_ensure_host_tools() {
    local missing=() i
    for i in "${!LAMINA_VM_HOST_CMDS[@]}"; do
        if ! command -v "${LAMINA_VM_HOST_CMDS[$i]}" >/dev/null 2>&1 &&
            ! [[ -x /usr/sbin/${LAMINA_VM_HOST_CMDS[$i]} || -x /sbin/${LAMINA_VM_HOST_CMDS[$i]} ]]; then
            missing+=("${LAMINA_VM_HOST_PKGS[$i]}")
        fi
    done
    ((${#missing[@]} == 0)) && return 0
    [[ $(id -u) == 0 ]] ||
        vm_die "missing host packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})"
    vm_apt_update
    vm_log "installing host packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
        vm_die "apt-get install ${missing[*]} failed"
}

# depmod and ldconfig live in /usr/sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
