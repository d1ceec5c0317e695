#!/usr/bin/env bash
# integration/prometheus/overhead.sh: what per-command counting costs, end to end.
#
# Runs lamina-perf against `lamina serve` with counting on (the default) and off
# (LAMINA_IO_STATS=off skips every per-command counter: namespace commands, bytes, latency
# histogram, in-flight gauge, PDU counts), alternating the order each round so drift on a
# shared machine hits both sides alike, and prints the median IOPS of each and the difference,
# plus lamina's CPU time per I/O (process_cpu_seconds_total over the run divided by the I/Os
# lamina-perf counted), which a busy machine disturbs less than IOPS.
#
#   integration/prometheus/overhead.sh [ROUNDS]          (default 5 rounds)
#
# Environment: LAMINA_BIN, LAMINA_PERF_BIN (default build/release/...), OVERHEAD_SECONDS (10),
# OVERHEAD_WORKLOAD (randread), OVERHEAD_IO_SIZE (4096), OVERHEAD_QD (32), OVERHEAD_CONNS (2).
# Reads of a fresh thin lvol never touch the disk, so the command path dominates: the worst
# case for the relative cost of counting.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
# Cargo writes to build/ (.cargo/config.toml) unless CARGO_TARGET_DIR says otherwise.
OUT=${CARGO_TARGET_DIR:-$ROOT/build}
LAMINA=${LAMINA_BIN:-$OUT/release/lamina}
PERF=${LAMINA_PERF_BIN:-$OUT/release/lamina-perf}
ROUNDS=${1:-5}
SECONDS_PER_RUN=${OVERHEAD_SECONDS:-10}
WORKLOAD=${OVERHEAD_WORKLOAD:-randread}
IO_SIZE=${OVERHEAD_IO_SIZE:-4096}
QD=${OVERHEAD_QD:-32}
CONNS=${OVERHEAD_CONNS:-2}
NQN=nqn.2026-11.io.lamina:default

for bin in "$LAMINA" "$PERF"; do
    [ -x "$bin" ] || { echo "missing $bin: cargo build --release -p lamina-target -p lamina-integration" >&2; exit 2; }
done
WORK=$(mktemp -d -t lamina-overhead.XXXXXX)
LAMINA_PID=
cleanup() {
    [ -n "$LAMINA_PID" ] && kill "$LAMINA_PID" 2>/dev/null && wait "$LAMINA_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

run_one() { # MODE(on|off) -> prints IOPS
    local port metrics data
    port=$(free_port); metrics=$(free_port); data=$WORK/data-$1
    rm -rf "$data"
    LAMINA_IO_STATS=$1 "$LAMINA" serve --listen "127.0.0.1:$port" --metrics "127.0.0.1:$metrics" \
        --data-dir "$data" --log-level warn >/dev/null 2>"$WORK/lamina-$1.log" &
    LAMINA_PID=$!
    local deadline=$((SECONDS + 60))
    until curl -sf -o /dev/null "http://127.0.0.1:$metrics/readyz"; do
        [ "$SECONDS" -lt "$deadline" ] || { cat "$WORK/lamina-$1.log" >&2; exit 1; }
        sleep 0.2
    done
    # The switch took: lamina_io_stats_enabled says which side this is.
    local enabled
    enabled=$(curl -sf "http://127.0.0.1:$metrics/metrics" | awk '$1 == "lamina_io_stats_enabled" {print $2}')
    [ "$enabled" = "$([ "$1" = on ] && echo 1 || echo 0)" ] || { echo "switch not applied ($1: $enabled)" >&2; exit 1; }
    local cpu0 cpu1
    cpu0=$(cpu_seconds "$metrics")
    "$PERF" -a "127.0.0.1:$port" -n "$NQN" -w "$WORKLOAD" -o "$IO_SIZE" -q "$QD" -c "$CONNS" \
        -t "$SECONDS_PER_RUN" --json >"$WORK/perf.json"
    cpu1=$(cpu_seconds "$metrics")
    kill "$LAMINA_PID"; wait "$LAMINA_PID" 2>/dev/null || true; LAMINA_PID=
    # IOPS, and lamina's CPU time per command in microseconds (less sensitive to a busy machine).
    python3 -c 'import json,sys; t = json.load(open(sys.argv[1]))["total"]["all"]
print(round(t["iops"]), round((float(sys.argv[3]) - float(sys.argv[2])) / t["ios"] * 1e6, 2))' \
        "$WORK/perf.json" "$cpu0" "$cpu1"
}

cpu_seconds() { # METRICS_PORT -> lamina's process_cpu_seconds_total
    curl -sf "http://127.0.0.1:$1/metrics" | awk '$1 == "process_cpu_seconds_total" {print $2}'
}

echo "workload $WORKLOAD, $IO_SIZE B, qd $QD x $CONNS connections, ${SECONDS_PER_RUN} s per run, $ROUNDS rounds"
ON=(); OFF=(); ON_CPU=(); OFF_CPU=()
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="on off"; else order="off on"; fi
    line="round $round:"
    for mode in $order; do
        read -r iops cpu < <(run_one "$mode")
        if [ "$mode" = on ]; then ON+=("$iops"); ON_CPU+=("$cpu"); else OFF+=("$iops"); OFF_CPU+=("$cpu"); fi
        line="$line $mode $iops IOPS ${cpu} us CPU/IO;"
    done
    echo "$line"
done
python3 - "${ON[*]}" "${OFF[*]}" "${ON_CPU[*]}" "${OFF_CPU[*]}" <<'PY'
import statistics, sys
on, off, on_cpu, off_cpu = ([float(x) for x in a.split()] for a in sys.argv[1:5])
m_on, m_off = statistics.median(on), statistics.median(off)
c_on, c_off = statistics.median(on_cpu), statistics.median(off_cpu)
pairs = [(a - b) / b * 100 for a, b in zip(on, off)]
print(f"median IOPS: counting on {m_on:.0f}, off {m_off:.0f}: on is {(m_on - m_off) / m_off * 100:+.2f}% "
      f"(per round: {', '.join(f'{p:+.1f}%' for p in pairs)})")
print(f"median lamina CPU per I/O: on {c_on:.2f} us, off {c_off:.2f} us: "
      f"{(c_on - c_off) / c_off * 100:+.2f}%")
PY
