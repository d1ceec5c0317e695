#!/usr/bin/env bash
# SPDK's own JSON-RPC client, for interop tests: `spdk-rpc` from the PyPI package `spdk`
# (written by SPDK, not by us), in a Python virtual environment under build/venv-spdk.
#
#   bash integration/clients/spdk-rpc-env.sh            # prints the path of spdk-rpc
#   source integration/clients/spdk-rpc-env.sh && spdk_rpc_env
#
# Idempotent: the environment is created once (pip needs PyPI then) and reused; concurrent
# callers (parallel tests) wait for each other on a lock. The package version is pinned so a
# new SPDK release cannot change a test's outcome unnoticed: SPDK_RPC_VERSION overrides it,
# LAMINA_SPDK_VENV the directory. Needs python3 with venv (Debian: python3-venv).
# Everything but the path goes to stderr.

spdk_rpc_env() {
    local root venv version
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)" || return 1
    venv="${LAMINA_SPDK_VENV:-$root/build/venv-spdk}"
    version="${SPDK_RPC_VERSION:-26.9}"
    mkdir -p "$(dirname "$venv")" || return 1
    (
        flock 9 || exit 1
        if [ -x "$venv/bin/spdk-rpc" ] && [ -f "$venv/.spdk-$version" ]; then
            exit 0
        fi
        echo "spdk-rpc-env: installing spdk==$version into $venv" >&2
        python3 -m venv "$venv" >&2 ||
            { echo "spdk-rpc-env: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
        "$venv/bin/pip" install --quiet --disable-pip-version-check "spdk==$version" >&2 ||
            { echo "spdk-rpc-env: pip install spdk==$version failed (is PyPI reachable?)" >&2; exit 1; }
        rm -f "$venv"/.spdk-*
        touch "$venv/.spdk-$version"
    ) 9>"$venv.lock" || return 1
    echo "$venv/bin/spdk-rpc"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    spdk_rpc_env
fi
