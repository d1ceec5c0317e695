#!/usr/bin/env bash
# NVMe/TCP TLS with SPDK's NVMe host, the second TLS host implementation beside Linux (the VM
# test integration/vm/guest/lamina-tls.sh): SPDK's spdk_nvme_perf (`-S ssl --psk-path`, OpenSSL
# underneath, PSK identity version 0 and SPDK's RFC 8446 derivation) against a release build of
# lamina with a secure-channel listener. The host must be refused in clear text and with another
# key, and must connect its admin and I/O queues over TLS and run I/O, reads and writes, 4 KiB
# and 128 KiB, with a SHA-256 and a SHA-384 key. Needs spdk_nvme_perf from SPDK 24.01 or later (CI does not build SPDK; see
# spdk-host-auth.sh for building 26.05).
#   SPDK_DIR=/tmp/spdk26 integration/clients/spdk-host-tls.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
SPDK_DIR=${SPDK_DIR:-/tmp/spdk26}
# shellcheck source=spdk-host-lib.sh
. integration/clients/spdk-host-lib.sh
tls_port=$((port + 1))
nqn=nqn.2026-11.io.lamina:default
host=nqn.2014-08.org.nvmexpress:uuid:2b7c9d4e-1f3a-4b5c-8d6e-7f8091a2b3c4
start_lamina --log-level "info,lamina_target::transport::connection=debug"
key() { interchange_key NVMeTLSkey-1 "$1" "$2"; }
umask 077
key 01 32 >"$work/psk.key"
key 01 32 >"$work/other.key"
rpc keyring_file_add_key "{\"name\":\"tls0\",\"path\":\"$work/psk.key\"}"
rpc nvmf_subsystem_add_listener "{\"nqn\":\"$nqn\",\"listen_address\":{\"trtype\":\"tcp\",\"adrfam\":\"ipv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$tls_port\"},\"secure_channel\":true}"
rpc nvmf_subsystem_allow_any_host "{\"nqn\":\"$nqn\",\"allow_any_host\":false}"
rpc nvmf_subsystem_add_host "{\"nqn\":\"$nqn\",\"host\":\"$host\",\"psk\":\"tls0\"}"

perf() {
    timeout 120 "$PERF" --no-huge -s 1024 -c 0x1 -t 3 \
        -r "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$tls_port subnqn:$nqn hostnqn:$host" "$@"
}
fails=0
check() { echo "$1: $2"; [ "$2" = ok ] || fails=$((fails + 1)); }

# perf exits 0 when it attaches nothing: a refusal is "No valid NVMe controllers found" and
# no I/O figures.
refused() {
    label=$1
    shift
    perf -q 8 -o 4096 -w randread "$@" >"$work/out.log" 2>&1 || true
    if grep -q "^Total" "$work/out.log"; then
        check "$label" "FAIL: connected and ran I/O"
    elif grep -q "No valid NVMe controllers found" "$work/out.log"; then
        grep -m1 -iE "ssl|tls|connect" "$work/out.log" | sed -E 's/^.*\*ERROR\*: ?//' | cut -c1-160
        check "$label" ok
    else
        tail -n 20 "$work/out.log"
        check "$label" "FAIL: not refused"
    fi
}
refused "clear text on the TLS port"
refused "another PSK" -S ssl --psk-path "$work/other.key"
# io LABEL [perf options...]: I/O over TLS must run.
io() {
    label=$1
    shift
    if perf "$@" >"$work/good.log" 2>&1 && grep -q "^Total" "$work/good.log"; then
        grep -E "^Total" "$work/good.log"
        check "$label" ok
    else
        tail -n 20 "$work/good.log"
        check "$label" "FAIL: no I/O"
    fi
}
for w in "randread 4096 32" "randwrite 4096 32" "read 131072 8" "write 131072 8"; do
    set -- $w
    io "TLS, 3 s of $1 $2-byte I/O at QD $3" -S ssl --psk-path "$work/psk.key" -q "$3" -o "$2" -w "$1"
done
# A SHA-384 key: SPDK offers identity NVMe0R02 and uses the PSK with TLS_AES_256_GCM_SHA384.
key 02 48 >"$work/psk384.key"
rpc keyring_file_add_key "{\"name\":\"tls1\",\"path\":\"$work/psk384.key\"}"
rpc nvmf_subsystem_remove_host "{\"nqn\":\"$nqn\",\"host\":\"$host\"}"
rpc nvmf_subsystem_add_host "{\"nqn\":\"$nqn\",\"host\":\"$host\",\"psk\":\"tls1\"}"
io "TLS with a SHA-384 key, 3 s of 4096-byte random reads and writes at QD 32" \
    -S ssl --psk-path "$work/psk384.key" -q 32 -o 4096 -w randrw -M 50
ok=$(grep -c "TLS handshake done" "$work/lamina.log" || true)
bad=$(grep -c "TLS handshake refused" "$work/lamina.log" || true)
echo "lamina: $ok TLS handshakes done (debug log), $bad refused"
grep -E "TLS handshake refused" "$work/lamina.log" | sed -E 's/^[^ ]+ +//' | cut -c1-200 | sort | uniq -c | head
[ "$bad" -ge 2 ] || check "refusals logged" "FAIL: $bad (2 expected)"
[ "$fails" -eq 0 ] && echo "PASS: SPDK's host connects to lamina over TLS" || { echo "FAIL: $fails"; exit 1; }
