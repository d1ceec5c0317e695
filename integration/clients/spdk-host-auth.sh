#!/usr/bin/env bash
# DH-HMAC-CHAP with SPDK's NVMe host, the second host implementation beside Linux (the VM test
# integration/vm/guest/lamina-auth.sh): SPDK's spdk_nvme_perf (26.05 or later:
# --dhchap-key / --dhchap-ctrlr-key, OpenSSL underneath) against a release build of lamina
# on its embedded default. The host must be refused without a key and when it expects another
# controller key, and must authenticate both ways on its admin and I/O queues and run I/O.
# Needs spdk_nvme_perf from SPDK 26.05 (CI does not build SPDK). ../shared/spdk/build.sh is
# written for v24.01; with TAG v26.05 it needed, on Debian 12: `elif` instead of `if` in the
# ISA-L line it edits in configure; no --without-fuse/--without-vbdev-compress (gone) and
# --without-fsdev --without-aio-fsdev; `make include/spdk/version.h` and
# `make -C include jsonrpc` (python3-tabulate) before lib/; Debian's DPDK 22.11 has no
# librte_argparse or librte_log, so drop them from DPDK_LIB_LIST in lib/env_dpdk/env.mk; then
# only app/spdk_nvme_perf is built.
#   SPDK_DIR=/tmp/spdk26 integration/clients/spdk-host-auth.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
SPDK_DIR=${SPDK_DIR:-/tmp/spdk26}
# shellcheck source=spdk-host-lib.sh
. integration/clients/spdk-host-lib.sh
nqn=nqn.2026-11.io.lamina:default
host=nqn.2014-08.org.nvmexpress:uuid:6a1f0c2e-5b3d-4c7e-9f80-1a2b3c4d5e6f
start_lamina
key() { interchange_key DHHC-1 "$1" "$2"; }
umask 077
key 01 32 >"$work/host.key"
key 02 48 >"$work/ctrl.key"
key 00 64 >"$work/other.key"
rpc keyring_file_add_key "{\"name\":\"host0\",\"path\":\"$work/host.key\"}"
rpc keyring_file_add_key "{\"name\":\"ctrl0\",\"path\":\"$work/ctrl.key\"}"
rpc nvmf_subsystem_add_host "{\"nqn\":\"$nqn\",\"host\":\"$host\",\"dhchap_key\":\"host0\",\"dhchap_ctrlr_key\":\"ctrl0\"}"

perf() {
    timeout 120 "$PERF" --no-huge -s 1024 -c 0x1 -q 8 -o 4096 -w randread -t 3 \
        -r "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$port subnqn:$nqn hostnqn:$host" "$@"
}
fails=0
check() { echo "$1: $2"; [ "$2" = ok ] || fails=$((fails + 1)); }

# perf exits 0 when it attaches nothing: a refusal is "No valid NVMe controllers found" and
# SPDK's own authentication error, and no I/O figures.
refused() {
    label=$1
    shift
    perf "$@" >"$work/out.log" 2>&1 || true
    if grep -q "^Total" "$work/out.log"; then
        check "$label" "FAIL: connected and ran I/O"
    elif grep -q "No valid NVMe controllers found" "$work/out.log" &&
        grep -q "nvme_auth" "$work/out.log"; then
        grep -m1 "nvme_auth" "$work/out.log" | sed -E 's/^.*\*ERROR\*: \[[^]]*\] ?//' | cut -c1-160
        check "$label" ok
    else
        tail -n 20 "$work/out.log"
        check "$label" "FAIL: not refused by authentication"
    fi
}
refused "no key"
refused "wrong host key" --dhchap-key "$work/other.key"
refused "another controller key" --dhchap-key "$work/host.key" --dhchap-ctrlr-key "$work/other.key"
if perf --dhchap-key "$work/host.key" --dhchap-ctrlr-key "$work/ctrl.key" >"$work/good.log" 2>&1 &&
    grep -q "^Total" "$work/good.log"; then
    grep -E "^Total" "$work/good.log"
    check "bidirectional, then 3 s of 4 KiB random reads" ok
else
    tail -n 20 "$work/good.log"
    check "bidirectional, then 3 s of 4 KiB random reads" "FAIL: no I/O"
fi
ok=$(grep -c "DH-HMAC-CHAP: host authenticated" "$work/lamina.log" || true)
refused=$(grep -c "DH-HMAC-CHAP: authentication failed" "$work/lamina.log" || true)
echo "lamina: $ok queues authenticated, $refused transactions failed"
[ "$ok" -ge 2 ] || check "queues authenticated" "FAIL: $ok (admin and I/O expected)"
[ "$refused" -ge 2 ] || check "failures logged" "FAIL: $refused (2 expected)"
grep -E "DH-HMAC-CHAP" "$work/lamina.log" | sed -E 's/^[^ ]+ +//' | sort | uniq -c | head
[ "$fails" -eq 0 ] && echo "PASS: SPDK's host authenticates with lamina" || { echo "FAIL: $fails"; exit 1; }
