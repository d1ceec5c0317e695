#!/usr/bin/env bash
# The nightly-style stress of the lvstore and the transport: what `cargo test` runs bounded in
# CI, run long. Every part must pass; figures go to stdout (and $OUT, JSON lines).
#
#   integration/stress/nightly.sh [--quick]
#
# 1. kill -9 loop: LAMINA_CRASH_CYCLES (150) SIGKILLs of the real binary under mixed I/O and
#    RPC churn, every restart loading, checking and verifying (target/tests/crash_loop.rs).
# 2. hang-ups: LAMINA_HANGUP_ROUNDS (20000) connections ended in the middle of allocating
#    writes on the file-backed default (integration/tests/hangup.rs).
# 3. concurrent churn with restarts: PROPTEST_CASES (2000) cases (lvol tests::churn).
# 4. fuzz then restart: FUZZ_ROUNDS (20) rounds of the session fuzzer (FUZZ_SECONDS, 30 each,
#    each with its own seed), each followed by the lvstore check and a restart that must load
#    (integration/tests/session_fuzz.rs).
# 5. the session fuzzer for FUZZ_HOUR_SECONDS (3600) against a release `lamina serve`, its
#    resident memory followed.
# 6. SPDK's nvme_fuzz for NVME_FUZZ_SECONDS (3600) against a release `lamina serve`
#    (integration/stress/nvme_fuzz.sh), when an SPDK build is at SPDK_DIR (default /tmp/spdk);
#    skipped without one (CI has none) or with NVME_FUZZ_SECONDS=0.
# --quick divides everything by about 20 (a smoke run of this script itself).
# Seeds: FUZZ_ROUNDS use 1001.., the hour 42, nvme_fuzz NVME_FUZZ_SEED (or the clock, reported).
set -euo pipefail
cd "$(dirname "$0")/../.."
unset CARGO_TARGET_DIR
OUT=${OUT:-build/stress/nightly.jsonl}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
scale=1
[ "${1:-}" = --quick ] && scale=20
CRASH=$(( ${LAMINA_CRASH_CYCLES:-150} / scale ))
HANGUP=$(( ${LAMINA_HANGUP_ROUNDS:-20000} / scale ))
CASES=$(( ${PROPTEST_CASES:-2000} / scale ))
ROUNDS=$(( ${FUZZ_ROUNDS:-20} / scale )); [ "$ROUNDS" -ge 1 ] || ROUNDS=1
SECONDS_EACH=$(( ${FUZZ_SECONDS:-30} ))
HOUR=$(( ${FUZZ_HOUR_SECONDS:-3600} / scale ))
NVME_FUZZ=$(( ${NVME_FUZZ_SECONDS:-3600} / scale ))
[ "$NVME_FUZZ" -eq 0 ] || [ "$NVME_FUZZ" -ge 10 ] || NVME_FUZZ=10

LOGS=$(dirname "$OUT")
log() { printf '%s\n' "$1" | tee -a "$OUT"; }
# run NAME CMD...: runs CMD with its output in $LOGS/NAME.log (shown on failure); prints seconds.
run() {
    local name=$1 t0; shift
    t0=$(date +%s)
    if ! "$@" > "$LOGS/$name.log" 2>&1; then
        cat "$LOGS/$name.log" >&2
        echo "nightly: $name failed" >&2
        exit 1
    fi
    echo $(( $(date +%s) - t0 ))
}

s=$(LAMINA_CRASH_CYCLES=$CRASH run crash_loop cargo test --release -p lamina-target --test crash_loop -- --nocapture)
log "{\"part\":\"crash_loop\",\"kills\":$CRASH,\"seconds\":$s}"
s=$(LAMINA_HANGUP_ROUNDS=$HANGUP run hangup cargo test --release -p lamina-integration --test hangup -- --nocapture)
log "{\"part\":\"hangup\",\"rounds\":$HANGUP,\"seconds\":$s}"
s=$(PROPTEST_CASES=$CASES run churn cargo test --release -p lamina-lvol --lib churn)
log "{\"part\":\"churn\",\"cases\":$CASES,\"seconds\":$s}"
for r in $(seq 1 "$ROUNDS"); do
    s=$(LAMINA_FUZZ_SECONDS=$SECONDS_EACH LAMINA_FUZZ_SEED=$((1000 + r)) run "fuzz-$r" \
        cargo test --release -p lamina-integration --test session_fuzz -- --nocapture)
    log "{\"part\":\"fuzz_then_restart\",\"round\":$r,\"seed\":$((1000 + r)),\"seconds\":$s}"
done

cargo build -q --release --locked -p lamina-target -p lamina-integration --bins
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
build/release/lamina serve --data-dir "$work/data" --listen 127.0.0.1:4620 --log-level error &
pid=$!
for _ in $(seq 100); do [ -S "$work/data/lamina.sock" ] && break; sleep 0.1; done
report=$(build/release/lamina-session-fuzz --target 127.0.0.1:4620 --seconds "$HOUR" --pid "$pid" --seed 42)
log "{\"part\":\"session_fuzz\",\"seconds\":$HOUR,\"report\":$report}"
check=$(build/release/lamina rpc --socket "$work/data/lamina.sock" bdev_lvol_check_lvstore '{"lvs_name":"lvs0"}')
echo "$check" | grep -q '"consistent": *true' || { echo "lvstore inconsistent after the run: $check"; exit 1; }
kill -TERM "$pid"; wait "$pid"

if [ "$NVME_FUZZ" -eq 0 ]; then
    log '{"part":"nvme_fuzz","skipped":"NVME_FUZZ_SECONDS=0"}'
else
    t0=$(date +%s)
    if ! nf=$(LOG_DIR="$LOGS/nvme_fuzz" integration/stress/nvme_fuzz.sh "$NVME_FUZZ" 2> "$LOGS/nvme_fuzz.log"); then
        cat "$LOGS/nvme_fuzz.log" >&2
        echo "nightly: nvme_fuzz failed" >&2
        exit 1
    fi
    log "{\"part\":\"nvme_fuzz\",\"seconds\":$(( $(date +%s) - t0 )),\"report\":$nf}"
fi
log "{\"part\":\"done\"}"
