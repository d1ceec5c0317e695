#!/usr/bin/env bash
# Instructions per I/O on the target, counted by valgrind's callgrind (instruction counts are
# repeatable on a noisy machine, where timings are not; this VM exposes no hardware counters
# to `perf`). Starts Lamina under callgrind on a null bdev, warms up with lamina-perf, zeroes
# the counters, runs a fixed workload, dumps, and prints instructions per I/O and the top
# functions (self cost).
#
#   integration/bench/profile.sh [-- LAMINA-PERF-ARGS...]   (default: -w randread -o 4k -q 32)
#
# Environment: LAMINA_BIN and PERF_BIN as in run.sh; PROFILE_SECS (default 5); OUT_DIR
# (default build/bench/profile) keeps callgrind.out for callgrind_annotate.
set -euo pipefail

cd "$(dirname "$0")/../.."
ARGS=(-w randread -o 4k -q 32)
if [ "${1:-}" = "--" ]; then shift; ARGS=("$@"); fi
# shellcheck source=integration/bench/lib.sh
source integration/bench/lib.sh
SECS="${PROFILE_SECS:-5}"
OUT_DIR="${OUT_DIR:-build/bench/profile}"
command -v valgrind > /dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 2; }
mkdir -p "$OUT_DIR"
WORK="$(mktemp -d)"
PID=""
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
PORT=4540
NQN=nqn.2026-11.io.lamina:profile
# PROFILE_BACKEND: null (default), ram (a RAM bdev) or lvol (a thick lvol on a RAM lvstore:
# the same I/O path as a thin lvol whose clusters are all allocated).
BACKEND="${PROFILE_BACKEND:-null}"
case "$BACKEND" in
    null) printf '[[bdev]]\nname = "b0"\ntype = "null"\nsize = "64G"\nblock_size = 4096\n' ;;
    ram) printf '[[bdev]]\nname = "b0"\ntype = "malloc"\nsize = "1G"\nblock_size = 4096\n' ;;
    lvol) printf '[[bdev]]\nname = "ram0"\ntype = "malloc"\nsize = "1G"\nblock_size = 4096\n'
          printf '[[lvstore]]\nname = "lvs"\nbdev = "ram0"\ncluster_size = "1M"\n'
          printf '[[lvol]]\nname = "b0"\nlvstore = "lvs"\nsize = "256M"\nthin = false\n' ;;
    *) echo "PROFILE_BACKEND: null, ram or lvol" >&2; exit 2 ;;
esac > "$WORK/p.toml"
NS=b0
[ "$BACKEND" = lvol ] && NS=lvs/b0
cat >> "$WORK/p.toml" <<TOML
[[subsystem]]
nqn = "$NQN"
allow_any_host = true
listeners = ["127.0.0.1:$PORT"]
[[subsystem.namespace]]
bdev = "$NS"
TOML
OUT="$OUT_DIR/callgrind.out"
rm -f "$OUT"*
valgrind --tool=callgrind --compress-strings=no --compress-pos=no --callgrind-out-file="$OUT" "$LAMINA_BIN" serve \
    --data-dir "$WORK/data" --config "$WORK/p.toml" --listen "127.0.0.1:$((PORT + 1))" \
    --log-level warn --metrics 127.0.0.1:0 > "$WORK/lamina.log" 2>&1 &
PID=$!
wait_port "$PORT" 600 || { echo "lamina did not start:" >&2; cat "$WORK/lamina.log" >&2; exit 1; }
"$PERF_BIN" -a "127.0.0.1:$PORT" -n "$NQN" -t 2 --warmup 0 "${ARGS[@]}" > /dev/null
callgrind_control -z "$PID" > /dev/null 2>&1
"$PERF_BIN" -a "127.0.0.1:$PORT" -n "$NQN" -t "$SECS" --warmup 0 --json "${ARGS[@]}" \
    > "$WORK/run.json"
callgrind_control -d "$PID" > /dev/null 2>&1
sleep 1
DUMP="$OUT.1"  # the first (and only) dump callgrind_control -d asked for
IOS="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"]["all"]["ios"])' "$WORK/run.json")"
IR="$(callgrind_annotate "$DUMP" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')"
echo "lamina-perf ${ARGS[*]}: $IOS I/Os under callgrind; $IR target instructions;" \
    "$((IR / IOS)) instructions per I/O"
# Self cost per function, per I/O (callgrind_annotate attributes a dump taken with
# callgrind_control to the thread entry point only, so the dump is summed here).
python3 - "$DUMP" "$IOS" <<'PY'
import collections, re, sys
cost, fn, skip = collections.Counter(), None, False
for line in open(sys.argv[1]):
    if line.startswith("fn="):
        fn = line[3:].strip()
    elif line.startswith("calls="):
        skip = True  # the next cost line is the call's inclusive cost
    elif (m := re.match(r"^(?:\d+|[+-]\d+|\*)\s+(\d+)$", line.strip())) and fn:
        if skip:
            skip = False
        else:
            cost[fn] += int(m.group(1))
total, ios = sum(cost.values()), int(sys.argv[2])
for f, c in cost.most_common(20):
    print(f"{c / ios:>9,.0f} per I/O {100 * c / total:5.1f}%  {f[:110]}")
PY
echo "(full dump: $DUMP; callgrind_annotate --inclusive=yes $DUMP)"
