#!/usr/bin/env bash
# Checks a packet capture of NVMe/TCP sessions with Wireshark's own dissectors (tshark): a
# client written elsewhere than Lamina reads every PDU the kernel host and Lamina exchanged.
# Fails if any frame is malformed or carries an expert-info error, if a header or data digest
# does not verify (digest checking is switched on), if digests were never checked at all, or
# if a PDU type the session must have used is missing. Prints the PDU and command counts.
#
# Usage: tshark-check.sh [--port PORT] PCAP
#   --port PORT   TCP port decoded as NVMe/TCP (default 4420)
# Needs tshark (Debian package tshark). Exit status: 0 pass, 1 fail, 2 usage.
set -euo pipefail

PORT=4420
PCAP=""
while (($#)); do
    case "$1" in
    --port) (($# >= 2)) || exit 2; PORT="$2"; shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "tshark-check: unknown option $1" >&2; exit 2 ;;
    *) PCAP="$1"; shift ;;
    esac
done
[[ -n $PCAP ]] || { echo "tshark-check: no capture file given" >&2; exit 2; }
[[ -s $PCAP ]] || { echo "tshark-check: $PCAP is missing or empty" >&2; exit 1; }
command -v tshark >/dev/null || { echo "tshark-check: tshark is not installed" >&2; exit 1; }

FAILED=0
fail() { echo "FAIL: $*"; FAILED=1; }
ok() { echo "ok: $*"; }

# The NVMe/TCP dissector on our port, with both digest checks on.
TSHARK=(tshark -n -r "$PCAP" -d "tcp.port==$PORT,nvme-tcp"
    -o nvme-tcp.check_hdgst:TRUE -o nvme-tcp.check_ddgst:TRUE)

# count FILTER: frames matching a display filter.
count() { "${TSHARK[@]}" -Y "$1" -T fields -e frame.number 2>/dev/null | grep -c . || true; }

# Lists the frames matching FILTER (summary lines with the expert info), at most 20.
show() { "${TSHARK[@]}" -Y "$1" -T fields -e frame.number -e _ws.col.Info -e _ws.expert.message \
    2>/dev/null | head -n 20; }

echo "== $(tshark --version | head -n1)"
echo "== capture: $(capinfos -c -M "$PCAP" 2>/dev/null | awk -F': *' '/Number of packets/ { print $2 }') packets"
"${TSHARK[@]}" -q -z io,phs 2>/dev/null | grep -E 'tcp|nvme' || true

frames=$(count "nvme-tcp")
((frames > 0)) || fail "no NVMe/TCP frame in the capture"
ok "$frames frames carry NVMe/TCP PDUs"

malformed=$(count "_ws.malformed")
if ((malformed > 0)); then
    show "_ws.malformed"
    fail "$malformed malformed frames"
else
    ok "no malformed frame"
fi

# Expert severity Error (0x00800000): malformed fields, bad digests, protocol violations.
errors=$(count "_ws.expert.severity == 0x00800000")
if ((errors > 0)); then
    show "_ws.expert.severity == 0x00800000"
    fail "$errors frames with expert-info errors"
else
    ok "no expert-info error"
fi
warnings=$(count "_ws.expert.severity == 0x00600000 && nvme-tcp")
echo "note: $warnings NVMe/TCP frames with expert-info warnings"
((warnings == 0)) || show "_ws.expert.severity == 0x00600000 && nvme-tcp"

# Digest status: 0 bad, 1 good, 2 unverified (checking off), 3 not present.
for d in hdgst ddgst; do
    good=$(count "nvme-tcp.$d.status == 1")
    bad=$(count "nvme-tcp.$d.status == 0")
    unverified=$(count "nvme-tcp.$d.status == 2")
    if ((bad > 0)); then
        show "nvme-tcp.$d.status == 0"
        fail "$bad frames with a bad $d"
    fi
    ((unverified == 0)) || fail "$unverified frames with an unverified $d (is check_$d on?)"
    ((good > 0)) || fail "no $d was verified: the capture has no session with digests"
    ((bad == 0 && unverified == 0 && good > 0)) && ok "$good frames with a verified $d, none bad"
done

# PDU types (NVMe/TCP 1.0, 3.3): every one a connect, identify, read and write session uses.
declare -A NAMES=([0]=ICReq [1]=ICResp [2]=H2CTermReq [3]=C2HTermReq [4]=CapsuleCmd
    [5]=CapsuleResp [6]=H2CData [7]=C2HData [9]=R2T)
declare -A PDUS=()
while read -r t; do
    [[ -n $t ]] && PDUS[$t]=$((${PDUS[$t]:-0} + 1))
done < <("${TSHARK[@]}" -Y nvme-tcp -T fields -e nvme-tcp.type 2>/dev/null | tr ',' '\n')
echo "PDUs by type:"
for t in $(printf '%s\n' "${!PDUS[@]}" | sort -n); do
    printf '  %-12s %s\n' "${NAMES[$t]:-type-$t}" "${PDUS[$t]}"
done
for t in 0 1 4 5 6 7 9; do
    ((${PDUS[$t]:-0} > 0)) || fail "no ${NAMES[$t]} PDU"
done
((${PDUS[0]:-0} == ${PDUS[1]:-0})) || fail "${PDUS[0]:-0} ICReq but ${PDUS[1]:-0} ICResp"
for t in 2 3; do
    ((${PDUS[$t]:-0} == 0)) || fail "${PDUS[$t]} ${NAMES[$t]} PDUs: a connection was terminated"
done

# A frame can hold several capsules: tshark lists each field's values in PDU order.
echo "NVMe commands by queue and opcode (fabrics: by fctype):"
"${TSHARK[@]}" -Y "nvme-tcp.type == 4" -T fields -E 'separator=;' -e nvme-tcp.cmd.qid \
    -e nvme.cmd.opc -e nvme.fabrics.cmd.fctype 2>/dev/null | awk -F';' '
    {
        nq = split($1, q, ","); no = split($2, o, ","); split($3, f, ",")
        if (no == 0) { n["fabrics " f[1]]++; next }
        for (i = 1; i <= no; i++) n[((nq >= i && q[i] ~ /^(0x)?0+$/) ? "admin " : "io ") o[i]]++
    }
    END { for (k in n) printf "  %-14s %d\n", k, n[k] }' | sort

if ((FAILED)); then
    echo "tshark-check: FAIL ($PCAP)"
    exit 1
fi
echo "tshark-check: PASS ($PCAP)"
