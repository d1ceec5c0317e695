# shellcheck shell=sh
# The real-client end-to-end test of Lamina with the Linux host of the guest's kernel (6.1 on
# bookworm, 6.12 on trixie) and its nvme-cli: starts `/test/bin/lamina serve` on a fresh data
# dir (its embedded default: subsystem nqn.2026-11.io.lamina:default on 127.0.0.1:4420, one
# 1 GiB thin namespace), runs the common initiator checks (checks.sh, admin.sh), stops it with
# SIGTERM (exit 0 expected), restarts it on the same data dir and checks that the namespace
# identity and the filesystem written before the restart are intact; then, on that one
# connection, restarts by SIGTERM and SIGKILL with the host reconnecting by itself, a resize
# a namespace hot add and remove over RPC, and a masked namespace shown to and hidden from
# this host (lamina-live.sh); then DH-HMAC-CHAP on a second subsystem (lamina-auth.sh, where
# the kernel has in-band authentication) and TLS 1.3 with PSKs on a third, reachable only on a
# secure-channel port (lamina-tls.sh, where the kernel has NVMe/TCP TLS).
# Run from the host with:
#   integration/vm/run.sh [--suite trixie] --binary build/release/lamina \
#       --script integration/vm/guest/lamina.sh
# Settings: see lamina-ctl.sh (LAMINA_DATA_FS, LAMINA_SERVE_ARGS).

# shellcheck source=checks.sh
. /test/checks.sh
# shellcheck source=lamina-ctl.sh
. /test/lamina-ctl.sh
# shellcheck source=lamina-live.sh
. /test/lamina-live.sh
# shellcheck source=lamina-auth.sh
. /test/lamina-auth.sh
# shellcheck source=lamina-tls.sh
. /test/lamina-tls.sh

TARGET_NQN=nqn.2026-11.io.lamina:default
# Lamina advertises Compare on top of Write Zeroes and Dataset Management (issue 4, section 4),
# the Save/Select fields of Set/Get Features and the Timestamp feature (ONCS bits 4 and 6,
# issue 13).
# (checks.sh, sourced above, already defaults EXPECT_ONCS, so a ':-' default here never took.)
EXPECT_ONCS=0x5d
# Lamina reports NVMe 2.0 (issue 13, section 2).
EXPECT_VER=${EXPECT_VER:-0x20000}
# A read past the end of a namespace fails with LBA Out of Range, as the NVM command set says.
EXPECT_PAST_END_SC=0x80

# The clusters lvs0/vol0 holds, for admin.sh's discard checks.
allocated_clusters() {
    "$LAMINA" rpc --socket "$DATA/lamina.sock" bdev_lvol_get_lvols '{"lvs_name":"lvs0"}' 2>/dev/null |
        awk '/"alias": "lvs0\/vol0"/ { f = 1 } f && /"num_allocated_clusters"/ { gsub(/[^0-9]/, ""); print; exit }'
}

prepare_data_dir
start_lamina "fresh data dir"
check_thp

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
*--zero-copy-min*)
    # The fio verify above read its data back through MSG_ZEROCOPY sends; over the guest's
    # loopback the kernel completes them by copying, and counts them all the same.
    step "read payloads went out with MSG_ZEROCOPY (nvmf_get_stats counts their completions)"
    zc_sends=$("$LAMINA" rpc --socket "$DATA/lamina.sock" nvmf_get_stats 2>/dev/null | tr -d '\n' |
        grep -o '"zero_copy_sends": *{[^}]*}' | grep -o '[0-9][0-9]*' | awk '{ s += $1 } END { print s + 0 }')
    echo "zero-copy sends completed: $zc_sends"
    [ "${zc_sends:-0}" -gt 0 ] || fail "no zero-copy send completed with $LAMINA_SERVE_ARGS"
    ;;
esac
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
stop_lamina TERM 0

start_lamina "restart on the same data dir"
# The host must ride out the restarts below on its own: reconnect every second, for 2 minutes.
CTRL_LOSS_TMO=120
connect_target "after restart, digests, reconnecting by itself" -g -G --reconnect-delay=1
check_identify
expect "namespace NGUID across the restart" "$NS_NGUID" "$nguid_before"
step "ext4 written before the restart is intact"
verify_ext4

check_reconnect TERM
check_reconnect KILL
check_resize
check_hot_namespace
check_masked_namespace
check_referral
check_dhchap
check_tls
disconnect_target
stop_lamina TERM 0
