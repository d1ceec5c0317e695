#!/usr/bin/env bash
# deploy/test/kubernetes.sh: validates every manifest in deploy/kubernetes/ against the Kubernetes
# JSON schemas (strict: unknown fields are errors) and the Prometheus Operator's ServiceMonitor
# schema, then checks how the manifests fit together. See validate_kubernetes.py for what is
# checked and where the schemas come from.
#
# Offline-capable: the schemas ship inside pinned PyPI packages (kubernetes-validate for the
# built-in kinds, cloudcoil-models-prometheus-operator for the CRD), installed once into a
# virtualenv under the cache dir. Later runs use the cached virtualenv and need no network; a
# machine without a cache needs PyPI once. No GitHub, no cluster, no kubectl.
#
# Usage: deploy/test/kubernetes.sh [K8S_VERSION...]   (default: 1.30 and 1.37)
# Environment: LAMINA_K8S_VALIDATE_CACHE (default ~/.cache/lamina-k8s-validate).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly MANIFESTS=$HERE/../kubernetes
readonly CACHE=${LAMINA_K8S_VALIDATE_CACHE:-$HOME/.cache/lamina-k8s-validate}
# Pinned: the schemas are data, and a validator that changes under us is a flaky test.
readonly REQUIREMENTS="kubernetes-validate==1.37.0
cloudcoil==0.6.0
cloudcoil-models-prometheus-operator==0.80.1.0
jsonschema==4.26.0
PyYAML==6.0.4"

log() { printf '%s [kubernetes.sh] %s\n' "$(date +%T)" "$*"; }

# A python3 with venv and tomllib (3.11+): the machine's own, else Debian's.
find_python() {
    local py
    for py in python3 /usr/bin/python3; do
        if command -v "$py" >/dev/null &&
            "$py" -c 'import sys, venv, tomllib; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$py"
            return 0
        fi
    done
    log "installing python3 and python3-venv from Debian" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >&2
    echo /usr/bin/python3
}

# Prints the path of a virtualenv with $REQUIREMENTS, creating it when missing or stale.
ensure_venv() {
    local python key venv
    python=$(find_python)
    key=$( (printf '%s\n' "$REQUIREMENTS"; "$python" --version) | sha256sum | cut -c1-16)
    venv=$CACHE/venv-$key
    if [[ ! -f $venv/.complete ]]; then
        log "creating $venv (pinned validators from PyPI)" >&2
        rm -rf "$venv"
        mkdir -p "$CACHE"
        "$python" -m venv "$venv"
        printf '%s\n' "$REQUIREMENTS" >"$venv/requirements.txt"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            -r "$venv/requirements.txt" >&2
        touch "$venv/.complete"
    fi
    echo "$venv"
}

main() {
    local venv
    venv=$(ensure_venv)
    log "validating $(cd "$MANIFESTS" && pwd) with $venv"
    "$venv/bin/python" "$HERE/validate_kubernetes.py" "$MANIFESTS" "$@"
}

main "$@"
