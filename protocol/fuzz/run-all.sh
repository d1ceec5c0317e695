#!/usr/bin/env bash
# Runs every fuzz target in turn on the stable toolchain (no sanitizer; see README.md).
# Usage: protocol/fuzz/run-all.sh [seconds per framer target] [seconds per other target]
set -euo pipefail
cd "$(dirname "$0")"
# Keep fuzz builds out of the workspace's build/ directory (and its lock).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
framer_secs=${1:-600}
other_secs=${2:-120}
mkdir -p logs
for target in framer_target framer_host sqe connect_data structures; do
    case $target in framer_*) secs=$framer_secs ;; *) secs=$other_secs ;; esac
    mkdir -p "corpus/$target"
    echo "==> $target for ${secs}s"
    cargo fuzz run --sanitizer none --debug-assertions "$target" "corpus/$target" "seeds/$target" \
        -- -max_total_time="$secs" -print_final_stats=1 2>&1 | tee "logs/$target.log" | tail -n 25
done
