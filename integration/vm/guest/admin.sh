# shellcheck shell=sh
# nvme-cli's admin commands and discard on a connected controller, part of run_common_checks
# (sourced by checks.sh): ns-descs, get-feature, smart-log, error-log, blkdiscard. Each value
# is checked against what the host itself knows (sysfs, id-ctrl, id-ns) or against I/O the
# check just did, never against a constant the target happens to report.
# Setting: EXPECT_PAST_END_SC: the status code (SCT << 8 | SC) a read past the end must fail
# with; empty [default] accepts any error (nvmet lets the block layer fail it: Internal Error).
# Hook: allocated_clusters (prints the clusters the target's volume of namespace 1 holds;
# the default prints nothing and the allocation checks are skipped).

allocated_clusters() { :; }

# Sets NUM to the first number (decimal or 0x-hex) of field $1 in output $2.
first_number() {
    NUM=$(field "$1" "$2" | sed -n 's/^\(0x[0-9a-fA-F]*\|[0-9]*\).*/\1/p')
    [ -n "$NUM" ] || fail "no number in field '$1': '$(field "$1" "$2")'"
}

# Sets FEAT to the current value of feature $1 (nvme get-feature, current values).
get_feature() {
    run nvme get-feature "/dev/$CTRL" -f "$1"
    FEAT=$(echo "$OUT" | sed -n 's/.*Current value: *\(0x[0-9a-fA-F]*\).*/\1/p' | head -n 1)
    [ -n "$FEAT" ] || fail "get-feature $1 printed no current value"
}

# Sets SMART_<counter> from nvme smart-log.
smart_log() {
    run nvme smart-log "/dev/$CTRL"
    first_number critical_warning "$OUT"
    expect "smart-log critical_warning" "$((NUM))" 0
    first_number "Data Units Read" "$OUT"
    SMART_DUR=$NUM
    first_number "Data Units Written" "$OUT"
    SMART_DUW=$NUM
    first_number host_read_commands "$OUT"
    SMART_HRC=$NUM
    first_number host_write_commands "$OUT"
    SMART_HWC=$NUM
    first_number num_err_log_entries "$OUT"
    SMART_ERRS=$NUM
}

# at_least WHAT DELTA MIN
at_least() {
    [ "$2" -ge "$3" ] || fail "$1 grew by $2, expected at least $3"
    echo "ok: $1 grew by $2 (>= $3)"
}

check_admin() {
    step "nvme ns-descs $DEV"
    run nvme ns-descs "$DEV"
    expect "ns-descs nguid" "$(field nguid "$OUT")" "$NS_NGUID"
    uuid=$(field uuid "$OUT")
    case "$uuid" in
    '') echo "note: no UUID descriptor" ;;
    ????????-????-????-????-????????????) echo "ok: ns-descs uuid $uuid" ;;
    *) fail "malformed UUID descriptor '$uuid'" ;;
    esac

    step "nvme get-feature: queues, write cache, keep alive, async events"
    ioqs=$(($(cat "/sys/class/nvme/$CTRL/queue_count") - 1))
    get_feature 0x7
    if [ $((FEAT & 0xffff)) -lt $((ioqs - 1)) ] || [ $((FEAT >> 16)) -lt $((ioqs - 1)) ]; then
        fail "number of queues $FEAT allocates fewer than the $ioqs I/O queues the host uses"
    fi
    echo "ok: number of queues $FEAT covers the host's $ioqs I/O queues"
    get_feature 0x6
    expect "volatile write cache enabled (feature 6 bit 0)" "$((FEAT & 1))" 1
    get_feature 0xf
    expect "keep alive timer (ms)" "$((FEAT))" "$(($(cat "/sys/class/nvme/$CTRL/kato") * 1000))"
    get_feature 0xb
    expect "namespace attribute notices enabled by the host (feature 0xb bit 8)" "$((FEAT >> 8 & 1))" 1

    step "nvme smart-log counts the I/O just done"
    smart_log
    dur=$SMART_DUR duw=$SMART_DUW hrc=$SMART_HRC hwc=$SMART_HWC
    run dd if=/dev/urandom of="$DEV" bs="$MIB" count=4 seek=900 oflag=direct
    run dd if="$DEV" of=/dev/null bs="$MIB" count=4 skip=900 iflag=direct
    smart_log
    # A data unit is 1000 blocks of 512 bytes: 4 MiB is at least 8 of them.
    at_least "Data Units Written" $((SMART_DUW - duw)) 8
    at_least "Data Units Read" $((SMART_DUR - dur)) 8
    at_least host_write_commands $((SMART_HWC - hwc)) 1
    at_least host_read_commands $((SMART_HRC - hrc)) 1

    step "nvme error-log records a command that failed (read past the end)"
    errs=$SMART_ERRS
    run nvme id-ns "$DEV"
    get_number nsze "$OUT"
    nsze=$((NUM))
    echo "+ nvme read $DEV --start-block=$nsze --block-count=0 --data-size=$EXPECT_LBA_SIZE"
    out=$(nvme read "$DEV" --start-block="$nsze" --block-count=0 --data-size="$EXPECT_LBA_SIZE" \
        --data=/tmp/past-end 2>&1) && fail "a read at LBA $nsze (the namespace has $nsze) succeeded"
    echo "$out"
    sc=$(echo "$out" | sed -n 's/^NVMe status: .*(\(0x[0-9a-fA-F]*\))$/\1/p')
    [ -n "$sc" ] || fail "nvme read printed no NVMe status"
    sc=$(printf '0x%x' $((sc & 0x7ff)))
    if [ -n "${EXPECT_PAST_END_SC:-}" ]; then
        expect "status of a read past the end" "$sc" "$EXPECT_PAST_END_SC"
    else
        echo "ok: the read failed with status $sc"
    fi
    run nvme error-log "/dev/$CTRL" --log-entries=1
    entry=$OUT
    first_number error_count "$entry"
    [ "$((NUM))" -gt "$errs" ] || fail "newest error_count $NUM, expected over smart-log's $errs"
    echo "ok: newest error log entry has error_count $NUM"
    first_number sqid "$entry"
    [ "$((NUM))" -ge 1 ] || fail "error on sqid $NUM, expected an I/O queue"
    echo "ok: error on I/O queue $NUM"
    first_number status_field "$entry"
    expect "error log status (SCT/SC)" "$(printf '0x%x' $((NUM & 0x7ff)))" "$sc"
    if [ "$sc" = 0x80 ]; then
        first_number lba "$entry"
        expect "error log lba" "$((NUM))" "$nsze"
    fi
    first_number nsid "$entry"
    expect "error nsid" "$((NUM))" 1
    smart_log
    at_least num_err_log_entries $((SMART_ERRS - errs)) 1
}

# Discard on the host: whole 4 MiB clusters and a few blocks inside one, on 16 MiB of data at
# MiB 704. The deallocated ranges must read as zeros when id-ns DLFEAT says so (Lamina's does);
# everything around them must be unchanged. Leaves data in the first and last 4 MiB of the
# range, which check_ext4 expects mkfs's own discard pass to clear.
DISCARD_AT_MIB=704
check_discard() {
    step "blkdiscard: deallocated blocks read as zeros, their neighbours are intact"
    name=${DEV#/dev/}
    max=$(cat "/sys/block/$name/queue/discard_max_bytes")
    [ "$max" -gt 0 ] || fail "$DEV does not support discard (discard_max_bytes 0)"
    echo "ok: $DEV discards up to $max bytes per command"
    run nvme id-ns "$DEV"
    get_number dlfeat "$OUT"
    DISCARD_ZEROES=$(((NUM & 7) == 1))
    echo "dlfeat $NUM: deallocated blocks $([ "$DISCARD_ZEROES" = 1 ] && echo read as zeros || echo may read as anything)"
    at=$((DISCARD_AT_MIB * MIB))
    run dd if=/dev/urandom of=/tmp/discard-pattern bs="$MIB" count=16
    run dd if=/tmp/discard-pattern of="$DEV" bs="$MIB" seek=$DISCARD_AT_MIB oflag=direct conv=fsync
    before=$(allocated_clusters)
    run blkdiscard -o $((at + 4 * MIB)) -l $((8 * MIB)) "$DEV"
    run blkdiscard -o $((at + 12288)) -l 20480 "$DEV"
    after=$(allocated_clusters)
    if [ -n "$before" ]; then
        expect "clusters the target frees for 8 MiB of whole clusters" $((before - after)) 2
    fi
    # The expected image: the pattern with the discarded ranges zeroed (or left as read).
    cp /tmp/discard-pattern /tmp/discard-expect
    run dd if="$DEV" of=/tmp/discard-read bs="$MIB" count=16 skip=$DISCARD_AT_MIB iflag=direct
    if [ "$DISCARD_ZEROES" = 1 ]; then
        run dd if=/dev/zero of=/tmp/discard-expect bs="$MIB" seek=4 count=8 conv=notrunc
        run dd if=/dev/zero of=/tmp/discard-expect bs=4096 seek=3 count=5 conv=notrunc
    else
        run dd if=/tmp/discard-read of=/tmp/discard-expect bs="$MIB" skip=4 seek=4 count=8 conv=notrunc
        run dd if=/tmp/discard-read of=/tmp/discard-expect bs=4096 skip=3 seek=3 count=5 conv=notrunc
    fi
    cmp /tmp/discard-expect /tmp/discard-read || fail "16 MiB at MiB $DISCARD_AT_MIB differ after the discards"
    echo "ok: discarded ranges (8 MiB whole, 20 KiB inside a MiB) read as expected, neighbours intact"
    rm -f /tmp/discard-pattern /tmp/discard-expect /tmp/discard-read
}

# After mkfs.ext4 (which discards the whole device first), the data check_discard left at
# MiB 704..720, where mke2fs writes nothing, must read as zeros.
check_mkfs_discarded() {
    [ "${DISCARD_ZEROES:-0}" = 1 ] || return 0
    read_sum 16 $DISCARD_AT_MIB "$MIB" iflag=direct
    zeros=$(dd if=/dev/zero bs="$MIB" count=16 2>/dev/null | sha256sum | cut -d' ' -f1)
    expect "sha256 of MiB $DISCARD_AT_MIB..$((DISCARD_AT_MIB + 16)) after mkfs.ext4's discard" "$SUM" "$zeros"
}
