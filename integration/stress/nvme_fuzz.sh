#!/usr/bin/env bash
# SPDK's nvme_fuzz (test/app/fuzz/nvme_fuzz) against a live release `lamina serve`: an outside
# fuzzer of admin and I/O commands, written against SPDK's initiator rather than ours (issue 12).
# Every command it sends is a well-formed capsule from a well-behaved NVMe/TCP host with random
# contents, so the target must answer each with a status: a crash, a hang (nvme_fuzz gives a queue
# 5 s per completion), a C2HTermReq, a panic or an error in the target's log fails the run, as do
# memory that keeps growing, an lvstore that does not check consistent, a SIGTERM that does not
# exit 0, and a restart on the same data directory that does not load the same lvstore.
#
#   SPDK_DIR=/tmp/spdk integration/stress/nvme_fuzz.sh [SECONDS]    (or NVME_FUZZ_SECONDS)
#
# SPDK_DIR (default /tmp/spdk) is a built SPDK tree (v24.01 is what this was written against):
# its test/app/fuzz/nvme_fuzz/nvme_fuzz and build/lib. Without one the script prints
# "skipped: no SPDK build" and exits 0. CI cannot build SPDK (no SPDK source there), so the
# bounded fuzzing in CI is our own session fuzzer (integration/tests/session_fuzz.rs); this
# script runs from integration/stress/nightly.sh when an SPDK build is present.
#
# The run, on a fresh data directory (the embedded default: a 1 GiB thin lvol on a file-backed
# lvstore) and a port of its own:
#   1. random commands on the admin and the I/O queue with the valid NSID (-a -N), 90% of SECONDS;
#   2. the same with random NSIDs (invalid, 0, broadcast), the other 10%;
#   3. the command list of NVME_FUZZ_JSON (default SPDK's example.json; -a -j).
# then lamina-probe and a verified lamina-perf run, the lvstore check, SIGTERM (exit 0), a
# restart on the same data directory, the check (same lvstore UUID) and the probe again.
#
# Environment: NVME_FUZZ_SECONDS or $1 (default 60), NVME_FUZZ_SEED (default from the clock; each
# pass uses SEED+pass-1), NVME_FUZZ_CORE_MASK (default 0x2: nvme_fuzz busy-polls that core),
# NVME_FUZZ_MEM_MB (default 512: DPDK memory without hugepages, --no-huge), NVME_FUZZ_PORT
# (default: the first free port from 4730), RSS_GROWTH_MAX_MB (default 64: the most the target's
# RSS may grow between the end of the first tenth of the fuzzing and its end), LOG_DIR (default
# build/stress/nvme_fuzz; the target's and nvme_fuzz's logs). nvme_fuzz's stderr carries a JSON
# dump of every command that succeeded: those are counted and dropped, everything else is kept.
#
# Output: one JSON line of figures on stdout; progress and diagnostics on stderr. Exit 0 when
# everything held (or skipped), 1 otherwise (the data directory is then kept for inspection).
set -euo pipefail
cd "$(dirname "$0")/../.."
unset CARGO_TARGET_DIR

SPDK_DIR=${SPDK_DIR:-/tmp/spdk}
FUZZ=$SPDK_DIR/test/app/fuzz/nvme_fuzz/nvme_fuzz
TOTAL=${1:-${NVME_FUZZ_SECONDS:-60}}
say() { printf 'nvme_fuzz.sh: %s\n' "$*" >&2; }

if [ ! -x "$FUZZ" ]; then
    say "skipped: no SPDK build (no $FUZZ; build SPDK with its test/app/fuzz/nvme_fuzz and set SPDK_DIR)"
    printf '{"skipped":"no SPDK build at %s"}\n' "$SPDK_DIR"
    exit 0
fi
case $TOTAL in '' | *[!0-9]*) say "SECONDS must be a whole number, not '$TOTAL'"; exit 2 ;; esac
[ "$TOTAL" -ge 10 ] || { say "SECONDS must be at least 10"; exit 2; }

SEED=${NVME_FUZZ_SEED:-$(( $(date +%s) % 1000000 + 1 ))}
MASK=${NVME_FUZZ_CORE_MASK:-0x2}
MEM=${NVME_FUZZ_MEM_MB:-512}
GROWTH_MAX=$(( ${RSS_GROWTH_MAX_MB:-64} * 1024 ))
JSON_CMDS=${NVME_FUZZ_JSON:-$SPDK_DIR/test/app/fuzz/nvme_fuzz/example.json}
LOG_DIR=${LOG_DIR:-build/stress/nvme_fuzz}
NQN=nqn.2026-11.io.lamina:default
mkdir -p "$LOG_DIR"
LOG_DIR=$(cd "$LOG_DIR" && pwd)

cargo build -q --release --locked -p lamina-target -p lamina-integration --bins
LAMINA=$PWD/build/release/lamina

port=${NVME_FUZZ_PORT:-}
if [ -z "$port" ]; then
    for p in $(seq 4730 4799); do
        if [ -z "$(ss -Htln "sport = :$p")" ]; then port=$p; break; fi
    done
    [ -n "$port" ] || { say "no free port in 4730-4799"; exit 1; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/lamina-nvme-fuzz.XXXXXX")
data=$work/data
sock=$data/lamina.sock
pid='' sampler='' failed=1
cleanup() {
    [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    if [ "$failed" = 0 ]; then rm -rf "$work"; else say "data directory kept: $data"; fi
}
trap cleanup EXIT
fail() { say "FAILED: $*"; say "logs: $LOG_DIR"; exit 1; }

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# start LOGNAME: a target on $data, logging to $LOG_DIR/LOGNAME; sets $pid once it serves RPC.
start() {
    "$LAMINA" serve --data-dir "$data" --listen "127.0.0.1:$port" --log-level info \
        > "$LOG_DIR/$1" 2>&1 &
    pid=$!
    for _ in $(seq 600); do
        kill -0 "$pid" 2>/dev/null || fail "the target exited at start-up (see $LOG_DIR/$1)"
        if [ -S "$sock" ] && "$LAMINA" rpc --socket "$sock" bdev_lvol_get_lvstores >/dev/null 2>&1; then
            return
        fi
        sleep 0.1
    done
    fail "the target did not serve RPC within 60 s"
}

# check: the lvstore check, once in-flight work settled (nothing reserved); prints its UUID.
check() {
    local out
    for _ in $(seq 600); do
        out=$("$LAMINA" rpc --socket "$sock" bdev_lvol_check_lvstore '{"lvs_name":"lvs0"}') ||
            fail "bdev_lvol_check_lvstore failed: $out"
        [ "$(jq '.[0].reserved_clusters' <<< "$out")" = 0 ] && break
        sleep 0.1
    done
    echo "$out" > "$LOG_DIR/check-$1.json"
    [ "$(jq '.[0].consistent' <<< "$out")" = true ] || fail "lvstore inconsistent ($1): $out"
    [ "$(jq '.[0].reserved_clusters' <<< "$out")" = 0 ] || fail "clusters still reserved ($1): $out"
    jq -r '.[0].uuid' <<< "$out"
}

# serves LABEL: a well-behaved host still gets everything right.
serves() {
    timeout 120 build/release/lamina-probe -a "127.0.0.1:$port" -n "$NQN" \
        > "$LOG_DIR/probe-$1.log" 2>&1 || fail "lamina-probe ($1): $(tail -1 "$LOG_DIR/probe-$1.log")"
    timeout 120 build/release/lamina-perf -a "127.0.0.1:$port" -n "$NQN" -w randrw -q 16 -t 5 \
        -c 2 --verify --json > "$LOG_DIR/perf-$1.json" 2>&1 ||
        fail "lamina-perf --verify ($1): see $LOG_DIR/perf-$1.json"
    [ "$(jq '.verify.mismatches' "$LOG_DIR/perf-$1.json")" = 0 ] || fail "lamina-perf ($1): mismatches"
}

# stop: SIGTERM, which must drain, flush and exit 0.
stop() {
    kill -TERM "$pid"
    local rc=0
    wait "$pid" || rc=$?
    pid=''
    [ "$rc" = 0 ] || fail "the target exited $rc on SIGTERM"
}

# fuzz PASS SEED ARGS...: one nvme_fuzz run; prints its figures as a JSON object.
fuzz() {
    local pass=$1 seed=$2 rc=0; shift 2
    local out=$LOG_DIR/nvme_fuzz-$pass.out err=$LOG_DIR/nvme_fuzz-$pass.err
    local trid="trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$port subnqn:$NQN"
    # nvme_fuzz runs its own deadline; the timeout only catches one that never returns.
    timeout --kill-after=10 "$(( ${FUZZ_TIME:-0} + 180 ))" \
        env LD_LIBRARY_PATH="$SPDK_DIR/build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        "$FUZZ" -m "$MASK" --no-huge -s "$MEM" --no-pci --silence-noticelog \
        -r "$work/nvme_fuzz.sock" -U -S "$seed" -F "$trid" "$@" \
        > "$out" 2> >(awk '
            /completed successfully$/ { ok++; skip = 1; next }
            skip && /^}/ { skip = 0; next }
            skip { next }
            { print }
            END { printf "nvme_fuzz.sh: %d dumps of successful commands dropped\n", ok }' > "$err") ||
        rc=$?
    wait $! 2>/dev/null || true # the filter
    [ "$rc" = 0 ] || fail "nvme_fuzz ($pass) exited $rc: $(tail -3 "$err")"
    grep -q 'has timed out' "$err" && fail "nvme_fuzz ($pass): a queue timed out (a hang): see $err"
    grep -q 'Unable to submit' "$err" && fail "nvme_fuzz ($pass): a queue broke: see $err"
    grep -q '\*ERROR\*' "$err" && fail "nvme_fuzz ($pass): errors from SPDK's initiator: $(grep -m3 '\*ERROR\*' "$err")"
    grep -q '^Fuzzing completed' "$out" || fail "nvme_fuzz ($pass) did not complete: see $out"
    awk -v pass="$pass" -v seed="$seed" '
        function num(s) { gsub(/[^0-9]/, "", s); return s + 0 }
        /^Dumping successful admin opcodes/ { getline; admin_ok = $0 }
        /^Dumping successful io opcodes/ { getline; io_ok = $0 }
        /I\/O qp, Total commands completed/ {
            split($0, f, ","); io = num(f[2]); io_s = num(f[3]); io_seed = num(f[4]) }
        /admin qp, Total commands completed/ {
            split($0, f, ","); ad = num(f[2]); ad_s = num(f[3]); ad_seed = num(f[4]) }
        function list(s) { gsub(/[ ,]+$/, "", s); gsub(/ /, "", s); return "[" s "]" }
        END {
            # %.0f: counts and seeds pass 2^31, where some awks clamp %d.
            printf "{\"pass\":\"%s\",\"seed\":%.0f,\"io_completed\":%.0f,", pass, seed, io
            printf "\"io_successful\":%.0f,\"admin_completed\":%.0f,", io_s, ad
            printf "\"admin_successful\":%.0f,\"final_seeds\":{\"io\":%.0f,\"admin\":%.0f},", ad_s, io_seed, ad_seed
            printf "\"successful_opcodes\":{\"admin\":%s,\"io\":%s}}", list(admin_ok), list(io_ok)
        }' "$out"
}

# log_figures LOG: no panic, no C2HTermReq (SPDK's host sends only well-formed PDUs) and
# nothing at error level in LOG; prints its counts as a JSON object.
log_figures() {
    local panics term_reqs errors warnings
    panics=$(grep -c 'panicked' "$1" || true)
    term_reqs=$(grep -c 'sent C2HTermReq' "$1" || true)
    errors=$(grep -cE '^[^ ]+ +ERROR ' "$1" || true)
    warnings=$(grep -cE '^[^ ]+ +WARN ' "$1" || true)
    [ "$panics" = 0 ] || fail "$panics panics in $1"
    [ "$term_reqs" = 0 ] || fail "the target sent $term_reqs C2HTermReqs to SPDK's host: see $1"
    [ "$errors" = 0 ] || fail "$errors lines at error level in $1: $(grep -m3 -E '^[^ ]+ +ERROR ' "$1")"
    printf '{"panics":%d,"c2h_term_reqs":%d,"errors":%d,"warnings":%d}' \
        "$panics" "$term_reqs" "$errors" "$warnings"
}
say "SPDK $SPDK_DIR, port $port, $TOTAL s, seed $SEED, logs $LOG_DIR"
start target.log
uuid=$(check before) || exit 1
rss_start=$(rss_kb "$pid")
t0=$(date +%s)
# Resident memory every 2 s while the fuzzing runs.
( while kill -0 "$pid" 2>/dev/null; do echo "$(( $(date +%s) - t0 )) $(rss_kb "$pid")"; sleep 2; done ) \
    > "$LOG_DIR/rss.txt" &
sampler=$!

first=$(( TOTAL - TOTAL / 10 ))
FUZZ_TIME=$first
p1=$(fuzz valid-ns "$SEED" -t "$first" -a -N) || exit 1
kill -0 "$pid" 2>/dev/null || fail "the target died during pass 1"
FUZZ_TIME=$(( TOTAL - first ))
p2=$(fuzz any-ns "$(( SEED + 1 ))" -t "$FUZZ_TIME" -a) || exit 1
kill -0 "$pid" 2>/dev/null || fail "the target died during pass 2"
p3='null'
if [ -f "$JSON_CMDS" ]; then
    FUZZ_TIME=0
    p3=$(fuzz json "$(( SEED + 2 ))" -a -j "$JSON_CMDS") || exit 1
    kill -0 "$pid" 2>/dev/null || fail "the target died during the JSON pass"
fi
seconds=$(( $(date +%s) - t0 ))
rss_end=$(rss_kb "$pid")
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true; sampler=''
rss_max=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$LOG_DIR/rss.txt")
[ "$rss_end" -gt "$rss_max" ] && rss_max=$rss_end
rss_warm=$(awk -v t="$(( TOTAL / 10 ))" '$1 >= t { print $2; exit }' "$LOG_DIR/rss.txt")
rss_warm=${rss_warm:-$rss_start}
[ $(( rss_end - rss_warm )) -le "$GROWTH_MAX" ] ||
    fail "the target's RSS grew from $rss_warm kB (after the first tenth) to $rss_end kB"

serves after-fuzz
check after-fuzz > /dev/null || exit 1
stop

fuzzed_log=$(log_figures "$LOG_DIR/target.log") || exit 1

start target-restart.log
uuid2=$(check after-restart) || exit 1
[ "$uuid2" = "$uuid" ] || fail "the restart has lvstore $uuid2, not $uuid"
serves after-restart
check after-restart-probe > /dev/null || exit 1
stop
restart_log=$(log_figures "$LOG_DIR/target-restart.log") || exit 1

failed=0
printf '{"seconds":%d,"port":%d,"seed":%d,"passes":[%s,%s,%s],' "$seconds" "$port" "$SEED" "$p1" "$p2" "$p3"
printf '"rss_kb":{"start":%d,"after_first_tenth":%d,"end":%d,"max":%d},' \
    "$rss_start" "$rss_warm" "$rss_end" "$rss_max"
printf '"target_log":%s,"restart_log":%s,' "$fuzzed_log" "$restart_log"
printf '"lvstore":"%s","sigterm_exit":0,"restart_ok":true}\n' "$uuid"
