# shellcheck shell=sh
# The real-client end-to-end test of Lamina: starts `/test/bin/lamina serve` on a fresh data
# dir (its embedded default: subsystem nqn.2026-11.io.lamina:default on 127.0.0.1:4420, one
# 1 GiB thin namespace), runs the common initiator checks, stops it with SIGTERM (exit 0
# expected), restarts it on the same data dir and checks that the namespace identity and the
# filesystem written before the restart are intact.
# Run from the host with:
#   integration/vm/run.sh --binary build/release/lamina --script integration/vm/guest/lamina.sh
#
# Settings (run.sh --env NAME=VALUE): LAMINA_DATA_FS=ext4|tmpfs [ext4]: what holds the data
# dir. ext4 (on a loop device) is the default because the 6.1 kernel's tmpfs has no O_DIRECT;
# LAMINA_SERVE_ARGS: extra arguments for `lamina serve`.

# shellcheck source=checks.sh
. /test/checks.sh

TARGET_NQN=nqn.2026-11.io.lamina:default
# Lamina advertises Compare on top of Write Zeroes and Dataset Management (issue 4, section 4),
# the Save/Select fields of Set/Get Features and the Timestamp feature (ONCS bits 4 and 6,
# issue 13).
# (checks.sh, sourced above, already defaults EXPECT_ONCS, so a ':-' default here never took.)
EXPECT_ONCS=0x5d
# Lamina reports NVMe 2.0 (issue 13, section 2).
EXPECT_VER=${EXPECT_VER:-0x20000}
LAMINA=/test/bin/lamina
DATA=/tmp/lamina-data
LAMINA_LOG=/tmp/lamina.log
LAMINA_PID=""

target_evidence() {
    if [ -n "$LAMINA_PID" ] && kill -0 "$LAMINA_PID" 2>/dev/null; then
        echo "lamina (pid $LAMINA_PID) is running"
    else
        echo "lamina is not running"
    fi
    echo "---- $LAMINA_LOG (last 80 lines) ----"
    tail -n 80 "$LAMINA_LOG" 2>/dev/null
    return 0
}

# Puts the data dir on ext4 over a loop device backed by a sparse tmpfs file (the default), or
# directly on the /tmp tmpfs.
prepare_data_dir() {
    step "data dir $DATA on ${LAMINA_DATA_FS:-ext4}"
    mkdir -p "$DATA"
    case "${LAMINA_DATA_FS:-ext4}" in
    tmpfs) ;;
    ext4)
        run modprobe loop
        run truncate -s 20G /tmp/lamina-disk.img
        loopdev=$(losetup -f) || fail "no free loop device"
        run losetup "$loopdev" /tmp/lamina-disk.img
        run mkfs.ext4 -F -q -E nodiscard "$loopdev"
        run mount -t ext4 "$loopdev" "$DATA"
        ;;
    *) fail "unknown LAMINA_DATA_FS '$LAMINA_DATA_FS'" ;;
    esac
}

start_lamina() {
    step "start lamina serve ($1)"
    [ -x "$LAMINA" ] || fail "no $LAMINA: pass the binary with run.sh --binary"
    echo "+ $LAMINA serve --data-dir $DATA ${LAMINA_SERVE_ARGS:-} >>$LAMINA_LOG 2>&1 &"
    echo "==== lamina serve ($1) ====" >>"$LAMINA_LOG"
    # shellcheck disable=SC2086 # LAMINA_SERVE_ARGS is a list of words
    "$LAMINA" serve --data-dir "$DATA" ${LAMINA_SERVE_ARGS:-} >>"$LAMINA_LOG" 2>&1 &
    LAMINA_PID=$!
    wait_listen "$TARGET_PORT" 60 || fail "lamina does not listen on port $TARGET_PORT after 60s"
    kill -0 "$LAMINA_PID" 2>/dev/null || fail "lamina exited right after starting"
    echo "ok: lamina (pid $LAMINA_PID) listens on $TARGET_ADDR:$TARGET_PORT"
}

# SIGTERM must stop accepting, finish in-flight work, persist, and exit 0.
stop_lamina() {
    step "stop lamina with SIGTERM"
    run kill -TERM "$LAMINA_PID"
    i=0
    while kill -0 "$LAMINA_PID" 2>/dev/null; do
        [ "$i" -lt 30 ] || fail "lamina still running 30s after SIGTERM"
        sleep 1
        i=$((i + 1))
    done
    wait "$LAMINA_PID"
    status=$?
    LAMINA_PID=""
    expect "lamina exit status after SIGTERM" "$status" 0
    ! wait_listen "$TARGET_PORT" 1 || fail "port $TARGET_PORT still listening after lamina exited"
}

prepare_data_dir
: >"$LAMINA_LOG"
start_lamina "fresh data dir"

step "lamina printed how to attach its default subsystem"
# The port is bound before start-up finishes (hosts wait in the accept queue); the attach
# lines come once the embedded default exists.
i=0
until grep -qE "nvme connect .*$TARGET_NQN" "$LAMINA_LOG"; do
    [ "$i" -lt 60 ] || break
    sleep 1
    i=$((i + 1))
done
grep -E "nvme discover .*127\.0\.0\.1" "$LAMINA_LOG" ||
    fail "no 'nvme discover ... 127.0.0.1' line in the lamina output"
grep -E "nvme connect .*$TARGET_NQN" "$LAMINA_LOG" ||
    fail "no 'nvme connect ... $TARGET_NQN' line in the lamina output"
[ -f "$DATA/lvs0.img" ] || fail "no $DATA/lvs0.img after the first start"
ls -ls "$DATA"

run_common_checks
nguid_before="$NS_NGUID"
case "${LAMINA_SERVE_ARGS:-}" in
*debug*)
    # With CAP.CSS bit 6 the host enables with CC.CSS 110b and reads the I/O command set
    # structures; the debug log shows each admin command and its status.
    step "the host enabled with CC.CSS 110b and its Identify commands succeeded"
    grep -E "controller enable .*css=6 valid=true" "$LAMINA_LOG" ||
        fail "no enable with CC.CSS 110b in the lamina log"
    grep -E "admin command .*opcode=0x06 .*status=StatusCode::SUCCESS" "$LAMINA_LOG" |
        sed -E 's/^.*admin command cid=[0-9]+ /admin command /' | sort | uniq -c
    if grep -E "admin command .*opcode=0x06 " "$LAMINA_LOG" | grep -v "status=StatusCode::SUCCESS"; then
        fail "an Identify command failed"
    fi
    ;;
esac
stop_lamina

start_lamina "restart on the same data dir"
connect_target "after restart, digests" -g -G
check_identify
expect "namespace NGUID across the restart" "$NS_NGUID" "$nguid_before"
step "ext4 written before the restart is intact"
verify_ext4
disconnect_target
stop_lamina
