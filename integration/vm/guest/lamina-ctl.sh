# shellcheck shell=sh
# Running Lamina inside the test VM (sourced after checks.sh by the guest scripts that test
# it): the data dir, starting `/test/bin/lamina serve`, stopping it by SIGTERM or SIGKILL, its
# JSON-RPC, and its log as failure evidence.
#
# Settings (run.sh --env NAME=VALUE): LAMINA_DATA_FS=ext4|tmpfs [ext4]: what holds the data
# dir. ext4 (on a loop device) is the default because the 6.1 kernel's tmpfs has no O_DIRECT;
# LAMINA_SERVE_ARGS: extra arguments for `lamina serve`.

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
    : >"$LAMINA_LOG"
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

# stop_lamina [SIGNAL [STATUS]]: sends SIGNAL (TERM) and requires exit status STATUS (0: SIGTERM
# must stop accepting, finish in-flight work, persist, and exit 0; 137 for KILL) and a free port.
stop_lamina() {
    sig=${1:-TERM}
    want=${2:-0}
    step "stop lamina with SIG$sig"
    run kill "-$sig" "$LAMINA_PID"
    i=0
    while kill -0 "$LAMINA_PID" 2>/dev/null; do
        [ "$i" -lt 30 ] || fail "lamina still running 30s after SIG$sig"
        sleep 1
        i=$((i + 1))
    done
    wait "$LAMINA_PID"
    status=$?
    LAMINA_PID=""
    expect "lamina exit status after SIG$sig" "$status" "$want"
    ! wait_listen "$TARGET_PORT" 1 || fail "port $TARGET_PORT still listening after lamina exited"
}

# lamina_rpc METHOD [PARAMS]: a JSON-RPC call through `lamina rpc`; the result is in $OUT.
lamina_rpc() {
    run "$LAMINA" rpc --socket "$DATA/lamina.sock" "$@"
}
