# shellcheck shell=sh
# What a connected Linux host must live through while Lamina changes under it (sourced by
# lamina.sh after checks.sh and lamina-ctl.sh): the target restarted by SIGTERM and killed
# with SIGKILL while the host stays connected (the kernel reconnects by itself, with the
# --reconnect-delay and --ctrl-loss-tmo of the first `nvme connect`, never a new one), the
# namespace's lvol resized over RPC (Namespace Attribute Changed AEN, rescan, new size), a
# second namespace added and removed over RPC (the block device appears and goes), and a
# discovery referral added and removed over RPC (an entry of the discovery log page).
# Each check also proves the host never reconnected when it should not have: the controller
# keeps its name and its controller ID.

# The one controller of TARGET_NQN must still be $CTRL, live, with controller ID $1.
same_controller() {
    n=0
    for c in /sys/class/nvme/nvme*; do
        [ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$TARGET_NQN" ] && n=$((n + 1))
    done
    expect "controllers of $TARGET_NQN" "$n" 1
    expect "state of $CTRL" "$(cat "/sys/class/nvme/$CTRL/state")" live
    [ -z "${1:-}" ] || expect "controller ID of $CTRL" "$(cat "/sys/class/nvme/$CTRL/cntlid")" "$1"
}

# wait_state WANT|!WANT SECS: waits for the controller state to be (or to leave) WANT.
wait_state() {
    i=0
    while :; do
        s=$(cat "/sys/class/nvme/$CTRL/state")
        case "$1" in
        !*) [ "$s" != "${1#!}" ] && break ;;
        *) [ "$s" = "$1" ] && break ;;
        esac
        [ "$i" -lt "$2" ] || fail "$CTRL is '$s' after ${2}s, waited for '$1'"
        sleep 1
        i=$((i + 1))
    done
    echo "ok: $CTRL is $s after ${i}s"
}

# fio_background NAME MIB_AT ARGS...: 8 MiB of 4 KiB random writes at MIB_AT, rate-limited so
# that they are still running when the target goes away; output in /tmp/fio-NAME.log.
fio_background() {
    name=$1
    at=$2
    shift 2
    echo "+ fio $name in the background (at MiB $at) $*"
    fio --name="$name" --filename="$DEV" --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
        --iodepth=8 --offset="${at}m" --size=8m --rate_iops=400 --randrepeat=0 "$@" \
        >"/tmp/fio-$name.log" 2>&1 &
    FIO_PID=$!
}

fio_wait() {
    wait "$FIO_PID"
    rc=$?
    grep -E 'err=|^ +(read|write):' "/tmp/fio-$1.log"
    [ "$rc" -eq 0 ] || { cat "/tmp/fio-$1.log"; fail "fio $1 (across the restart) exited with $rc"; }
    grep -q 'err= 0:' "/tmp/fio-$1.log" || fail "fio $1 reported an error"
    echo "ok: fio $1 completed across the restart without an error"
}

# check_reconnect TERM|KILL: data written and flushed before survives, I/O running across the
# restart completes (verified after a SIGTERM, which drains and flushes; only completed after a
# SIGKILL, whose unflushed writes a volatile write cache may lose), and I/O works after.
check_reconnect() {
    sig=$1
    step "lamina restarted by SIG$sig under I/O; the host reconnects by itself"
    cntlid=$(cat "/sys/class/nvme/$CTRL/cntlid")
    before=$(dmesg | grep -c 'Successfully reconnected')
    write_check "before-$sig" 8 760 "$MIB" oflag=direct iflag=direct
    kept=$WRITTEN_SUM
    if [ "$sig" = TERM ]; then
        job="term"
        fio_background $job 800 --verify=crc32c --do_verify=1 --verify_fatal=1
    else
        job="kill"
        fio_background $job 840 --time_based --runtime=12
    fi
    sleep 3
    kill -0 "$FIO_PID" 2>/dev/null || fail "fio finished before the target was stopped"
    stop_lamina "$sig" "$([ "$sig" = KILL ] && echo 137 || echo 0)"
    wait_state '!live' 15
    start_lamina "after SIG$sig, same data dir"
    step "$CTRL reconnects without a new nvme connect"
    wait_state live 60
    dmesg | grep 'nvme.*reconnect' | tail -n 3
    [ "$(dmesg | grep -c 'Successfully reconnected')" -gt "$before" ] ||
        fail "the kernel logged no new successful reconnect"
    same_controller
    find_devices || fail "namespace 1 has no block device after the reconnect"
    fio_wait $job
    read_sum 8 760 "$MIB" iflag=direct
    expect "sha256 of 8 MiB written and flushed before SIG$sig" "$SUM" "$kept"
    write_check "after-$sig" 4 780 "$MIB" oflag=direct iflag=direct
    echo "(controller ID was $cntlid, now $(cat "/sys/class/nvme/$CTRL/cntlid"))"
}

check_resize() {
    step "lvol resized over RPC while connected: AEN, rescan, new size"
    cntlid=$(cat "/sys/class/nvme/$CTRL/cntlid")
    name=${DEV#/dev/}
    old=$(cat "/sys/block/$name/size")
    new_mib=$((old / 2048 + 512))
    lamina_rpc bdev_lvol_resize "{\"name\":\"lvs0/vol0\",\"size_in_mib\":$new_mib}"
    i=0
    while [ "$(cat "/sys/block/$name/size")" != $((new_mib * 2048)) ]; do
        [ "$i" -lt 30 ] || fail "$name still has $(cat "/sys/block/$name/size") sectors 30s after the resize"
        sleep 1
        i=$((i + 1))
    done
    echo "ok: $name grew from $old to $((new_mib * 2048)) sectors in ${i}s"
    dmesg | grep "$name: detected capacity change" | tail -n 1 || fail "no capacity change in the kernel log"
    run nvme id-ns "$DEV"
    get_number nsze "$OUT"
    expect "id-ns nsze * LBA size after the resize" $((NUM * EXPECT_LBA_SIZE)) $((new_mib * MIB))
    write_check "past-old-end" 1 $((new_mib - 1)) "$MIB" oflag=direct iflag=direct
    same_controller "$cntlid"
}

# wait_ns_dev NSID present|gone WHY: waits up to 30 s for namespace NSID of TARGET_NQN to get
# its block device (present: NS_DEV is set to it) or to lose it (gone: NS_DEV, the device seen
# before, must be gone too); WHY ends the failure message.
wait_ns_dev() {
    i=0
    while :; do
        now=$(ns_dev "$1")
        case "$2" in
        present) [ -n "$now" ] && break ;;
        gone) [ -z "$now" ] && ! [ -b "${NS_DEV:-}" ] && break ;;
        esac
        [ "$i" -lt 30 ] || fail "namespace $1 not $2 30s after $3"
        sleep 1
        i=$((i + 1))
    done
    [ "$2" = present ] && NS_DEV=$now
    echo "ok: namespace $1 $2 after ${i}s${now:+ ($now)}"
}

check_hot_namespace() {
    step "namespace 2 added over RPC while connected"
    cntlid=$(cat "/sys/class/nvme/$CTRL/cntlid")
    lamina_rpc bdev_lvol_create '{"lvs_name":"lvs0","lvol_name":"hot","size_in_mib":64,"thin_provision":true}'
    lamina_rpc nvmf_subsystem_add_ns "{\"nqn\":\"$TARGET_NQN\",\"namespace\":{\"bdev_name\":\"lvs0/hot\",\"nsid\":2}}"
    wait_ns_dev 2 present "adding it"
    dev1=$DEV
    DEV=$NS_DEV
    expect "size of $DEV" "$(blockdev --getsize64 "$DEV")" $((64 * MIB))
    write_check "namespace-2" 4 0 "$MIB" oflag=direct iflag=direct
    hot=$DEV
    DEV=$dev1
    same_controller "$cntlid"

    step "namespace 2 removed over RPC while connected"
    lamina_rpc nvmf_subsystem_remove_ns "{\"nqn\":\"$TARGET_NQN\",\"nsid\":2}"
    NS_DEV=$hot
    wait_ns_dev 2 gone "removing it"
    write_check "namespace-1-after-removal" 1 790 "$MIB" oflag=direct iflag=direct
    same_controller "$cntlid"
}

# Namespace masking with the Linux host: a namespace added with no_auto_visible gets no block
# device; listed for this host's NQN with nvmf_ns_add_host, the host hears of it (Namespace
# Attribute Changed) and the device appears; nvmf_ns_remove_host makes it go again.
check_masked_namespace() {
    step "namespace 3, added with no_auto_visible, appears only once listed for this host"
    cntlid=$(cat "/sys/class/nvme/$CTRL/cntlid")
    hostnqn=$(cat "/sys/class/nvme/$CTRL/hostnqn")
    lamina_rpc bdev_lvol_create '{"lvs_name":"lvs0","lvol_name":"masked","size_in_mib":32,"thin_provision":true}'
    lamina_rpc nvmf_subsystem_add_ns "{\"nqn\":\"$TARGET_NQN\",\"namespace\":{\"bdev_name\":\"lvs0/masked\",\"nsid\":3,\"no_auto_visible\":true}}"
    # The add notifies every host; this one rescans and must find nothing to attach.
    sleep 3
    [ -z "$(ns_dev 3)" ] || fail "namespace 3 has a block device before it was listed for $hostnqn"
    run nvme list-ns "/dev/$CTRL"
    case "$OUT" in *0x3*) fail "namespace 3 is in the active list before it was listed: $OUT" ;; esac
    echo "ok: namespace 3 is inactive for this host"
    lamina_rpc nvmf_ns_add_host "{\"nqn\":\"$TARGET_NQN\",\"nsid\":3,\"host\":\"$hostnqn\"}"
    wait_ns_dev 3 present "listing $hostnqn"
    dev1=$DEV
    DEV=$NS_DEV
    expect "size of $DEV" "$(blockdev --getsize64 "$DEV")" $((32 * MIB))
    write_check "namespace-3" 2 0 "$MIB" oflag=direct iflag=direct
    masked=$DEV
    DEV=$dev1

    step "namespace 3 goes once this host is taken off its list"
    lamina_rpc nvmf_ns_remove_host "{\"nqn\":\"$TARGET_NQN\",\"nsid\":3,\"host\":\"$hostnqn\"}"
    NS_DEV=$masked
    wait_ns_dev 3 gone "nvmf_ns_remove_host"
    lamina_rpc nvmf_subsystem_remove_ns "{\"nqn\":\"$TARGET_NQN\",\"nsid\":3}"
    same_controller "$cntlid"
}

# A discovery referral added over RPC is an entry of the host's discovery log page (subtype 1,
# another discovery subsystem), and is gone once removed.
check_referral() {
    step "a discovery referral added over RPC shows in nvme discover, then goes"
    ref='"address":{"trtype":"TCP","adrfam":"IPv4","traddr":"127.0.0.9","trsvcid":"8009"}'
    lamina_rpc nvmf_discovery_add_referral "{$ref}"
    run nvme discover -t tcp -a "$TARGET_ADDR" -s "$TARGET_PORT"
    entry=$(echo "$OUT" | awk '/^=====Discovery Log Entry/ { rec = "" } { rec = rec $0 "\n" }
        /^traddr:/ && $2 == "127.0.0.9" { printf "%s", rec; exit }')
    [ -n "$entry" ] || fail "no discovery log entry for the referral to 127.0.0.9:8009"
    expect "referral subtype" "$(field subtype "$entry")" "discovery subsystem referral"
    expect "referral trsvcid" "$(field trsvcid "$entry")" 8009
    expect "referral trtype" "$(field trtype "$entry")" tcp
    lamina_rpc nvmf_discovery_remove_referral "{$ref}"
    run nvme discover -t tcp -a "$TARGET_ADDR" -s "$TARGET_PORT"
    if echo "$OUT" | grep -qE "^traddr: *127\.0\.0\.9"; then
        fail "the referral to 127.0.0.9 is still in the discovery log after its removal"
    fi
    echo "ok: referral listed, then removed"
}
