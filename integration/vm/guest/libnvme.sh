# shellcheck shell=sh
# libnvme's Python bindings (Debian's python3-libnvme, trixie: libnvme 1.13) as a second host
# implementation against Lamina: discovery, connect and disconnect through libnvme's API
# (libnvme-client.py), the kernel doing the transport. Needs the trixie guest.
# Run from the host with:
#   integration/vm/run.sh --suite trixie --binary build/release/lamina \
#       --script integration/vm/guest/libnvme.sh

# shellcheck source=checks.sh
. /test/checks.sh
# shellcheck source=lamina-ctl.sh
. /test/lamina-ctl.sh

TARGET_NQN=nqn.2026-11.io.lamina:default

prepare_data_dir
start_lamina "fresh data dir"

step "libnvme (Python bindings): discovery, connect, I/O, disconnect"
[ -f /usr/lib/python3/dist-packages/libnvme/nvme.py ] ||
    fail "no python3-libnvme in this guest (run it with --suite trixie)"
echo "+ python3 /test/libnvme-client.py $TARGET_ADDR $TARGET_PORT $TARGET_NQN"
timeout -k 10 "$CMD_TIMEOUT" python3 /test/libnvme-client.py "$TARGET_ADDR" "$TARGET_PORT" \
    "$TARGET_NQN" >/tmp/libnvme.out 2>&1
rc=$?
cat /tmp/libnvme.out
[ "$rc" -eq 0 ] || fail "libnvme-client.py exited with status $rc$(timed_out "$rc")"
grep -q '^libnvme-client: PASS' /tmp/libnvme.out || fail "no PASS line from libnvme-client.py"
for c in /sys/class/nvme/nvme*; do
    [ -e "$c" ] && fail "controller ${c##*/} left after libnvme's disconnects"
done
echo "ok: no controller left"

step "Lamina saw libnvme's host"
grep 'host connected' "$LAMINA_LOG" | tail -n 3
grep -q "hostnqn=\"$(cat /etc/nvme/hostnqn)\"" "$LAMINA_LOG" ||
    fail "no connection from $(cat /etc/nvme/hostnqn) in the lamina log"
echo "ok: lamina logged connections from $(cat /etc/nvme/hostnqn)"
stop_lamina TERM 0
