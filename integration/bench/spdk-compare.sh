#!/usr/bin/env bash
# The same-run comparison of issue 16: Lamina's target and SPDK's nvmf_tgt side by side, both
# measured by SPDK's own initiator, spdk_nvme_perf, on a 1 GiB namespace (4 KiB blocks: a RAM
# bdev, a thin lvol on one, or a file; --backend). Both targets are started once (Lamina
# without hugepages, nvmf_tgt with them), configured over JSON-RPC with SPDK's rpc.py, filled
# once with sequential writes, then measured alternately (Lamina, SPDK, Lamina, SPDK, ... for
# each row); the target not being measured is stopped
# (SIGSTOP) meanwhile, since nvmf_tgt busy-polls its core even when idle. Needs root.
#
#   integration/bench/spdk-compare.sh [--time SECS] [--rounds N] [--rows LIST] [--digests]
#                                     [--backend malloc|lvol|file] [--spdk-zerocopy on|off]
#                                     [--cores MASK] [--perf-cores MASK] [--out FILE]
#
#   --time        measured seconds per run (default 10; 1 more of warm-up, --warmup SECS)
#   --rounds      runs per row and target (default 2); the table shows medians and spread
#   --rows        comma-separated subset of: randread-qd32,randwrite-qd32,read128k-qd8,
#                 write128k-qd8,randread-qd1,randrw-4x8 (default: all)
#   --digests     header and data digests on every connection (spdk_nvme_perf -H -I)
#   --backend     what the namespace is: malloc (default: the RAM bdev itself) or lvol (a
#                 thin 960 MiB lvol in an lvstore with 1 MiB clusters on that RAM bdev; the
#                 fill allocates every cluster, so the rows measure allocated clusters) or
#                 file (bdev_aio_create on a 1 GiB file of its own per target under the work
#                 directory, 4 KiB blocks; both open it with O_DIRECT: Lamina's file device
#                 with io_uring, SPDK's aio bdev with libaio)
#   --spdk-zerocopy  nvmf_tgt's MSG_ZEROCOPY sends (sock_impl_set_options -i posix
#                 --enable/--disable-zerocopy-send-server before framework_start_init;
#                 default: SPDK's own default, on). Lamina's are LAMINA_ZERO_COPY_MIN=BYTES.
#   --cores       CPU mask of both targets (default 0x1: taskset for Lamina, -m for nvmf_tgt)
#   --perf-cores  CPU mask of spdk_nvme_perf (default: the lowest core outside --cores)
#   --out         JSON with every run and the summary (default build/bench/spdk-compare.json)
#
# Environment: SPDK_DIR (default /tmp/spdk: an SPDK build, see shared/spdk/README.md),
# LAMINA_BIN (default CARGO_TARGET_DIR or build/, release profile; built if missing),
# LAMINA_SOCK_OPTS (rpc.py options of a `sock_impl_set_options -i posix` sent to Lamina before
# its transport exists, e.g. "--send-buf-size 2097152 --recv-buf-size 2097152", SPDK's own
# socket buffer sizes), HUGEPAGES (2 MiB pages reserved for nvmf_tgt, default 1024),
# BENCH_DIR (work directory's parent, default /var/tmp). The hugepage reservation and mount are undone on exit.
# Needs: taskset, stdbuf, python3. Results on a busy machine are meaningless: check `uptime`.
set -euo pipefail

cd "$(dirname "$0")/../.."
TIME=10
WARMUP=1
ROUNDS=2
ALL_ROWS="randread-qd32,randwrite-qd32,read128k-qd8,write128k-qd8,randread-qd1,randrw-4x8"
ROWS="$ALL_ROWS"
DIGESTS=0
SPDK_ZEROCOPY=""
BACKEND=malloc
CORES=0x1
PERF_CORES=""
OUT=build/bench/spdk-compare.json
while [ $# -gt 0 ]; do
    case "$1" in
        --time) TIME="$2"; shift 2 ;;
        --warmup) WARMUP="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --rows) ROWS="$2"; shift 2 ;;
        --digests) DIGESTS=1; shift ;;
        --spdk-zerocopy) SPDK_ZEROCOPY="$2"; shift 2 ;;
        --backend) BACKEND="$2"; shift 2 ;;
        --cores) CORES="$2"; shift 2 ;;
        --perf-cores) PERF_CORES="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        *) sed -n '2,29p' "$0"; exit 2 ;;
    esac
done

# row_spec ROW: sets LABEL and PERF_ARGS for one row of the table.
row_spec() {
    case "$1" in
        randread-qd32) LABEL="4k randread QD32"; PERF_ARGS=(-w randread -o 4096 -q 32) ;;
        randwrite-qd32) LABEL="4k randwrite QD32"; PERF_ARGS=(-w randwrite -o 4096 -q 32) ;;
        read128k-qd8) LABEL="128k seq read QD8"; PERF_ARGS=(-w read -o 131072 -q 8) ;;
        write128k-qd8) LABEL="128k seq write QD8"; PERF_ARGS=(-w write -o 131072 -q 8) ;;
        randread-qd1) LABEL="4k randread QD1"; PERF_ARGS=(-w randread -o 4096 -q 1) ;;
        randrw-4x8) LABEL="4k randrw 70/30 4x QD8"; PERF_ARGS=(-w randrw -M 70 -o 4096 -q 8 -P 4) ;;
        *) return 1 ;;
    esac
}
for row in ${ROWS//,/ }; do
    row_spec "$row" || { echo "unknown row $row (rows: $ALL_ROWS)" >&2; exit 2; }
done
if ! [[ "$TIME" =~ ^[1-9][0-9]*$ ]]; then echo "--time: whole seconds, 1 or more" >&2; exit 2; fi
if ! [[ "$WARMUP" =~ ^[0-9]+$ ]]; then echo "--warmup: whole seconds" >&2; exit 2; fi
if ! [[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]]; then echo "--rounds: 1 or more" >&2; exit 2; fi
case "$SPDK_ZEROCOPY" in ""|on|off) ;; *) echo "--spdk-zerocopy: on or off" >&2; exit 2 ;; esac
case "$BACKEND" in malloc|lvol|file) ;; *) echo "--backend: malloc, lvol or file" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "needs root (hugepages for nvmf_tgt)" >&2; exit 2; }

SPDK_DIR="${SPDK_DIR:-/tmp/spdk}"
NVMF_TGT="$SPDK_DIR/build/bin/nvmf_tgt"
SPDK_PERF="$SPDK_DIR/build/bin/spdk_nvme_perf"
RPC_PY="$SPDK_DIR/scripts/rpc.py"
for f in "$NVMF_TGT" "$SPDK_PERF" "$RPC_PY"; do
    [ -e "$f" ] || { echo "missing $f: build SPDK first (shared/spdk/README.md) or set SPDK_DIR" >&2; exit 2; }
done
export LD_LIBRARY_PATH="$SPDK_DIR/build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
LAMINA_BIN="${LAMINA_BIN:-${CARGO_TARGET_DIR:-build}/release/lamina}"
if [ ! -x "$LAMINA_BIN" ]; then
    cargo build --release --locked -p lamina-target
fi

# The initiator's core: the lowest one outside the targets' mask.
[[ "$CORES" =~ ^(0x)?[0-9a-fA-F]+$ ]] || { echo "--cores: a hex CPU mask" >&2; exit 2; }
if [ -z "$PERF_CORES" ]; then
    for ((i = 0; i < $(getconf _NPROCESSORS_ONLN); i++)); do
        if (( ((0x${CORES#0x} >> i) & 1) == 0 )); then PERF_CORES="$(printf '0x%x' $((1 << i)))"; break; fi
    done
    [ -n "$PERF_CORES" ] || { echo "no core left outside --cores $CORES: give --perf-cores" >&2; exit 2; }
fi
[[ "$PERF_CORES" =~ ^(0x)?[0-9a-fA-F]+$ ]] || { echo "--perf-cores: a hex CPU mask" >&2; exit 2; }
CORES="0x${CORES#0x}"
PERF_CORES="0x${PERF_CORES#0x}"

mkdir -p "$(dirname "$OUT")"
WORK="$(mktemp -d "${BENCH_DIR:-/var/tmp}/lamina-spdk-compare.XXXXXX")"
RAW="$WORK/runs.jsonl"
FILL="$WORK/fill.jsonl"
: > "$RAW"
HELPER="integration/bench/spdk_compare.py"
LPORT=4550           # Lamina's subsystem (its --listen, unused by the benchmark, is LPORT + 1)
SPORT=4560           # SPDK's subsystem
NQN_L=nqn.2026-11.io.lamina:compare
NQN_S=nqn.2016-06.io.spdk:compare
HOSTNQN=nqn.2026-11.io.lamina:compare-host
LSOCK="$WORK/lamina.sock"
SSOCK="$WORK/spdk.sock"
LPID=""
SPID=""
SPDK_PID_SEEN=""
HP_PREV="$(cat /proc/sys/vm/nr_hugepages)"
HP_MOUNTED=0
DPDK_BEFORE="$(ls /var/run/dpdk 2>/dev/null || true)"

stop_pid() {
    if [ -n "$1" ]; then
        kill -CONT "$1" 2>/dev/null || true
        kill "$1" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}
cleanup() {
    stop_pid "$LPID"; LPID=""
    stop_pid "$SPID"; SPID=""
    if [ "$HP_MOUNTED" = 1 ]; then umount /dev/hugepages || true; fi
    # nvmf_tgt's hugepage files, if the mount was there before (a clean exit removes them).
    if [ -n "$SPDK_PID_SEEN" ]; then rm -f "/dev/hugepages/spdk_pid${SPDK_PID_SEEN}map_"* 2>/dev/null || true; fi
    echo "$HP_PREV" > /proc/sys/vm/nr_hugepages || true
    # DPDK runtime directories of the processes started here (nvmf_tgt, spdk_nvme_perf).
    for d in /var/run/dpdk/spdk_pid*; do
        [ -e "$d" ] || continue
        grep -qxF "$(basename "$d")" <<< "$DPDK_BEFORE" || rm -rf "$d"
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# rpc SOCKET METHOD ARGS...: SPDK's rpc.py, on either target (its error on stderr).
rpc() {
    local sock="$1"; shift
    python3 "$RPC_PY" -s "$sock" -t 30 "$@" > /dev/null || { echo "rpc.py $* failed" >&2; return 1; }
}

# wait_rpc SOCKET PID LOG: waits (up to 60 s) for the target to answer on its RPC socket.
wait_rpc() {
    local _
    for _ in $(seq 600); do
        if ! kill -0 "$2" 2>/dev/null; then break; fi
        if [ -S "$1" ] && python3 "$RPC_PY" -s "$1" -t 2 spdk_get_version > /dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "the target did not start; its log:" >&2
    cat "$3" >&2
    exit 1
}

# configure SOCKET NQN SERIAL MODEL PORT: a 1 GiB RAM bdev, 4 KiB blocks (or a thin lvol on
# it, --backend lvol), exported on PORT.
configure() {
    local sock="$1" nqn="$2" serial="$3" model="$4" port="$5" bdev=Malloc0
    if [ "$sock" = "$LSOCK" ] && [ -n "${LAMINA_SOCK_OPTS:-}" ]; then
        # shellcheck disable=SC2086 # a list of rpc.py options, split on purpose
        rpc "$sock" sock_impl_set_options -i posix $LAMINA_SOCK_OPTS
    fi
    rpc "$sock" nvmf_create_transport -t TCP
    if [ "$BACKEND" = file ]; then
        truncate -s 1G "$WORK/$serial.img"
        rpc "$sock" bdev_aio_create "$WORK/$serial.img" Aio0 4096
        bdev=Aio0
    else
        rpc "$sock" bdev_malloc_create -b Malloc0 1024 4096
    fi
    if [ "$BACKEND" = lvol ]; then
        rpc "$sock" bdev_lvol_create_lvstore Malloc0 lvs0 -c 1048576
        rpc "$sock" bdev_lvol_create -l lvs0 -t lvol0 960
        bdev=lvs0/lvol0
    fi
    rpc "$sock" nvmf_create_subsystem "$nqn" -a -s "$serial" -d "$model"
    rpc "$sock" nvmf_subsystem_add_ns "$nqn" "$bdev"
    rpc "$sock" nvmf_subsystem_add_listener "$nqn" -t tcp -f ipv4 -a 127.0.0.1 -s "$port"
}

echo "== hugepages for nvmf_tgt (${HUGEPAGES:-1024} x 2 MiB)" >&2
if [ "$HP_PREV" -lt "${HUGEPAGES:-1024}" ]; then
    echo "${HUGEPAGES:-1024}" > /proc/sys/vm/nr_hugepages
fi
HP_NOW="$(cat /proc/sys/vm/nr_hugepages)"
[ "$HP_NOW" -ge "${HUGEPAGES:-1024}" ] || { echo "only $HP_NOW hugepages could be reserved" >&2; exit 1; }
if ! grep -q ' /dev/hugepages hugetlbfs ' /proc/mounts; then
    mkdir -p /dev/hugepages
    mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages
    HP_MOUNTED=1
fi

echo "== Lamina ($LAMINA_BIN, cores $CORES, no hugepages) on 127.0.0.1:$LPORT" >&2
taskset "$CORES" "$LAMINA_BIN" serve --no-default --data-dir "$WORK/lamina-data" \
    --rpc-socket "$LSOCK" --listen "127.0.0.1:$((LPORT + 1))" --log-level warn --allow-path "$WORK" \
    > "$WORK/lamina.log" 2>&1 &
LPID=$!
wait_rpc "$LSOCK" "$LPID" "$WORK/lamina.log"
configure "$LSOCK" "$NQN_L" LAMINA00000000000001 Lamina_Compare "$LPORT"

echo "== SPDK nvmf_tgt ($NVMF_TGT, -m $CORES, hugepages) on 127.0.0.1:$SPORT" >&2
WAIT_ARGS=()
if [ -n "$SPDK_ZEROCOPY" ]; then WAIT_ARGS=(--wait-for-rpc); fi
"$NVMF_TGT" -m "$CORES" --no-pci -r "$SSOCK" "${WAIT_ARGS[@]}" > "$WORK/spdk.log" 2>&1 &
SPID=$!
SPDK_PID_SEEN="$SPID"
wait_rpc "$SSOCK" "$SPID" "$WORK/spdk.log"
if [ -n "$SPDK_ZEROCOPY" ]; then
    if [ "$SPDK_ZEROCOPY" = on ]; then zc=--enable-zerocopy-send-server; else zc=--disable-zerocopy-send-server; fi
    rpc "$SSOCK" sock_impl_set_options -i posix "$zc"
    rpc "$SSOCK" framework_start_init
fi
configure "$SSOCK" "$NQN_S" SPDK00000000000001 SPDK_Compare "$SPORT"

DIGEST_ARGS=()
if [ "$DIGESTS" = 1 ]; then DIGEST_ARGS=(-H -I); fi

# measure TARGET ROW ROUND SECS WARMUP PERF-ARGS...: one spdk_nvme_perf run against TARGET
# (lamina or spdk) with the other target stopped; appended to $RAW (or $FILL for ROW fill).
measure() {
    local target="$1" row="$2" round="$3" secs="$4" warmup="$5"; shift 5
    local pid port nqn other raw="$RAW" label="$LABEL"
    if [ "$target" = lamina ]; then
        pid=$LPID; port=$LPORT; nqn=$NQN_L; other=$SPID
    else
        pid=$SPID; port=$SPORT; nqn=$NQN_S; other=$LPID
    fi
    if [ "$row" = fill ]; then raw="$FILL"; label="fill (128k seq write QD8)"; fi
    kill -STOP "$other"
    kill -CONT "$pid"
    sleep 0.5  # let the resumed target settle
    python3 "$HELPER" run --raw "$raw" --target "$target" --pid "$pid" --row "$row" \
        --label "$label" --round "$round" --warmup "$warmup" --time "$secs" -- \
        "$SPDK_PERF" --no-huge -s 1024 -c "$PERF_CORES" -t "$secs" -a "$warmup" "$@" \
        -r "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$port subnqn:$nqn hostnqn:$HOSTNQN"
    kill -CONT "$other"
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "$target exited; its log:" >&2
        cat "$WORK/$target.log" >&2
        exit 1
    fi
}

# Fill both namespaces once (1 GiB at 128 KiB QD8 several times over in 4 s): SPDK's malloc
# bdev is zeroed memory, while Lamina's RAM bdev answers never-written blocks without touching
# memory; after this, reads read real memory on both.
echo "== fill" >&2
measure lamina fill 1 4 0 -w write -o 131072 -q 8 "${DIGEST_ARGS[@]}"
measure spdk fill 1 4 0 -w write -o 131072 -q 8 "${DIGEST_ARGS[@]}"

echo "== ${TIME} s runs after ${WARMUP} s of warm-up, $ROUNDS round(s), targets on $CORES," \
    "spdk_nvme_perf on $PERF_CORES${DIGEST_ARGS[*]:+, digests (-H -I)}" >&2
for row in ${ROWS//,/ }; do
    row_spec "$row"
    for round in $(seq "$ROUNDS"); do
        for target in lamina spdk; do
            measure "$target" "$row" "$round" "$TIME" "$WARMUP" -L "${PERF_ARGS[@]}" "${DIGEST_ARGS[@]}"
        done
    done
done

META="$(python3 -c 'import json, sys
a = sys.argv[1:]
print(json.dumps({k: int(v) if v.isdigit() else v for k, v in zip(a[::2], a[1::2])}))' \
    lamina_bin "$(realpath "$LAMINA_BIN")" lamina_version "$("$LAMINA_BIN" --version 2>/dev/null || true)" \
    checkout "$(git rev-parse --short HEAD 2>/dev/null || true)$(git status --porcelain -uno 2>/dev/null | grep -q . && echo ' (uncommitted changes)') (the tree this ran from; lamina_bin may be another build)" \
    lamina_env "$(env | grep '^LAMINA_' | grep -v '^LAMINA_BIN=' | sort | tr '\n' ' ' || true)" \
    spdk_dir "$SPDK_DIR" spdk_zerocopy "${SPDK_ZEROCOPY:-default}" \
    spdk_version "$(python3 "$RPC_PY" -s "$SSOCK" spdk_get_version 2>/dev/null \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])' || true)" \
    target_cores "$CORES" perf_cores "$PERF_CORES" time_s "$TIME" warmup_s "$WARMUP" \
    rounds "$ROUNDS" digests "$DIGESTS" hugepages "$HP_NOW" \
    namespace "$(case "$BACKEND" in
        lvol) echo "thin 960 MiB lvol (1 MiB clusters, allocated by the fill) on a 1 GiB malloc" ;;
        file) echo "1 GiB file under $(dirname "$WORK") (O_DIRECT; $(df -T "$WORK" | awk 'NR == 2 { print $2 }'))" ;;
        *) echo "1 GiB malloc" ;;
    esac), 4096-byte blocks" \
    note "the idle target is SIGSTOPped while the other is measured; CPU is the target process's utime+stime (softirq work not charged to it is not counted)")"
python3 "$HELPER" report --raw "$RAW" --fill "$FILL" --out "$OUT" --meta "$META"
if [ "$DIGESTS" = 1 ]; then
    echo "(digests: this SPDK build has no ISA-L, so nvmf_tgt and spdk_nvme_perf compute CRC32C with SPDK's SSE4.2 fallback)"
fi
