#!/usr/bin/env bash
# integration/prometheus/run.sh: Lamina scraped by a real Prometheus.
#
# 1. Installs Debian's `prometheus` package (Prometheus and promtool) if missing.
# 2. Starts `lamina serve` (build/release/lamina, or $LAMINA_BIN) on a temporary data directory,
#    loopback only, and waits for /readyz.
# 3. `promtool check metrics` on a scrape: no error and no lint warning.
# 4. Starts Prometheus on loopback (1 s scrape interval) scraping it, drives I/O with
#    lamina-perf (build/release/lamina-perf, or $LAMINA_PERF_BIN), then checks through the
#    HTTP query API that the counters, rates, byte counts and latency quantiles match what
#    lamina-perf did (check.py), that promtool still passes on the loaded scrape, and that every
#    expression of deploy/grafana/dashboards/lamina.json evaluates.
#
# Self-contained and idempotent: everything lives in a temporary directory removed at exit;
# binaries that are missing are built (release; existing ones are used as they are, so build
# first in CI). Takes about 30 s once built. Prints PASS or
# FAIL as its last line; exit status 0 only on PASS.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
HERE=$ROOT/integration/prometheus
# Cargo writes to build/ (.cargo/config.toml) unless CARGO_TARGET_DIR says otherwise.
OUT=${CARGO_TARGET_DIR:-$ROOT/build}
LAMINA=${LAMINA_BIN:-$OUT/release/lamina}
PERF=${LAMINA_PERF_BIN:-$OUT/release/lamina-perf}
NQN=nqn.2026-11.io.lamina:default

step() { printf '==> %s\n' "$*"; }
fail() {
    printf 'prometheus integration: %s\n' "$*" >&2
    if [ -n "${WORK:-}" ]; then
        for log in lamina.log prometheus.log; do
            [ -s "$WORK/$log" ] && { echo "--- last lines of $log" >&2; tail -n 20 "$WORK/$log" >&2; }
        done
    fi
    echo "FAIL: Prometheus integration"
    exit 1
}

# --- 1. tools -------------------------------------------------------------------------------
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    step "installing Debian's prometheus package"
    [ "$(id -u)" = 0 ] || fail "prometheus is not installed and this is not root: apt-get install prometheus"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
for tool in curl python3; do
    command -v "$tool" >/dev/null || fail "$tool is required"
done
if [ ! -x "$LAMINA" ] || [ ! -x "$PERF" ]; then
    step "building lamina and lamina-perf (release)"
    cargo build --release --locked -p lamina-target --bin lamina -p lamina-integration --bin lamina-perf
fi
prometheus --version 2>&1 | head -n 1

WORK=$(mktemp -d -t lamina-prometheus.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() { # URL EXPECTED_STATUS SECONDS
    local deadline=$((SECONDS + $3))
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = "$2" ]; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

# --- 2. Lamina ------------------------------------------------------------------------------
NVME_PORT=$(free_port)
METRICS_PORT=$(free_port)
PROM_PORT=$(free_port)
METRICS=http://127.0.0.1:$METRICS_PORT
PROM=http://127.0.0.1:$PROM_PORT
step "starting lamina (NVMe/TCP 127.0.0.1:$NVME_PORT, metrics $METRICS)"
"$LAMINA" serve --listen "127.0.0.1:$NVME_PORT" --metrics "127.0.0.1:$METRICS_PORT" \
    --data-dir "$WORK/data" --log-format json >"$WORK/lamina.out" 2>"$WORK/lamina.log" &
PIDS+=($!)
wait_http "$METRICS/readyz" 200 60 || fail "lamina never became ready"

# --- 3. promtool on an idle scrape ----------------------------------------------------------
lint() { # NAME: scrape, then promtool check metrics must say nothing and succeed
    curl -sf "$METRICS/metrics" >"$WORK/$1.prom" || fail "scrape failed"
    if ! promtool check metrics <"$WORK/$1.prom" >"$WORK/$1.lint" 2>&1 || [ -s "$WORK/$1.lint" ]; then
        cat "$WORK/$1.lint" >&2
        fail "promtool check metrics reported problems on the $1 scrape"
    fi
    echo "promtool check metrics: $1 scrape clean ($(grep -vc '^#' "$WORK/$1.prom") samples)"
}
step "promtool check metrics (idle)"
lint idle

# --- 4. Prometheus --------------------------------------------------------------------------
cat >"$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: lamina
    static_configs:
      - targets: ["127.0.0.1:$METRICS_PORT"]
YAML
promtool check config "$WORK/prometheus.yml" >/dev/null || fail "promtool check config"
step "starting prometheus ($PROM)"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
wait_http "$PROM/-/ready" 200 60 || fail "prometheus never became ready"

perf() { # NAME WORKLOAD SECONDS
    "$PERF" -a "127.0.0.1:$NVME_PORT" -n "$NQN" -w "$2" -o 4096 -q 8 -c 2 -t "$3" --json \
        >"$WORK/$1.json" 2>"$WORK/$1.err" || { cat "$WORK/$1.err" >&2; fail "lamina-perf $2 failed"; }
}
python3 "$HERE/check.py" wait-up "$PROM" || fail "prometheus never scraped lamina"
sleep 2 # a flat baseline before the load
step "driving I/O with lamina-perf: randwrite 6 s, then randread 5 s (4 KiB, 2 queues x 8)"
date +%s.%N >"$WORK/t_write_start"
perf write randwrite 6
date +%s.%N >"$WORK/t_write_end"
perf read randread 5
date +%s.%N >"$WORK/t_read_end"
sleep 3 # scrapes after the load

step "checking through the Prometheus query API"
python3 "$HERE/check.py" io "$PROM" "$WORK" || fail "values in Prometheus do not match the I/O done"
step "promtool check metrics (after I/O)"
lint loaded
step "evaluating every dashboard expression"
python3 "$HERE/check.py" dashboard "$PROM" "$ROOT/deploy/grafana/dashboards/lamina.json" \
    || fail "dashboard expressions do not evaluate"

echo "PASS: Prometheus integration (promtool clean, counters and rates match lamina-perf, dashboard evaluates)"
