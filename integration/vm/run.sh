#!/usr/bin/env bash
# Boots the Lamina test VM once and runs one guest script in it: makes sure the cached base of
# the suite exists (build-base.sh), packs a small per-run initramfs (the script as
# /test/run.sh, the other *.sh and *.py files of its folder beside it, the given binaries in
# /test/bin with the shared libraries the guest lacks), appends it to the base one, boots qemu
# (TCG, no network device), logs the serial console and exits 0 only if the guest printed
# `LAMINA-VM-RESULT: PASS`.
#
# Usage: run.sh [--suite bookworm|trixie] [--binary PATH]... [--env NAME=VALUE]...
#               --script GUEST_SCRIPT [--export DIR] [--timeout SECS] [--log FILE] [-v]
#   --suite NAME    Debian suite of the guest (default $LAMINA_VM_SUITE or bookworm):
#                   bookworm = kernel 6.1, nvme-cli 2.3, THP off; trixie = kernel 6.12,
#                   nvme-cli 2.13, libnvme's Python bindings, tcpdump, THP on
#   --binary PATH   copy PATH into the guest as /test/bin/<name> (repeatable)
#   --env N=V       export N=V to the guest script (repeatable)
#   --script FILE   guest script (busybox ash) run as /test/run.sh
#   --export DIR    attach a scratch virtio disk; what the guest writes there as a tar archive
#                   (checks.sh export_files) is unpacked into DIR after the run
#   --timeout SECS  host-side limit for the whole VM run (default 600); the guest script gets
#                   SECS minus a boot margin
#   --log FILE      console log (default $LAMINA_VM_CACHE/logs/<script>-<suite>-<time>.log)
#   -v, --verbose   also stream the console to stdout (or set LAMINA_VM_VERBOSE=1)
# Environment: LAMINA_VM_CACHE (cache folder), LAMINA_VM_MEMORY (MiB, default 2048),
#   LAMINA_VM_SMP (default 2), LAMINA_VM_SUITE, LAMINA_VM_TCG_THREAD (single [default] or
#   multi: multi-threaded TCG is faster but lets the guest kernel crash on text patching).
# Exit status: 0 pass, 1 fail (reason on stderr, console tail if not verbose), 2 usage.
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
    vm_usage >&2
    exit "${1:-2}"
}

# Bad arguments exit 2, like usage errors.
bad_args() {
    vm_log "error: $*"
    exit 2
}

BINARIES=()
ENVS=()
SCRIPT=""
SUITE="${LAMINA_VM_SUITE:-bookworm}"
EXPORT=""
TIMEOUT=600
LOG=""
VERBOSE="${LAMINA_VM_VERBOSE:-0}"
while (($#)); do
    case "$1" in
    --binary) (($# >= 2)) || usage; BINARIES+=("$2"); shift 2 ;;
    --env) (($# >= 2)) || usage; ENVS+=("$2"); shift 2 ;;
    --script) (($# >= 2)) || usage; SCRIPT="$2"; shift 2 ;;
    --suite) (($# >= 2)) || usage; SUITE="$2"; shift 2 ;;
    --export) (($# >= 2)) || usage; EXPORT="$2"; shift 2 ;;
    --timeout) (($# >= 2)) || usage; TIMEOUT="$2"; shift 2 ;;
    --log) (($# >= 2)) || usage; LOG="$2"; shift 2 ;;
    -v | --verbose) VERBOSE=1; shift ;;
    -h | --help) usage 0 ;;
    *) vm_log "unknown argument: $1"; usage ;;
    esac
done
[[ -n $SCRIPT ]] || { vm_log "--script is required"; usage; }
[[ -f $SCRIPT && -r $SCRIPT ]] || bad_args "no such guest script: $SCRIPT"
(vm_check_suite "$SUITE") || exit 2
if ! [[ $TIMEOUT =~ ^[0-9]+$ ]] || ((TIMEOUT < 60)); then
    bad_args "--timeout must be a whole number of seconds >= 60"
fi
for env in "${ENVS[@]}"; do
    [[ $env =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || bad_args "--env wants NAME=VALUE, got: $env"
done
for bin in "${BINARIES[@]}"; do
    [[ -f $bin && -x $bin ]] || bad_args "--binary $bin is not an executable file"
done

# Seconds left for booting and powering off around the guest script.
BOOT_MARGIN=45
CACHE="$(vm_suite_cache "$SUITE")"
NAME="$(basename "$SCRIPT" .sh)"
[[ -n $LOG ]] || LOG="$LAMINA_VM_CACHE/logs/$NAME-$SUITE-$(date +%Y%m%d-%H%M%S).log"
mkdir -p "$(dirname "$LOG")"

bash "$LAMINA_VM_DIR/build-base.sh" --suite "$SUITE"

STAGE="$(mktemp -d "${TMPDIR:-/tmp}/lamina-vm-run.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT

# Copies the shared libraries host binary $1 loads that the base image lacks into the per-run
# root, at the guest's library folder under the name the binary asks for.
stage_libraries() {
    local bin="$1" out line name path libdir="usr/lib/x86_64-linux-gnu"
    if ! out=$(ldd "$bin" 2>&1); then
        vm_log "$bin: not a dynamic executable, no libraries to copy"
        return 0
    fi
    while IFS= read -r line; do
        case "$line" in
        *'=> not found'*) vm_die "$bin: ldd cannot resolve ${line%% =>*}" ;;
        *' => '*)
            name="${line%% =>*}"
            name="${name//[[:space:]]/}"
            path="${line#*=> }"
            path="${path% (0x*}"
            grep -qxF "$libdir/$name" "$CACHE/base.files" && continue
            [[ -e $STAGE/root/$libdir/$name ]] && continue
            mkdir -p "$STAGE/root/$libdir"
            cp -L "$path" "$STAGE/root/$libdir/$name"
            vm_log "adding host library $name for $(basename "$bin")"
            ;;
        esac
    done <<<"$out"
}

stage_run_archive() {
    local root="$STAGE/root" f value
    mkdir -p "$root/test/bin"
    install -m 0755 "$SCRIPT" "$root/test/run.sh"
    # Sibling scripts (checks.sh, the Python clients and the like) travel with the test script.
    for f in "$(dirname "$SCRIPT")"/*.sh "$(dirname "$SCRIPT")"/*.py; do
        [[ -f $f ]] || continue
        [[ $(realpath "$f") == "$(realpath "$SCRIPT")" ]] && continue
        install -m 0644 "$f" "$root/test/$(basename "$f")"
    done
    {
        printf 'LAMINA_VM_TEST_TIMEOUT=%s\n' "$((TIMEOUT - BOOT_MARGIN))"
        printf 'export LAMINA_VM_SUITE=%s\n' "$SUITE"
        # Single-quoted for the guest shell, embedded quotes closed and escaped.
        for f in "${ENVS[@]}"; do
            value="${f#*=}"
            printf "export %s='%s'\n" "${f%%=*}" "${value//\'/\'\\\'\'}"
        done
    } >"$root/test/vm.conf"
    for f in "${BINARIES[@]}"; do
        install -m 0755 "$f" "$root/test/bin/$(basename "$f")"
        stage_libraries "$f"
    done
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
        gzip -1 >"$STAGE/run.cpio.gz"
    # The kernel unpacks concatenated archives in order, the later ones adding to the first.
    cat "$CACHE/base.cpio.gz" "$STAGE/run.cpio.gz" >"$STAGE/initrd"
}

# The serial console's CRs and terminal escapes dropped, so the log is plain text.
clean_console() { sed -u -E -e 's/\r$//' -e 's/\x1b(\[[0-9;?]*[A-Za-z]|c)//g'; }

boot() {
    # One TCG thread for both vCPUs: with multi-threaded TCG a vCPU can run a stale
    # translation of kernel text another vCPU just patched (static keys), and the guest
    # panics on a leftover int3 ("Oops: int3" in sched_clock_cpu, seen with 6.12 under load).
    local cmd=(qemu-system-x86_64 -m "${LAMINA_VM_MEMORY:-2048}" -smp "${LAMINA_VM_SMP:-2}"
        -nographic -no-reboot -nic none -accel "tcg,thread=${LAMINA_VM_TCG_THREAD:-single}" -cpu max
        -kernel "$CACHE/vmlinuz" -initrd "$STAGE/initrd"
        -append "console=ttyS0 quiet panic=-1 transparent_hugepage=$(vm_suite_thp "$SUITE")")
    if [[ -n $EXPORT ]]; then
        truncate -s 256M "$STAGE/export.img"
        cmd+=(-drive "file=$STAGE/export.img,format=raw,if=virtio")
    fi
    # /dev/kvm may exist on these machines while KVM guests hang at boot: TCG always.
    # Stdin is /dev/null so qemu never puts a terminal into raw mode.
    set +e
    if [[ $VERBOSE == 1 ]]; then
        timeout -k 10 "$TIMEOUT" "${cmd[@]}" </dev/null 2>&1 | clean_console | tee "$LOG"
    else
        timeout -k 10 "$TIMEOUT" "${cmd[@]}" </dev/null 2>&1 | clean_console >"$LOG"
    fi
    QEMU_STATUS=${PIPESTATUS[0]}
    set -e
}

# Unpacks the tar archive the guest wrote on the export disk (nothing if it wrote none).
unpack_export() {
    [[ -n $EXPORT ]] || return 0
    mkdir -p "$EXPORT"
    if tar -xf "$STAGE/export.img" -C "$EXPORT" 2>"$STAGE/tar.err"; then
        vm_log "exported to $EXPORT: $(find "$EXPORT" -type f | wc -l) files"
    else
        vm_log "warning: no readable archive on the export disk: $(head -n1 "$STAGE/tar.err")"
    fi
}

main() {
    local t0=$SECONDS result
    stage_run_archive
    vm_log "booting $(head -n1 "$CACHE/base.info") with $SCRIPT (timeout ${TIMEOUT}s, log $LOG)"
    boot
    unpack_export
    result=$(grep -a '^LAMINA-VM-RESULT: ' "$LOG" | tail -n1 || true)
    # A pass is /init's last word followed by a clean power-off, never a line a test script
    # printed before the VM hung.
    if [[ $result == "LAMINA-VM-RESULT: PASS" && $QEMU_STATUS == 0 ]]; then
        vm_log "PASS $NAME ($SUITE) in $((SECONDS - t0))s: $(grep -ac '^ok: ' "$LOG") checks passed"
        return 0
    fi
    if [[ $QEMU_STATUS == 124 || $QEMU_STATUS == 137 ]]; then
        result="${result:-no result line}; host timeout after ${TIMEOUT}s"
    fi
    [[ $VERBOSE == 1 ]] || { echo "---- last console lines ($LOG) ----" >&2; tail -n 60 "$LOG" >&2; }
    vm_log "FAIL $NAME ($SUITE) after $((SECONDS - t0))s (qemu status $QEMU_STATUS): ${result:-no result line}"
    return 1
}

main
