#!/usr/bin/env bash
# The benchmark matrix of issue 8 §5: a freshly started release Lamina per backend (null bdev,
# RAM bdev, file through io_uring, file through the blocking thread pool, thin lvols), target
# pinned to one core and lamina-perf to another, one table on stdout and JSON in a file.
#
#   integration/bench/run.sh [--time SECS] [--warmup SECS] [--backends LIST] [--out FILE]
#
#   --time      measured seconds per run (default 10, as in the issue's SPDK runs)
#   --warmup    warm-up seconds per run, not measured (default 1)
#   --backends  comma-separated subset of: null,ram,file,file-pool,lvol (default: all)
#   --out       JSON results (default build/bench/results.json)
#
# Environment: LAMINA_BIN and PERF_BIN (default: CARGO_TARGET_DIR or build/, release
# profile, built if missing), TARGET_CPU (0) and PERF_CPU (1), BENCH_DIR for the file
# backend's image (default: a temporary directory under /var/tmp, a real filesystem).
# When an SPDK build is present (SPDK_DIR, default /tmp/spdk, has build/bin/spdk_nvme_perf)
# and this runs as root, the matrix is followed by spdk-compare.sh (Lamina and SPDK's
# nvmf_tgt measured with spdk_nvme_perf, same --time and --warmup, which must then be whole
# seconds); SPDK_COMPARE=0 skips it, and so does CI=true (CI's smoke run).
# Then idle_cpu.py measures what 8 connected hosts cost idle and sparse (the target's CPU).
# Needs: taskset, python3. Results on a busy machine are meaningless: check `uptime` first.
set -euo pipefail

cd "$(dirname "$0")/../.."
TIME=10
WARMUP=1
BACKENDS="null,ram,file,file-pool,lvol"
OUT=build/bench/results.json
while [ $# -gt 0 ]; do
    case "$1" in
        --time) TIME="$2"; shift 2 ;;
        --warmup) WARMUP="$2"; shift 2 ;;
        --backends) BACKENDS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        *) sed -n '2,25p' "$0"; exit 2 ;;
    esac
done
# shellcheck source=integration/bench/lib.sh
source integration/bench/lib.sh
mkdir -p "$(dirname "$OUT")"
WORK="$(mktemp -d "${BENCH_DIR:-/var/tmp}/lamina-bench.XXXXXX")"
RAW="$WORK/raw.jsonl"
: > "$RAW"
PID=""
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=4520
NQN=nqn.2026-11.io.lamina:bench

# start NAME ENV... : writes $WORK/NAME.toml's target up on $PORT, waits for it.
start() {
    local name="$1"; shift
    rm -rf "$WORK/data-$name"
    env "$@" taskset -c "$TARGET_CPU" "$LAMINA_BIN" serve --data-dir "$WORK/data-$name" --allow-path "$WORK" \
        --config "$WORK/$name.toml" --listen "127.0.0.1:$((PORT + 1))" \
        --log-level warn > "$WORK/$name.log" 2>&1 &
    PID=$!
    # Up to 3 minutes: a malloc bdev faults all its memory in before the listener exists, and
    # memory a fresh VM never touched can take seconds per GiB the first time.
    if wait_port "$PORT" 1800; then return 0; fi
    echo "lamina did not start; its log:" >&2
    cat "$WORK/$name.log" >&2
    exit 1
}

stop() {
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
}

# run BACKEND LABEL NSID PERF-ARGS... : one lamina-perf run, appended to $RAW.
run() {
    local backend="$1" label="$2" nsid="$3"; shift 3
    local out="$WORK/run.json"
    if ! taskset -c "$PERF_CPU" "$PERF_BIN" -a "127.0.0.1:$PORT" -n "$NQN" --nsid "$nsid" \
        -t "$TIME" --warmup "$WARMUP" --json "$@" > "$out" 2> "$WORK/perf.err"; then
        echo "lamina-perf failed ($backend $label):" >&2
        cat "$WORK/perf.err" >&2
    fi
    python3 - "$backend" "$label" "$out" >> "$RAW" <<'PY'
import json, sys
backend, label, path = sys.argv[1:4]
try:
    r = json.load(open(path))
    t = r["total"]["all"]
    row = {"backend": backend, "workload": label, "iops": t["iops"], "mib_s": t["mib_s"],
           "avg_us": t["avg_us"], "p50_us": t["p50_us"], "p99_us": t["p99_us"],
           "p99_9_us": t["p99_9_us"], "errors": r["total"]["errors"], "config": r["config"]}
except Exception as e:  # a failed run still gets its row
    row = {"backend": backend, "workload": label, "error": str(e)}
print(json.dumps(row))
PY
    tail -n 1 "$RAW" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print("  %-10s %-34s %12s IOPS" % (r["backend"], r["workload"], format(int(r.get("iops", 0)), ",")), file=sys.stderr)'
}

# prefill NSID: writes the whole namespace once (sequential 128 KiB writes for a few seconds),
# so reads touch real memory as SPDK's malloc bdev does, not never-written (zero) pages.
prefill() {
    taskset -c "$PERF_CPU" "$PERF_BIN" -a "127.0.0.1:$PORT" -n "$NQN" --nsid "$1" -w write \
        -o 128k -q 8 -t 4 --warmup 0 > /dev/null
}

# The device matrix on namespace 1.
matrix() {
    local b="$1"
    run "$b" "4k randread QD1" 1 -w randread -o 4k -q 1
    run "$b" "4k randread QD32" 1 -w randread -o 4k -q 32
    run "$b" "4k randwrite QD1" 1 -w randwrite -o 4k -q 1
    run "$b" "4k randwrite QD32" 1 -w randwrite -o 4k -q 32
    run "$b" "128k read QD8" 1 -w read -o 128k -q 8
    run "$b" "128k write QD8" 1 -w write -o 128k -q 8
    run "$b" "4k randrw 70/30 QD32" 1 -w randrw -M 70 -o 4k -q 32
    run "$b" "4k randread 4 conn x QD32" 1 -w randread -o 4k -q 32 -c 4
    run "$b" "4k randread QD32 hdr+data digest" 1 -w randread -o 4k -q 32 --digest hdr,data
    run "$b" "4k randwrite QD32 hdr+data digest" 1 -w randwrite -o 4k -q 32 --digest hdr,data
}

subsystem() {
    cat <<TOML
[[subsystem]]
nqn = "$NQN"
allow_any_host = true
listeners = ["127.0.0.1:$PORT"]
TOML
    for ns in "$@"; do
        printf '[[subsystem.namespace]]\nbdev = "%s"\n' "$ns"
    done
}

for b in ${BACKENDS//,/ }; do
    echo "== $b" >&2
    case "$b" in
        null)
            { printf '[[bdev]]\nname = "null0"\ntype = "null"\nsize = "64G"\nblock_size = 4096\n'
              subsystem null0; } > "$WORK/null.toml"
            start null; matrix null; stop ;;
        ram)
            { printf '[[bdev]]\nname = "ram0"\ntype = "malloc"\nsize = "2G"\nblock_size = 4096\n'
              subsystem ram0; } > "$WORK/ram.toml"
            start ram; prefill 1; matrix ram; stop ;;
        file|file-pool)
            # A written (not sparse) image, so reads reach the device.
            img="$WORK/file.img"
            [ -f "$img" ] || dd if=/dev/zero of="$img" bs=1M count=2048 oflag=direct status=none
            { printf '[[bdev]]\nname = "file0"\ntype = "aio"\nfilename = "%s"\nblock_size = 4096\n' "$img"
              subsystem file0; } > "$WORK/$b.toml"
            if [ "$b" = file ]; then start "$b"; else start "$b" LAMINA_IO_URING=off; fi
            matrix "$b"; stop ;;
        lvol)
            # Thin lvols: nsid 1 on a RAM lvstore, fully allocated by its first pass; nsid 2 on a
            # null lvstore large enough that nearly every 4 KiB write allocates a cluster.
            { printf '[[bdev]]\nname = "ram1"\ntype = "malloc"\nsize = "2G"\nblock_size = 4096\n'
              printf '[[bdev]]\nname = "null1"\ntype = "null"\nsize = "4T"\nblock_size = 4096\n'
              printf '[[lvstore]]\nname = "lvsr"\nbdev = "ram1"\ncluster_size = "1M"\n'
              printf '[[lvstore]]\nname = "lvsn"\nbdev = "null1"\ncluster_size = "1M"\n'
              printf '[[lvol]]\nname = "thin"\nlvstore = "lvsr"\nsize = "1G"\nthin = true\n'
              printf '[[lvol]]\nname = "huge"\nlvstore = "lvsn"\nsize = "3T"\nthin = true\n'
              subsystem lvsr/thin lvsn/huge; } > "$WORK/lvol.toml"
            start lvol
            run lvol "thin 4k randwrite QD32 first writes" 2 -w randwrite -o 4k -q 32
            # Allocate every cluster of nsid 1, then measure allocated writes and reads.
            run lvol "thin 128k write QD8 (allocating)" 1 -w write -o 128k -q 8
            run lvol "thin 4k randwrite QD32 allocated" 1 -w randwrite -o 4k -q 32
            run lvol "thin 4k randread QD32 allocated" 1 -w randread -o 4k -q 32
            stop ;;
        *) echo "unknown backend $b" >&2; exit 2 ;;
    esac
done

# What connected, idle and sparse hosts cost: 8 controllers on a null bdev, a QD1 burst each
# (busy polling armed), then the target's CPU over --time seconds idle and sparse.
echo "== idle CPU (8 hosts)" >&2
{ printf '[[bdev]]\nname = "null0"\ntype = "null"\nsize = "64G"\nblock_size = 4096\n'
  subsystem null0; } > "$WORK/idle.toml"
start idle
IDLE_SECS="$(python3 -c "print(max(1.0, float('$TIME')))")"
python3 integration/bench/idle_cpu.py --pid "$PID" --addr "127.0.0.1:$PORT" --nqn "$NQN" \
    --hosts 8 --secs "$IDLE_SECS" > "$WORK/idle.json"
stop
IDLE_JSON="$WORK/idle.json"

python3 - "$RAW" "$OUT" "$IDLE_JSON" <<'PY'
import json, os, platform, sys, time
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
idle = json.load(open(sys.argv[3]))
meta = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "kernel": platform.release(),
        "cpus": os.cpu_count(), "loadavg": os.getloadavg()}
json.dump({"machine": meta, "results": rows, "idle_cpu": idle}, open(sys.argv[2], "w"), indent=2)
print(f"{'backend':<10} {'workload':<36} {'IOPS':>10} {'MiB/s':>9} {'avg us':>8} {'p50 us':>8} {'p99 us':>8} {'err':>4}")
for r in rows:
    if "error" in r:
        print(f"{r['backend']:<10} {r['workload']:<36} failed: {r['error']}")
        continue
    print(f"{r['backend']:<10} {r['workload']:<36} {r['iops']:>10,.0f} {r['mib_s']:>9.1f} "
          f"{r['avg_us']:>8.1f} {r['p50_us']:>8.1f} {r['p99_us']:>8.1f} {r['errors']:>4}")
print(f"\nidle CPU, {idle['hosts']} hosts connected: {idle['idle']['cpu_pct']}% idle, "
      + ", ".join(f"{v['cpu_pct']}% {k.replace('_', ' ')}" for k, v in idle.items()
                  if k.startswith("sparse")))
print(f"\nJSON: {sys.argv[2]}  (load average at the end: {meta['loadavg']})")
failed = [r for r in rows if "error" in r or r["errors"]]
if failed:
    print(f"{len(failed)} run(s) failed or saw I/O errors", file=sys.stderr)
    sys.exit(1)
PY

# The same-run comparison with SPDK's nvmf_tgt (issue 16), when an SPDK build is present.
SPDK_DIR="${SPDK_DIR:-/tmp/spdk}"
if [ "${SPDK_COMPARE:-1}" != 0 ] && [ "${CI:-}" != true ] && [ -x "$SPDK_DIR/build/bin/spdk_nvme_perf" ]; then
    if ! [[ "$TIME$WARMUP" =~ ^[0-9]+$ ]]; then
        echo "(SPDK build found at $SPDK_DIR; spdk-compare.sh needs whole seconds: skipped)" >&2
    elif [ "$(id -u)" = 0 ]; then
        echo "== SPDK comparison (spdk_nvme_perf from $SPDK_DIR)" >&2
        SPDK_DIR="$SPDK_DIR" LAMINA_BIN="$LAMINA_BIN" integration/bench/spdk-compare.sh \
            --time "$TIME" --warmup "$WARMUP" --cores "$(printf '0x%x' $((1 << TARGET_CPU)))" \
            --perf-cores "$(printf '0x%x' $((1 << PERF_CPU)))"
    else
        echo "(SPDK build found at $SPDK_DIR, but spdk-compare.sh needs root: skipped)" >&2
    fi
fi
