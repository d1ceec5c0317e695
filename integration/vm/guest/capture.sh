# shellcheck shell=sh
# Captures NVMe/TCP sessions between the Linux host and Lamina on the guest's loopback
# (tcpdump), for Wireshark's dissector on the host (integration/vm/tshark-check.sh): a
# discovery, a session with header and data digests (identify, 1 MiB writes by R2T and
# H2CData, a 4 KiB write, 1 MiB reads by C2HData, flush, discard), a short session without
# digests, and the disconnects. The capture goes back to the host on run.sh's export disk as
# nvme-tcp.pcap. Needs the trixie guest (tcpdump).
# Run from the host with:
#   integration/vm/run.sh --suite trixie --binary build/release/lamina --export DIR \
#       --script integration/vm/guest/capture.sh
#   integration/vm/tshark-check.sh DIR/nvme-tcp.pcap

# shellcheck source=checks.sh
. /test/checks.sh
# shellcheck source=lamina-ctl.sh
. /test/lamina-ctl.sh

TARGET_NQN=nqn.2026-11.io.lamina:default
OUTDIR=/tmp/export
PCAP=$OUTDIR/nvme-tcp.pcap

# io_session: the commands whose PDUs the dissector must see, on namespace 1.
io_session() {
    run nvme id-ctrl "/dev/$CTRL"
    run nvme id-ns "$DEV"
    run dd if=/dev/urandom of=/tmp/pattern bs="$MIB" count=1
    run dd if=/tmp/pattern of="$DEV" bs="$MIB" count=1 seek="$1" oflag=direct conv=fsync
    run dd if=/tmp/pattern of="$DEV" bs=4096 count=1 seek=$((($1 + 1) * 256)) oflag=direct
    run dd if="$DEV" of=/tmp/readback bs="$MIB" count=1 skip="$1" iflag=direct
    cmp /tmp/pattern /tmp/readback || fail "1 MiB read back differs"
    echo "ok: 1 MiB written and read back"
    run blkdiscard -o $((($1 + 2) * MIB)) -l "$MIB" "$DEV"
}

prepare_data_dir
start_lamina "fresh data dir"

step "tcpdump on lo, TCP port $TARGET_PORT"
mkdir -p "$OUTDIR"
command -v tcpdump >/dev/null || fail "no tcpdump in this guest (run it with --suite trixie)"
# -Z root: the guest has no tcpdump user to drop privileges to.
tcpdump -i lo -n -Z root -s 0 -B 16384 -U -w "$PCAP" "tcp port $TARGET_PORT" 2>/tmp/tcpdump.err &
TCPDUMP_PID=$!
i=0
until grep -q 'listening on lo' /tmp/tcpdump.err; do
    [ "$i" -lt 20 ] || { cat /tmp/tcpdump.err; fail "tcpdump did not start"; }
    sleep 1
    i=$((i + 1))
done
echo "ok: tcpdump (pid $TCPDUMP_PID) captures on lo"

check_discover
connect_target "header and data digests" -g -G
io_session 100
disconnect_target
connect_target "no digests"
io_session 200
disconnect_target

step "stop tcpdump"
sleep 1
run kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID"
cat /tmp/tcpdump.err
dropped=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel.*/\1/p' /tmp/tcpdump.err)
expect "packets tcpdump lost" "${dropped:-unknown}" 0
ls -l "$PCAP"
[ -s "$PCAP" ] || fail "empty capture"

export_files "$OUTDIR"
stop_lamina TERM 0
