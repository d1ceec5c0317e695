# shellcheck shell=bash
# Shared by the benchmark scripts (sourced, from the repository root): the binaries and the
# cores, and a wait for a listener.
#
# LAMINA_BIN and PERF_BIN default to the release binaries under CARGO_TARGET_DIR (or build/),
# built if missing; TARGET_CPU (0) and PERF_CPU (1) are the cores to pin them to.

TARGET_CPU="${TARGET_CPU:-0}"
PERF_CPU="${PERF_CPU:-1}"
BIN_DIR="${CARGO_TARGET_DIR:-build}/release"
LAMINA_BIN="${LAMINA_BIN:-$BIN_DIR/lamina}"
PERF_BIN="${PERF_BIN:-$BIN_DIR/lamina-perf}"
if [ ! -x "$LAMINA_BIN" ] || [ ! -x "$PERF_BIN" ]; then
    cargo build --release --locked -p lamina-target -p lamina-integration --bins
fi

# wait_port PORT [TRIES]: waits (0.1 s a try, default 100 tries) for a listener on 127.0.0.1.
wait_port() {
    local _
    for _ in $(seq "${2:-100}"); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}
