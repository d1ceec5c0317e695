#!/usr/bin/env bash
# Creates (once) a Python virtual environment under build/ with SPDK's own JSON-RPC client from
# PyPI (package `spdk`: the `spdk.rpc` module and the `spdk-rpc` command), and prints the
# environment's python. Used by the real-client tests; CI calls it on a fresh machine.
#   integration/clients/spdk-rpc-env.sh  ->  /path/to/build/venv-spdk/bin/python3
set -euo pipefail
cd "$(dirname "$0")/../.."
SPDK_PY_VERSION=${SPDK_PY_VERSION:-26.9}
venv=build/venv-spdk
if [ ! -x "$venv/bin/spdk-rpc" ] || ! "$venv/bin/python3" -c "import spdk.rpc" 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "spdk==$SPDK_PY_VERSION" >&2
fi
echo "$PWD/$venv/bin/python3"
