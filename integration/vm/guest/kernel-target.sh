# shellcheck shell=sh
# Reference run of the VM harness against the Linux kernel's own NVMe/TCP target (nvmet-tcp,
# configured through configfs) on 127.0.0.1:4420, exporting a 1 GiB memory-backed null_blk
# device with 4 KiB blocks, like Lamina's default namespace. Then the common initiator checks.
# Run from the host with: integration/vm/run.sh --script integration/vm/guest/kernel-target.sh

# shellcheck source=checks.sh
. /test/checks.sh

TARGET_NQN=nqn.2026-11.io.lamina:kernel-target
NVMET=/sys/kernel/config/nvmet

target_evidence() {
    for f in "$NVMET"/ports/1/addr_* "$NVMET/subsystems/$TARGET_NQN/namespaces/1/enable"; do
        [ -r "$f" ] && echo "$f: $(cat "$f")"
    done
    ls -l "$NVMET/ports/1/subsystems/" 2>/dev/null
    return 0
}

# configfs attribute write that fails the step when the kernel refuses it.
set_attr() {
    echo "+ echo $2 > $1"
    echo "$2" >"$1" || fail "the kernel refused '$2' for $1"
}

step "start the kernel target: null_blk + nvmet-tcp on $TARGET_ADDR:$TARGET_PORT"
# memory_backed keeps written data (a plain null_blk discards it); discard=1 lets the host
# deallocate, as mkfs.ext4 does.
run modprobe null_blk nr_devices=1 gb=1 bs=4096 memory_backed=1 discard=1
run modprobe nvmet-tcp
[ -b /dev/nullb0 ] || fail "null_blk created no /dev/nullb0"
[ -d "$NVMET" ] || fail "no $NVMET (configfs or nvmet missing)"

subsys="$NVMET/subsystems/$TARGET_NQN"
run mkdir "$subsys"
set_attr "$subsys/attr_allow_any_host" 1
run mkdir "$subsys/namespaces/1"
set_attr "$subsys/namespaces/1/device_path" /dev/nullb0
# nvmet reports an all-zero NGUID unless told one; the checks want a real identifier.
set_attr "$subsys/namespaces/1/device_nguid" "$(cat /proc/sys/kernel/random/uuid)"
set_attr "$subsys/namespaces/1/enable" 1

port="$NVMET/ports/1"
run mkdir "$port"
set_attr "$port/addr_trtype" tcp
set_attr "$port/addr_adrfam" ipv4
set_attr "$port/addr_traddr" "$TARGET_ADDR"
set_attr "$port/addr_trsvcid" "$TARGET_PORT"
run ln -s "$subsys" "$port/subsystems/$TARGET_NQN"
wait_listen "$TARGET_PORT" 10 || fail "nothing listens on port $TARGET_PORT"
echo "ok: nvmet-tcp listens on $TARGET_ADDR:$TARGET_PORT"

run_common_checks

step "stop the kernel target"
run rm "$port/subsystems/$TARGET_NQN"
run rmdir "$port"
set_attr "$subsys/namespaces/1/enable" 0
run rmdir "$subsys/namespaces/1"
run rmdir "$subsys"
echo "ok: kernel target removed"
