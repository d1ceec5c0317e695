# shellcheck shell=sh
# The initiator checks every NVMe/TCP target must pass with the stock Linux host (nvme-tcp) and
# nvme-cli, run inside the test VM (busybox ash). Sourced by the per-target scripts, which start
# their target on 127.0.0.1 and then call run_common_checks.
#
# Settings (set by the sourcing script; defaults in brackets):
#   TARGET_NQN          subsystem NQN to attach (required)
#   TARGET_ADDR/PORT    listener [127.0.0.1] / [4420]
#   EXPECT_LBA_SIZE     LBA size of namespace 1 in bytes [4096]
#   EXPECT_ONCS         ONCS bits Identify Controller must set [0xc: Write Zeroes, DSM]
#   EXPECT_VER          the exact VER Identify Controller must report [unset: at least 1.3]
#   EXPECT_MIN_SIZE     minimum namespace size in bytes [1 GiB]
#   DD_SIZE_MIB         size of the sequential dd pattern [64]
#   FIO_SIZE_4K/128K    bytes each fio job covers [32m] / [64m]
#   CMD_TIMEOUT         seconds any one command may take [300]
#   CTRL_LOSS_TMO       nvme connect --ctrl-loss-tmo [30]: a target that dies makes I/O fail
#                       after this long, rather than the host retrying for its default 600 s
# Hooks: target_evidence (prints the target's side on failure; the default prints nothing),
#   allocated_clusters (admin.sh).
#
# Every step prints what it runs and what it got; a failing step records "<step>: <why>" in
# /tmp/lamina-vm-fail-reason (read by /init for the result line), dumps the evidence and exits 1.

TARGET_ADDR=${TARGET_ADDR:-127.0.0.1}
TARGET_PORT=${TARGET_PORT:-4420}
EXPECT_LBA_SIZE=${EXPECT_LBA_SIZE:-4096}
EXPECT_ONCS=${EXPECT_ONCS:-0xc}
EXPECT_MIN_SIZE=${EXPECT_MIN_SIZE:-1073741824}
DD_SIZE_MIB=${DD_SIZE_MIB:-64}
CMD_TIMEOUT=${CMD_TIMEOUT:-300}
CTRL_LOSS_TMO=${CTRL_LOSS_TMO:-30}
MNT=/mnt/lamina
MIB=1048576
CHECK_STEP=setup
# Set by connect_target: the controller (nvmeX) and the block device of namespace 1.
CTRL=""
DEV=""

target_evidence() { :; }

uptime_s() {
    read -r up _ </proc/uptime
    echo "$up"
}

step() {
    CHECK_STEP="$*"
    echo
    echo "==> [$(uptime_s)s] $CHECK_STEP"
}

fail() {
    echo "FAIL in step '$CHECK_STEP': $*"
    echo "$CHECK_STEP: $*" >/tmp/lamina-vm-fail-reason
    echo "---- evidence: kernel log (last 40 lines) ----"
    dmesg | tail -n 40
    echo "---- evidence: target ----"
    target_evidence
    exit 1
}

# run CMD...: prints the command and its output (kept in $OUT); a non-zero exit, or running
# longer than CMD_TIMEOUT, fails the step. CMD is a program (busybox applets count), not a
# shell function.
run() {
    echo "+ $*"
    OUT=$(timeout -k 10 "$CMD_TIMEOUT" "$@" 2>&1)
    rc=$?
    [ -n "$OUT" ] && echo "$OUT"
    [ "$rc" -eq 0 ] || fail "'$*' exited with status $rc$(timed_out "$rc")"
}

timed_out() {
    case "$1" in 143 | 137) echo " (killed: over ${CMD_TIMEOUT}s?)" ;; esac
}

# expect WHAT ACTUAL WANTED: string equality.
expect() {
    [ "$2" = "$3" ] || fail "$1 is '$2', expected '$3'"
    echo "ok: $1 = $2"
}

# read_sum COUNT SKIP BS [DD_FLAGS]: reads COUNT blocks of BS bytes from $DEV at block SKIP
# into a scratch file through `run` (so an I/O error fails the step with dd's own message),
# checks nothing came back short, and sets SUM to the data's sha256.
# The optional dd flags (here and in write_check) are unquoted on purpose: empty means none.
# shellcheck disable=SC2086
read_sum() {
    run dd if="$DEV" of=/tmp/readback bs="$3" count="$1" skip="$2" $4
    got=$(wc -c </tmp/readback)
    [ "$got" -eq $(($1 * $3)) ] || fail "read $got bytes from $DEV, expected $(($1 * $3))"
    SUM=$(sha256sum /tmp/readback | cut -d' ' -f1)
    rm -f /tmp/readback
}

drop_caches() {
    sync
    blockdev --flushbufs "$DEV" 2>/dev/null
    echo 3 >/proc/sys/vm/drop_caches
}

# Waits up to $2 seconds for a TCP listener on port $1 (in /proc/net/tcp, state 0A = LISTEN).
wait_listen() {
    hex=$(printf '%04X' "$1")
    i=0
    while [ "$i" -lt "$2" ]; do
        if grep -qE "^ *[0-9]+: [0-9A-F]+:$hex [0-9A-F]+:0000 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            return 0
        fi
        sleep 1
        i=$((i + 1))
    done
    return 1
}

# Value of field $1 in "name : value" output $2 (nvme id-ctrl / id-ns), trimmed.
field() {
    echo "$2" | awk -v k="$1" '{ key = $0; sub(/[ \t]*:.*/, "", key) }
        key == k { v = substr($0, index($0, ":") + 1); gsub(/^[ \t]+|[ \t]+$/, "", v); print v; exit }'
}

# Sets NUM to field $1 of output $2 if it is a decimal or 0x-hex number (checked first: ash
# aborts the whole script on arithmetic with anything else). Not called in $(...), so that
# fail stops the script rather than a subshell.
get_number() {
    NUM=$(field "$1" "$2")
    case "$NUM" in
    '') fail "id output has no field '$1'" ;;
    0x*[!0-9a-fA-F]* | 0x) fail "field '$1' is not a number: '$NUM'" ;;
    0x*) ;;
    *[!0-9]*) fail "field '$1' is not a number: '$NUM'" ;;
    esac
}

# numeric NAME OUTPUT OP BOUND: the field, as a number, compared with BOUND.
numeric() {
    get_number "$1" "$2"
    test "$((NUM))" "$3" "$(($4))" || fail "$1 is $NUM, expected $3 $4"
    echo "ok: $1 = $NUM ($3 $4)"
}

# bits NAME OUTPUT MASK: all MASK bits set in the field.
bits() {
    get_number "$1" "$2"
    [ $((NUM & $3)) -eq $(($3)) ] || fail "$1 is $NUM, missing bits $3"
    echo "ok: $1 = $NUM (has bits $3)"
}

# Transparent huge pages as run.sh set them: off on bookworm's 6.1 (its hardened usercopy BUGs
# when nvme-tcp sends THP memory over loopback), on with trixie's 6.12 to show that it is a 6.1
# bug.
check_thp() {
    step "transparent huge pages on ${LAMINA_VM_SUITE:-bookworm}"
    mode=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled)
    case "${LAMINA_VM_SUITE:-bookworm}" in
    bookworm) expect "THP mode" "$mode" never ;;
    *) expect "THP mode" "$mode" always ;;
    esac
}

check_discover() {
    step "nvme discover on $TARGET_ADDR:$TARGET_PORT"
    run nvme discover -t tcp -a "$TARGET_ADDR" -s "$TARGET_PORT"
    entry=$(echo "$OUT" | awk -v nqn="$TARGET_NQN" '
        /^=====Discovery Log Entry/ { if (found) exit; rec = "" }
        { rec = rec $0 "\n" }
        /^subnqn:/ && $2 == nqn { found = 1 }
        END { if (found) printf "%s", rec }')
    [ -n "$entry" ] || fail "no discovery log entry for $TARGET_NQN"
    expect "entry trtype" "$(field trtype "$entry")" tcp
    expect "entry adrfam" "$(field adrfam "$entry")" ipv4
    expect "entry subtype" "$(field subtype "$entry")" "nvme subsystem"
    expect "entry traddr" "$(field traddr "$entry")" "$TARGET_ADDR"
    expect "entry trsvcid" "$(field trsvcid "$entry")" "$TARGET_PORT"
}

# Prints the block device of namespace $1 of TARGET_NQN, if the host has one.
ns_dev() {
    for b in /sys/block/nvme*n*; do
        name=${b##*/}
        case "$name" in nvme*c*n*) continue ;; esac # hidden per-path devices
        [ "$(cat "$b/device/subsysnqn" 2>/dev/null)" = "$TARGET_NQN" ] || continue
        [ "$(cat "$b/nsid" 2>/dev/null)" = "$1" ] && [ -b "/dev/$name" ] && echo "/dev/$name"
    done
    return 0
}

# Sets CTRL and DEV once the controller is live and namespace 1 has its block device.
find_devices() {
    CTRL=""
    for c in /sys/class/nvme/nvme*; do
        [ -r "$c/subsysnqn" ] || continue
        [ "$(cat "$c/subsysnqn")" = "$TARGET_NQN" ] || continue
        [ "$(cat "$c/transport")" = tcp ] && [ "$(cat "$c/state")" = live ] && CTRL=${c##*/}
    done
    DEV=$(ns_dev 1)
    [ -n "$CTRL" ] && [ -n "$DEV" ]
}

# connect_target LABEL [nvme connect options...]
connect_target() {
    label="$1"
    shift
    step "nvme connect ($label)"
    run nvme connect -t tcp -a "$TARGET_ADDR" -s "$TARGET_PORT" -n "$TARGET_NQN" \
        --ctrl-loss-tmo="$CTRL_LOSS_TMO" "$@"
    i=0
    until find_devices; do
        [ "$i" -lt 30 ] || fail "no live controller with namespace 1 for $TARGET_NQN 30s after connect"
        sleep 1
        i=$((i + 1))
    done
    echo "ok: controller $CTRL ($(cat /sys/class/nvme/"$CTRL"/address)), namespace 1 is $DEV"
}

check_identify() {
    step "nvme list"
    run nvme list
    echo "$OUT" | grep -q "^$DEV " || fail "nvme list does not show $DEV"

    step "nvme id-ctrl /dev/$CTRL"
    run nvme id-ctrl "/dev/$CTRL"
    idc="$OUT"
    expect subnqn "$(field subnqn "$idc")" "$TARGET_NQN"
    get_number cntlid "$idc"
    expect "cntlid (id-ctrl vs sysfs)" "$((NUM))" "$(($(cat /sys/class/nvme/"$CTRL"/cntlid)))"
    [ -n "$(field sn "$idc")" ] || fail "empty serial number"
    [ -n "$(field mn "$idc")" ] || fail "empty model number"
    [ -n "$(field fr "$idc")" ] || fail "empty firmware revision"
    if [ -n "${EXPECT_VER:-}" ]; then
        numeric ver "$idc" -eq "$EXPECT_VER"
    else
        numeric ver "$idc" -ge 0x10300
    fi
    numeric cntrltype "$idc" -eq 1
    numeric kas "$idc" -gt 0
    numeric maxcmd "$idc" -gt 0
    numeric nn "$idc" -ge 1
    numeric sqes "$idc" -eq 0x66
    numeric cqes "$idc" -eq 0x44
    numeric ioccsz "$idc" -ge 4
    numeric iorcsz "$idc" -eq 1
    numeric icdoff "$idc" -eq 0
    numeric msdbd "$idc" -eq 1
    numeric sgls "$idc" -ne 0
    bits oaes "$idc" 0x100
    bits oncs "$idc" "$EXPECT_ONCS"
    bits vwc "$idc" 0x1

    step "nvme id-ns $DEV"
    run nvme id-ns "$DEV"
    idn="$OUT"
    numeric nsze "$idn" -gt 0
    numeric ncap "$idn" -gt 0
    lbads=$(echo "$idn" | awk '/^lbaf .*in use/ {
        for (i = 1; i <= NF; i++) if ($i ~ /^lbads:/) { sub(/lbads:/, "", $i); print $i } }')
    [ -n "$lbads" ] || fail "id-ns shows no LBA format in use"
    expect "LBA size" "$((1 << lbads))" "$EXPECT_LBA_SIZE"
    expect "logical block size of $DEV" "$(blockdev --getss "$DEV")" "$EXPECT_LBA_SIZE"
    bytes=$(blockdev --getsize64 "$DEV")
    expect "nsze * LBA size" "$(($(field nsze "$idn") * EXPECT_LBA_SIZE))" "$bytes"
    [ "$bytes" -ge "$EXPECT_MIN_SIZE" ] || fail "$DEV has $bytes bytes, expected >= $EXPECT_MIN_SIZE"
    NS_NGUID=$(field nguid "$idn")
    case "$NS_NGUID" in
    *[1-9a-fA-F]*) ;;
    *) fail "namespace 1 has no NGUID ('$NS_NGUID'): hosts need a stable unique identifier" ;;
    esac
    echo "ok: $DEV is $bytes bytes, nguid $NS_NGUID"
}

# write_check NAME MIB OFFSET_MIB BS WFLAGS RFLAGS: writes MIB MiB of fresh random data at
# OFFSET_MIB in BS blocks, reads it back (after dropping caches) and compares checksums.
# shellcheck disable=SC2086
write_check() {
    pat=/tmp/pattern-$1
    dd if=/dev/urandom of="$pat" bs=$MIB count="$2" 2>/dev/null || fail "cannot make the $1 pattern"
    want=$(sha256sum "$pat" | cut -d' ' -f1)
    blocks=$(($2 * MIB / $4))
    seek=$(($3 * MIB / $4))
    run dd if="$pat" of="$DEV" bs="$4" count="$blocks" seek="$seek" conv=fsync $5
    drop_caches
    read_sum "$blocks" "$seek" "$4" "$6"
    expect "sha256 of $2 MiB read back at MiB $3 ($1, ${6:-buffered})" "$SUM" "$want"
    rm -f "$pat"
    WRITTEN_SUM=$want
}

check_dd() {
    step "dd: pattern write and read-back on $DEV"
    size_mib=$(($(blockdev --getsize64 "$DEV") / MIB))
    if [ "${1:-}" = fresh ]; then
        # A fresh namespace reads as zeros (thin lvol: unallocated clusters read as zeros).
        zeros=$(dd if=/dev/zero bs=$MIB count=4 2>/dev/null | sha256sum | cut -d' ' -f1)
        read_sum 4 512 $MIB iflag=direct
        expect "sha256 of 4 unwritten MiB at MiB 512 (O_DIRECT)" "$SUM" "$zeros"
    fi
    write_check sequential "$DD_SIZE_MIB" 0 $MIB "" ""
    read_sum "$DD_SIZE_MIB" 0 $MIB iflag=direct
    expect "sha256 of the same $DD_SIZE_MIB MiB with O_DIRECT" "$SUM" "$WRITTEN_SUM"
    write_check direct4k 4 96 4096 oflag=direct iflag=direct
    write_check direct1m 16 128 $MIB oflag=direct iflag=direct
    write_check tail 1 $((size_mib - 1)) $MIB oflag=direct iflag=direct
    got=$(dd if="$DEV" bs=$MIB skip="$size_mib" count=1 iflag=direct 2>/dev/null | wc -c)
    expect "bytes read past the end of $DEV" "$got" 0
}

check_fio() {
    step "fio verify (randwrite 4k and 128k, crc32c)"
    set -- fio --ioengine=libaio --direct=1 --filename="$DEV" --rw=randwrite \
        --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0 \
        --name=rand4k --bs=4k --iodepth=16 --offset=256m --size="${FIO_SIZE_4K:-32m}" \
        --name=rand128k --bs=128k --iodepth=8 --offset=320m --size="${FIO_SIZE_128K:-64m}"
    echo "+ $*"
    # The full report is long: print it only on failure, else the per-job and summary lines.
    OUT=$(timeout -k 10 "$CMD_TIMEOUT" "$@" 2>&1)
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "$OUT"
        fail "fio exited with status $rc$(timed_out "$rc")"
    fi
    echo "$OUT" | grep -E 'err=|^ +(read|write):|^ +(READ|WRITE):'
    if echo "$OUT" | grep -qiE 'verify.*(fail|mismatch)|bad magic|bad header'; then
        echo "$OUT"
        fail "fio reported a verify error"
    fi
    [ "$(echo "$OUT" | grep -c 'err= 0:')" = 2 ] || fail "fio did not report err=0 for both jobs"
    echo "ok: fio wrote and verified both jobs"
}

# Makes an ext4 filesystem with files of known checksums, unmounts, checks, remounts, verifies.
check_ext4() {
    step "ext4: mkfs, write files, remount, verify"
    run mkfs.ext4 -F -q -L lamina "$DEV"
    check_mkfs_discarded
    mkdir -p "$MNT"
    run mount -t ext4 "$DEV" "$MNT"
    mkdir -p "$MNT/dir/sub"
    dd if=/dev/urandom of="$MNT/big.bin" bs=$MIB count=16 2>/dev/null || fail "write big.bin"
    dd if=/dev/urandom of="$MNT/dir/mid.bin" bs=4096 count=300 2>/dev/null || fail "write mid.bin"
    i=0
    while [ "$i" -lt 40 ]; do
        dd if=/dev/urandom of="$MNT/dir/sub/small-$i" bs=$((1000 + i * 97)) count=1 2>/dev/null ||
            fail "write small-$i"
        i=$((i + 1))
    done
    (cd "$MNT" && find . -type f | sort | xargs sha256sum) >/tmp/fs.sha256 || fail "checksum the files"
    echo "ok: wrote $(wc -l </tmp/fs.sha256) files"
    run sync
    run umount "$MNT"
    run e2fsck -f -n "$DEV"
    drop_caches
    verify_ext4
}

# Mounts the filesystem check_ext4 left and compares every file with its recorded checksum.
verify_ext4() {
    run mount -t ext4 "$DEV" "$MNT"
    echo "+ sha256sum -c /tmp/fs.sha256 (in $MNT)"
    out=$(cd "$MNT" && sha256sum -c /tmp/fs.sha256 2>&1) || {
        echo "$out" | grep -v ': OK$'
        fail "files differ from what was written"
    }
    echo "ok: $(echo "$out" | grep -c ': OK$') files match"
    run umount "$MNT"
}

disconnect_target() {
    step "nvme disconnect"
    run nvme disconnect -n "$TARGET_NQN"
    echo "$OUT" | grep -q 'disconnected 1 controller' || fail "expected 1 disconnected controller"
    i=0
    while [ -e "/sys/class/nvme/$CTRL" ] || [ -b "$DEV" ]; do
        [ "$i" -lt 15 ] || fail "$CTRL/$DEV still present 15s after disconnect"
        sleep 1
        i=$((i + 1))
    done
    echo "ok: $CTRL and $DEV are gone"
}

# Writes folder $1 as a tar archive on run.sh's export disk (run.sh --export), which the host
# unpacks after the run.
export_files() {
    step "export $1 to the host"
    [ -d /sys/module/virtio_pci ] || run modprobe virtio_pci
    run modprobe virtio_blk
    i=0
    until [ -b /dev/vda ]; do
        [ "$i" -lt 10 ] || fail "no export disk /dev/vda (run.sh --export)"
        sleep 1
        i=$((i + 1))
    done
    (cd "$1" && tar -cf /tmp/export.tar .) || fail "tar $1"
    run dd if=/tmp/export.tar of=/dev/vda bs="$MIB" conv=fsync
    echo "ok: $(wc -c </tmp/export.tar) bytes written to /dev/vda"
}

run_common_checks() {
    [ -n "${TARGET_NQN:-}" ] || fail "TARGET_NQN is not set"
    check_discover

    connect_target "no digests"
    check_identify
    check_admin
    check_dd fresh
    check_discard
    check_fio
    check_ext4
    disconnect_target

    connect_target "header and data digests" -g -G
    check_identify
    step "ext4 written on the previous connection is intact"
    verify_ext4
    check_admin
    check_dd
    check_discard
    check_fio
    check_ext4
    disconnect_target
}

# shellcheck source=admin.sh
. /test/admin.sh
