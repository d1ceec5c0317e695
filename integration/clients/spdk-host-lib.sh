# shellcheck shell=bash
# Shared by the scripts that run SPDK's NVMe host (spdk_nvme_perf) against a release build of
# lamina: spdk-host-auth.sh, spdk-host-tls.sh and integration/bench/tls-cost.sh. Sourced from
# the repository root with SPDK_DIR set (PERF_OPTIONAL=1: spdk_nvme_perf may be missing);
# defines PERF, LAMINA, and:
#   start_lamina [serve options...]  starts lamina (under $LAMINA_PREFIX, if set) on a fresh
#                                    data dir in $work, listening on 127.0.0.1:$port; kills it
#                                    and removes $work on exit
#   rpc METHOD [JSON]                one RPC, output dropped
#   interchange_key PREFIX HASH LEN  a random key in the NVMe interchange format (PREFIX
#                                    NVMeTLSkey-1 or DHHC-1), without a newline
PERF=$SPDK_DIR/build/bin/spdk_nvme_perf
LAMINA=${LAMINA_BIN:-build/release/lamina}
[ -x "$PERF" ] || [ -n "${PERF_OPTIONAL:-}" ] ||
    { echo "no $PERF: build SPDK first (../shared/spdk/README.md)"; exit 2; }
[ -x "$LAMINA" ] || cargo build --release --locked -p lamina-target --bins
export LD_LIBRARY_PATH=$SPDK_DIR/build/lib

work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))

start_lamina() {
    # shellcheck disable=SC2086 # LAMINA_PREFIX is words, e.g. "taskset -c 0".
    ${LAMINA_PREFIX:-} "$LAMINA" serve --data-dir "$work/data" --listen "127.0.0.1:$port" "$@" \
        >"$work/lamina.log" 2>&1 &
    pid=$!
    trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
    for _ in $(seq 100); do
        [ -S "$work/data/lamina.sock" ] && grep -q "listener up" "$work/lamina.log" && return 0
        sleep 0.2
    done
    cat "$work/lamina.log"
    echo "lamina did not start" >&2
    exit 1
}

rpc() { "$LAMINA" rpc --socket "$work/data/lamina.sock" "$@" >/dev/null; }

# The key bytes, their CRC-32 (little-endian), base64; no newline after the final colon (SPDK's
# PSK parser wants the colon last).
interchange_key() {
    python3 -c 'import base64, os, sys, zlib
k = os.urandom(int(sys.argv[3]))
sys.stdout.write("%s:%s:%s:" % (sys.argv[1], sys.argv[2], base64.b64encode(k + zlib.crc32(k).to_bytes(4, "little")).decode()))' "$1" "$2" "$3"
}
