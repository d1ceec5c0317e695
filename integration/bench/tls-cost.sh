#!/usr/bin/env bash
# What TLS costs: one Lamina, one 1 GiB RAM bdev exported on a clear-text port and on a
# secure-channel port (TLS 1.3, a SHA-256 PSK: TLS_AES_128_GCM_SHA256), measured by SPDK's
# spdk_nvme_perf (`-S ssl --psk-path` on the TLS port) alternating clear, TLS, clear, TLS for
# each row. Lamina on core 0, perf on core 1; CPU is Lamina's utime + stime over each run.
#
#   integration/bench/tls-cost.sh [--time SECS] [--rounds N]
#
# Environment: SPDK_DIR (default /tmp/spdk26; any SPDK 24.01 or later with the ssl socket),
# LAMINA_BIN (default build/release/lamina, built if missing). Prints a table of medians.
set -euo pipefail
cd "$(dirname "$0")/../.."
TIME=5
ROUNDS=3
while [ $# -gt 0 ]; do
    case $1 in
    --time) TIME=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
SPDK_DIR=${SPDK_DIR:-/tmp/spdk26}
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
# run MODE WORKLOAD SIZE QD: prints "IOPS CPU_SECONDS".
run() {
    local mode=$1 extra=() p=$port
    if [ "$mode" = tls ]; then extra=(-S ssl --psk-path "$work/psk.key"); p=$tls_port; fi
    local before after iops
    before=$(cpu)
    iops=$(taskset -c 1 "$PERF" --no-huge -s 1024 -t "$TIME" -q "$4" -o "$3" -w "$2" "${extra[@]}" \
        -r "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$p subnqn:$nqn hostnqn:$host" 2>&1 |
        awk '/^Total/ { print $3 }')
    after=$(cpu)
    echo "${iops:-0} $(( after - before ))"
}
run clear write 131072 8 >/dev/null # fill
hz=$(getconf CLK_TCK)
results=$work/results
for row in "randread 4096 32" "randwrite 4096 32" "read 131072 8" "write 131072 8"; do
    set -- $row
    for _ in $(seq "$ROUNDS"); do
        for mode in clear tls; do
            echo "$mode $1 $2 $3 $(run "$mode" "$1" "$2" "$3")" | tee -a "$results"
        done
    done
done
python3 - "$results" "$hz" "$TIME" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    mode, w, size, qd, iops, ticks = line.split()
    rows.setdefault((w, int(size), int(qd)), {}).setdefault(mode, []).append(
        (float(iops), int(ticks) / int(sys.argv[2]) / float(sys.argv[3])))
print("| row | clear IOPS | TLS IOPS | TLS / clear | clear CPU µs per I/O | TLS CPU µs per I/O |")
print("|---|---|---|---|---|---|")
for (w, size, qd), m in rows.items():
    med = {k: (statistics.median(i for i, _ in v), statistics.median(c for _, c in v)) for k, v in m.items()}
    per = {k: (c / i * 1e6 if i else 0) for k, (i, c) in med.items()}
    print(f"| {size // 1024} KiB {w} QD{qd} | {med['clear'][0]:.0f} | {med['tls'][0]:.0f} | "
          f"{med['tls'][0] / med['clear'][0]:.2f} | {per['clear']:.1f} | {per['tls']:.1f} |")
PY
