#!/usr/bin/env bash
# Runs the real-client tests of the JSON-RPC API: SPDK's own client from PyPI (spdk-rpc and
# spdk.rpc) against release builds of lamina. CI runs it; `-k PATTERN` selects tests.
#   integration/clients/run-spdk-rpc.sh [-v] [-k PATTERN]
set -euo pipefail
cd "$(dirname "$0")/../.."
python="$(dirname "$(bash integration/clients/spdk-rpc-env.sh)")/python3"
for bin in lamina lamina-perf; do
    [ -x "build/release/$bin" ] || cargo build --release --locked -p lamina-target -p lamina-integration --bins
done
exec "$python" integration/clients/spdk_rpc_suite.py \
    --lamina build/release/lamina --perf build/release/lamina-perf "$@"
