#!/usr/bin/env bash
# The scale checks of issue 8 §6 against a freshly started release Lamina:
#   1. 64 connections (I/O queues) x QD128 of 4 KiB random reads and writes (70/30) on a RAM
#      bdev, sustained for --time seconds (default 60), must finish with no error;
#   2. memory per idle connection and per lvol, and 10,000 lvols' listing and load times
#      (the ignored tests in integration/tests/perf_scale.rs, which print their figures).
#
#   integration/bench/scale.sh [--time SECS] [--skip-tests]
#
# Environment: LAMINA_BIN and PERF_BIN as in run.sh; TARGET_CPU (0) and PERF_CPU (1).
# Figures go to stdout; integration/PERFORMANCE.md records them.
set -euo pipefail

cd "$(dirname "$0")/../.."
TIME=60
TESTS=1
while [ $# -gt 0 ]; do
    case "$1" in
        --time) TIME="$2"; shift 2 ;;
        --skip-tests) TESTS=0; shift ;;
        *) sed -n '2,12p' "$0"; exit 2 ;;
    esac
done
# shellcheck source=integration/bench/lib.sh
source integration/bench/lib.sh
WORK="$(mktemp -d "${BENCH_DIR:-/var/tmp}/lamina-scale.XXXXXX")"
PID=""
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=4530
NQN=nqn.2026-11.io.lamina:scale
# QD128 needs queues of 129 entries (one slot of a circular queue stays empty): the
# operator raises max_queue_depth, as with SPDK's nvmf_create_transport -q.
cat > "$WORK/scale.toml" <<TOML
[transport]
max_queue_depth = 256
[[bdev]]
name = "ram0"
type = "malloc"
size = "2G"
block_size = 4096
[[subsystem]]
nqn = "$NQN"
allow_any_host = true
listeners = ["127.0.0.1:$PORT"]
[[subsystem.namespace]]
bdev = "ram0"
TOML
taskset -c "$TARGET_CPU" "$LAMINA_BIN" serve --data-dir "$WORK/data" --config "$WORK/scale.toml" \
    --listen "127.0.0.1:$((PORT + 1))" --log-level warn > "$WORK/lamina.log" 2>&1 &
PID=$!
# Up to 3 minutes: the 2 GiB malloc bdev is faulted in before the listener exists (see run.sh).
wait_port "$PORT" 1800 || { echo "lamina did not start:" >&2; cat "$WORK/lamina.log" >&2; exit 1; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }
echo "== 64 connections x QD128, 4 KiB randrw 70/30, ${TIME} s (RSS before: $(rss) KiB)"
taskset -c "$PERF_CPU" "$PERF_BIN" -a "127.0.0.1:$PORT" -n "$NQN" -c 64 -q 128 -o 4k \
    -w randrw -M 70 -t "$TIME" --warmup 2 --json > "$WORK/scale.json" &
PERF=$!
sleep $((TIME / 2))
echo "RSS under load: $(rss) KiB"
wait "$PERF"
python3 - "$WORK/scale.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t, errors = r["total"]["all"], r["total"]["errors"]
print(f"{t['iops']:,.0f} IOPS, {t['mib_s']:.1f} MiB/s, avg {t['avg_us']:.0f} us, "
      f"p99 {t['p99_us']:.0f} us, p99.99 {t['p99_99_us']:.0f} us, errors {errors}")
sys.exit(1 if errors else 0)
PY
if ! kill -0 "$PID" 2>/dev/null; then echo "lamina died:" >&2; cat "$WORK/lamina.log" >&2; exit 1; fi
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""

if [ "$TESTS" = 1 ]; then
    echo "== memory per idle connection, 10,000 lvols"
    LAMINA_BIN="$(realpath "$LAMINA_BIN")" cargo test --release --locked -p lamina-integration \
        --test perf_scale -- --ignored --nocapture --test-threads 1 2>&1 \
        | grep -oE '(idle connections|[0-9]+ thin lvols|restart):.*|test result.*|panicked.*'
fi
