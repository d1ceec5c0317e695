#!/usr/bin/env bash
# What TLS costs: one Lamina (core 0) with one 1 GiB RAM bdev exported on a clear-text port
# and on a secure-channel port (TLS 1.3, a SHA-256 PSK), measured by an initiator on core 1,
# alternating clear, TLS, clear, TLS for each row. Initiators: Lamina's own lamina-perf
# (`--tls-key`) and SPDK's spdk_nvme_perf (`-S ssl --psk-path`) when an SPDK build is there.
# CPU is Lamina's utime + stime over each run, per I/O.
#
#   integration/bench/tls-cost.sh [--time SECS] [--rounds N] [--initiator lamina|spdk|both]
#
# Environment: SPDK_DIR (default /tmp/spdk26; SPDK 24.01 or later), LAMINA_BIN (default
# build/release/lamina, built with lamina-perf if missing). Prints a table of medians.
set -euo pipefail
cd "$(dirname "$0")/../.."
TIME=5
ROUNDS=3
INITIATOR=
while [ $# -gt 0 ]; do
    case $1 in
    --time) TIME=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --initiator) INITIATOR=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
SPDK_DIR=${SPDK_DIR:-/tmp/spdk26}
if [ -z "$INITIATOR" ]; then
    if [ -x "$SPDK_DIR/build/bin/spdk_nvme_perf" ]; then INITIATOR=both; else INITIATOR=lamina; fi
fi
LAMINA_PERF=$(dirname "${LAMINA_BIN:-build/release/lamina}")/lamina-perf
[ -x "$LAMINA_PERF" ] || cargo build --release --locked -p lamina-target -p lamina-integration --bins
if [ "$INITIATOR" = lamina ]; then
    # The shared setup wants spdk_nvme_perf only to exist when SPDK is used.
    PERF_OPTIONAL=1
fi
# shellcheck source=../clients/spdk-host-lib.sh
. integration/clients/spdk-host-lib.sh
tls_port=$((port + 1))
nqn=nqn.2026-12.io.lamina:bench
host=nqn.2014-08.org.nvmexpress:uuid:1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5
LAMINA_PREFIX="taskset -c 0" start_lamina --no-default
interchange_key NVMeTLSkey-1 01 32 >"$work/psk.key"
chmod 600 "$work/psk.key"
listen() { printf '{"trtype":"tcp","adrfam":"ipv4","traddr":"127.0.0.1","trsvcid":"%s"}' "$1"; }
rpc keyring_file_add_key "{\"name\":\"tls0\",\"path\":\"$work/psk.key\"}"
rpc bdev_malloc_create '{"name":"ram0","num_blocks":262144,"block_size":4096}'
rpc nvmf_create_subsystem "{\"nqn\":\"$nqn\",\"allow_any_host\":false}"
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$nqn\",\"namespace\":{\"bdev_name\":\"ram0\"}}"
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$nqn\",\"listen_address\":$(listen "$port")}"
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$nqn\",\"listen_address\":$(listen "$tls_port"),\"secure_channel\":true}"
rpc nvmf_subsystem_add_host "{\"nqn\":\"$nqn\",\"host\":\"$host\",\"psk\":\"tls0\"}"

cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
# iops INITIATOR MODE WORKLOAD SIZE QD: the run's IOPS on stdout.
iops() {
    local who=$1 mode=$2 p=$port
    [ "$mode" = tls ] && p=$tls_port
    if [ "$who" = spdk ]; then
        local extra=()
        [ "$mode" = tls ] && extra=(-S ssl --psk-path "$work/psk.key")
        taskset -c 1 "$PERF" --no-huge -s 1024 -t "$TIME" -q "$5" -o "$4" -w "$3" "${extra[@]}" \
            -r "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$p subnqn:$nqn hostnqn:$host" 2>&1 |
            awk '/^Total/ { print $3 }'
    else
        local extra=()
        [ "$mode" = tls ] && extra=(--tls-key "$work/psk.key")
        taskset -c 1 "$LAMINA_PERF" -a "127.0.0.1:$p" -n "$nqn" --hostnqn "$host" "${extra[@]}" \
            -q "$5" -o "$4" -w "$3" -t "$TIME" --json |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["total"]["all"]["iops"])'
    fi
}
# run INITIATOR MODE WORKLOAD SIZE QD: "IOPS CPU_TICKS".
run() {
    local before after n
    before=$(cpu)
    n=$(iops "$@" || true)
    after=$(cpu)
    echo "${n:-0} $((after - before))"
}
case $INITIATOR in
both) initiators="lamina spdk" ;;
*) initiators=$INITIATOR ;;
esac
first=${initiators%% *}
run "$first" clear write 131072 8 >/dev/null # fill
results=$work/results
for who in $initiators; do
    for row in "randread 4096 32" "randwrite 4096 32" "read 131072 8" "write 131072 8"; do
        set -- $row
        for _ in $(seq "$ROUNDS"); do
            for mode in clear tls; do
                echo "$who $mode $1 $2 $3 $(run "$who" "$mode" "$1" "$2" "$3")" | tee -a "$results"
            done
        done
    done
done
python3 - "$results" "$(getconf CLK_TCK)" "$TIME" <<'PY'
import statistics, sys
hz, secs = int(sys.argv[2]), float(sys.argv[3])
rows = {}
for line in open(sys.argv[1]):
    who, mode, w, size, qd, iops, ticks = line.split()
    iops, cpu = float(iops), int(ticks) / hz
    # Target CPU per I/O: its CPU seconds over the I/Os of the run.
    per_io = cpu / (iops * secs) * 1e6 if float(iops) else 0.0
    rows.setdefault((who, w, int(size), int(qd)), {}).setdefault(mode, []).append((iops, per_io))
print("| initiator | row | clear IOPS | TLS IOPS | TLS / clear | clear CPU µs/I/O | TLS CPU µs/I/O |")
print("|---|---|---|---|---|---|---|")
for (who, w, size, qd), m in rows.items():
    med = {k: (statistics.median(i for i, _ in v), statistics.median(c for _, c in v))
           for k, v in m.items()}
    ratio = med["tls"][0] / med["clear"][0] if med["clear"][0] else 0
    print(f"| {who} | {size // 1024} KiB {w} QD{qd} | {med['clear'][0]:.0f} | {med['tls'][0]:.0f} "
          f"| {ratio:.2f} | {med['clear'][1]:.1f} | {med['tls'][1]:.1f} |")
PY
