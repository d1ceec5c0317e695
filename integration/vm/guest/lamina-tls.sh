# shellcheck shell=sh
# NVMe/TCP over TLS 1.3 with a pre-shared key, with the Linux host (sourced by lamina.sh after
# checks.sh, lamina-ctl.sh and lamina-auth.sh): a third subsystem reachable only through a TLS
# listener on a second port (TLS_PORT, 4421; TARGET_PORT stays clear text), its one allowed host
# with a PSK in Lamina's keyring (the configured key in interchange format, NVMeTLSkey-1, from
# `nvme gen-tls-key`). The kernel's host asks tlshd (ktls-utils) for the handshake, with the TLS
# PSK that `nvme check-tls-key --insert` derived from the same configured key and put in the
# kernel's .nvme keyring under its PSK identity. Checks: a clear-text connect to the TLS port is
# refused; PSK identity version 0 with a SHA-256 key and version 1 (the identity carries a PSK
# digest) with a SHA-384 key each connect, use that key on every queue (tlshd's log names the
# identity, sysfs the key) and do I/O; TLS with header and data digests, and lamina killed
# under I/O and restarted (the host reconnects over TLS by itself); a host whose key
# differs from Lamina's is refused; the clear port's discovery log reports the TLS listener with
# treq "required" and sectype tls13.
# Needs a kernel with NVMe/TCP TLS (CONFIG_NVME_TCP_TLS, the .nvme keyring), tlshd and an
# nvme-cli with check-tls-key --insert --identity: Debian 13 (6.12, nvme-cli 2.13, ktls-utils
# 1.0) has them; Debian 12's 6.1 has no NVMe/TCP TLS at all, where the check says so and is
# skipped.

TLS_NQN=nqn.2026-12.io.lamina:tls
TLS_PORT=${TLS_PORT:-4421}
TLSHD_LOG=/tmp/tlshd.log
DISCOVERY_NQN=nqn.2014-08.org.nvmexpress.discovery

# tls_supported: whether this kernel and nvme-cli can do NVMe/TCP TLS; says why not if not.
tls_supported() {
    modprobe nvme-keyring 2>/dev/null
    modprobe tls 2>/dev/null
    if [ ! -d /sys/module/nvme_keyring ] || ! grep -q ' keyring *\.nvme:' /proc/keys; then
        echo "skip: kernel $(uname -r) has no .nvme keyring (CONFIG_NVME_KEYRING): no NVMe/TCP TLS"
        return 1
    fi
    if [ ! -e /sys/module/nvme_tcp/parameters/tls_handshake_timeout ]; then
        echo "skip: kernel $(uname -r)'s nvme-tcp has no TLS (CONFIG_NVME_TCP_TLS)"
        return 1
    fi
    if [ ! -d /sys/module/tls ]; then
        echo "skip: kernel $(uname -r) has no kTLS (the tls module)"
        return 1
    fi
    if ! command -v tlshd >/dev/null 2>&1; then
        echo "skip: no tlshd (Debian package ktls-utils) in this guest"
        return 1
    fi
    help=$(nvme check-tls-key --help 2>&1)
    case "$help" in
    *--insert*--identity* | *--identity*--insert*) ;;
    *)
        echo "skip: $(nvme version | head -n 1) has no 'check-tls-key --insert --identity'"
        return 1
        ;;
    esac
    return 0
}

# start_tlshd: the kernel's handshake upcall needs tlshd; started here (its debug log names the
# PSK identity of every handshake) unless something already runs it.
start_tlshd() {
    TLSHD_PID=""
    if pidof tlshd >/dev/null 2>&1; then
        echo "tlshd already runs (pid $(pidof tlshd)); its log is not ours to check"
        return 0
    fi
    if [ ! -r /etc/tlshd.conf ]; then
        # tlshd exits at once without a config; it links the .nvme keyring itself.
        printf '[debug]\nloglevel=1\n\n[authenticate]\nkeyrings=.nvme\n' >/etc/tlshd.conf
    fi
    # Appended (O_APPEND): tlshd forks a child per handshake, all writing the same file.
    echo "+ tlshd -s -c /etc/tlshd.conf >>$TLSHD_LOG 2>&1 &"
    tlshd -s -c /etc/tlshd.conf >>"$TLSHD_LOG" 2>&1 &
    TLSHD_PID=$!
    sleep 1
    kill -0 "$TLSHD_PID" 2>/dev/null || {
        cat "$TLSHD_LOG"
        fail "tlshd exited right after starting"
    }
    grep "Keyring '.nvme' linked" "$TLSHD_LOG" || fail "tlshd did not link the .nvme keyring"
    echo "ok: tlshd (pid $TLSHD_PID) serves the kernel's TLS handshakes"
}

# tlshd_since LINE: tlshd's log after line LINE (the handshakes of one connect).
tlshd_since() {
    tail -n "+$(($1 + 1))" "$TLSHD_LOG" 2>/dev/null |
        grep -vE 'Querying the handshake|Parsing a valid netlink|No certificates found|name resolution|System config file'
}

tlshd_lines() {
    if [ -r "$TLSHD_LOG" ]; then wc -l <"$TLSHD_LOG"; else echo 0; fi
}

# gen_psk HMAC: a new configured PSK (1 = SHA-256, 2 = SHA-384) from nvme-cli, in $PSK.
gen_psk() {
    run nvme gen-tls-key --hmac="$1"
    PSK=$(echo "$OUT" | grep -o 'NVMeTLSkey-1:0[12]:[A-Za-z0-9+/=]*:' | head -n 1)
    [ -n "$PSK" ] || fail "nvme gen-tls-key printed no NVMeTLSkey-1 key"
}

# add_psk NAME: writes $PSK to a file only its owner can read and adds it to Lamina's keyring.
add_psk() {
    (umask 077 && printf '%s\n' "$PSK" >"$TLS_KEYS/$1")
    expect "mode of $TLS_KEYS/$1" "$(stat -c %a "$TLS_KEYS/$1")" 600
    lamina_rpc keyring_file_add_key "{\"name\":\"$1\",\"path\":\"$TLS_KEYS/$1\"}"
}

# clear_psks: unlinks every PSK of TLS_HOST for TLS_NQN (or the discovery NQN) from the
# kernel's .nvme keyring, so that the next connect can only pick the key inserted after this
# (with several, 6.12 picked the version 1 SHA-384 one over version 0 and SHA-256 ones).
clear_psks() {
    for id in $(keyctl rlist %:.nvme 2>/dev/null); do
        desc=$(keyctl rdescribe "$id" 2>/dev/null) || continue
        case "$desc" in
        "psk;"*" $TLS_HOST $TLS_NQN"* | "psk;"*" $TLS_HOST $DISCOVERY_NQN"*)
            keyctl unlink "$id" %:.nvme >/dev/null || fail "cannot unlink key $id from .nvme"
            ;;
        esac
    done
    for id in $(keyctl rlist %:.nvme 2>/dev/null); do
        case "$(keyctl rdescribe "$id" 2>/dev/null)" in
        "psk;"*" $TLS_HOST $TLS_NQN"*) fail "key $id is still in .nvme after unlinking" ;;
        esac
    done
    return 0
}

# insert_psk IDENTITY_VERSION: derives the TLS PSK of $PSK for TLS_HOST and TLS_NQN into the
# .nvme keyring; sets PSK_SERIAL (hex, as sysfs tls_key shows it) and PSK_IDENTITY.
insert_psk() {
    hmac=${PSK#NVMeTLSkey-1:}
    hmac=${hmac%%:*}
    run nvme check-tls-key --keydata="$PSK" --hostnqn="$TLS_HOST" --subsysnqn="$TLS_NQN" \
        --identity="$1" --insert
    PSK_SERIAL=$(echo "$OUT" | sed -n 's/^Inserted TLS key \([0-9a-f]*\)$/\1/p')
    [ -n "$PSK_SERIAL" ] || fail "nvme check-tls-key --insert printed no key serial"
    # The description is the PSK identity: "NVMe<version>R<hmac> <hostnqn> <subnqn>[ <digest>]".
    PSK_IDENTITY=$(keyctl rdescribe "0x$PSK_SERIAL" | sed 's/^[^;]*;[^;]*;[^;]*;[^;]*;//')
    case "$PSK_IDENTITY" in
    "NVMe${1}R${hmac} $TLS_HOST $TLS_NQN" | "NVMe${1}R${hmac} $TLS_HOST $TLS_NQN "?*) ;;
    *) fail "key $PSK_SERIAL in .nvme has identity '$PSK_IDENTITY', expected NVMe${1}R${hmac} $TLS_HOST $TLS_NQN..." ;;
    esac
    echo "ok: PSK identity '$PSK_IDENTITY' in the .nvme keyring (key $PSK_SERIAL)"
}

# tls_controller: the controller of TLS_NQN, if any.
tls_controller() {
    for c in /sys/class/nvme/nvme*; do
        [ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$TLS_NQN" ] && echo "${c##*/}"
    done
    return 0
}

# tls_refused LABEL [nvme connect options...]: a connect to the TLS port must fail and leave no
# controller.
tls_refused() {
    label=$1
    shift
    step "TLS: $label is refused"
    echo "+ nvme connect -t tcp -a $TARGET_ADDR -s $TLS_PORT -n $TLS_NQN --hostnqn=$TLS_HOST $*"
    from=$(tlshd_lines)
    out=$(timeout -k 10 "$CMD_TIMEOUT" nvme connect -t tcp -a "$TARGET_ADDR" -s "$TLS_PORT" \
        -n "$TLS_NQN" --hostnqn="$TLS_HOST" --ctrl-loss-tmo="$CTRL_LOSS_TMO" "$@" 2>&1)
    rc=$?
    echo "$out"
    tlshd_since "$from"
    dmesg | tail -n 3
    [ "$rc" -ne 0 ] || fail "nvme connect ($label) to the TLS port succeeded; it must be refused"
    sleep 1
    [ -z "$(tls_controller)" ] || fail "a controller of $TLS_NQN exists after the refused connect ($label)"
    echo "ok: refused ($label), exit status $rc, no controller"
}

# tls_connect LABEL [nvme connect options...]: connects with --tls (and the options); the live
# controller must use the key just inserted (sysfs tls_key) and tlshd must have offered its
# identity. Sets CTRL and DEV.
tls_connect() {
    label=$1
    shift
    step "TLS: nvme connect --tls ($label)"
    from=$(tlshd_lines)
    echo "+ nvme connect -t tcp -a $TARGET_ADDR -s $TLS_PORT -n $TLS_NQN --hostnqn=$TLS_HOST --tls $*"
    out=$(timeout -k 10 "$CMD_TIMEOUT" nvme connect -t tcp -a "$TARGET_ADDR" -s "$TLS_PORT" \
        -n "$TLS_NQN" --hostnqn="$TLS_HOST" --ctrl-loss-tmo="$CTRL_LOSS_TMO" --tls "$@" 2>&1)
    rc=$?
    echo "$out"
    if [ "$rc" -ne 0 ]; then
        tlshd_since "$from"
        fail "nvme connect --tls ($label) exited with status $rc$(timed_out "$rc")"
    fi
    i=0
    until find_devices; do
        [ "$i" -lt 30 ] || fail "no live controller with namespace 1 for $TLS_NQN 30s after connect"
        sleep 1
        i=$((i + 1))
    done
    echo "ok: controller $CTRL ($(cat "/sys/class/nvme/$CTRL/address")), namespace 1 is $DEV"
    expect "TLS key of $CTRL (sysfs tls_key)" "$(cat "/sys/class/nvme/$CTRL/tls_key" 2>/dev/null)" "$PSK_SERIAL"
    if [ -n "$TLSHD_PID" ]; then
        hs=$(tlshd_since "$from")
        echo "$hs"
        # One handshake per queue: the admin queue and each I/O queue.
        queues=$(cat "/sys/class/nvme/$CTRL/queue_count")
        n=$(echo "$hs" | grep -cF "Using psk identity $PSK_IDENTITY")
        [ "$n" -ge "$queues" ] ||
            fail "tlshd offered identity '$PSK_IDENTITY' $n times for $queues queues"
        echo "ok: tlshd offered '$PSK_IDENTITY' for all $queues queues"
        ok=$(echo "$hs" | grep -c "Handshake with .* was successful")
        [ "$ok" -ge "$queues" ] || fail "$ok successful handshakes for $queues queues"
        suites=$(echo "$hs" | sed -n 's/.*Session description: //p' | sort | uniq -c |
            awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')
        echo "ok: $ok successful handshakes: $suites"
    fi
}

# tls_io NAME OFFSET_MIB: 2 MiB of random data written with O_DIRECT and read back.
tls_io() {
    write_check "$1" 2 "$2" "$MIB" oflag=direct iflag=direct
}

check_tls() {
    step "TLS: can this kernel's host and nvme-cli do NVMe/TCP TLS?"
    tls_supported || return 0
    echo "ok: kernel $(uname -r) has nvme_keyring, tls and nvme-tcp TLS; $(nvme version | head -n 1); $(tlshd --version 2>&1 | head -n 1)"
    saved_nqn=$TARGET_NQN saved_ctrl=$CTRL saved_dev=$DEV
    TLS_HOST=$(cat /etc/nvme/hostnqn)
    TLS_KEYS=/tmp/lamina-keys
    mkdir -p "$TLS_KEYS"
    chmod 700 "$TLS_KEYS"
    start_tlshd
    clear_psks

    step "TLS: PSKs from nvme gen-tls-key in Lamina's keyring; a subsystem on a TLS-only port $TLS_PORT"
    gen_psk 1
    psk_v0=$PSK
    add_psk tls0
    gen_psk 2
    psk_v1=$PSK
    add_psk tls1
    gen_psk 1
    psk_wrong=$PSK
    lamina_rpc bdev_lvol_create '{"lvs_name":"lvs0","lvol_name":"tlsvol","size_in_mib":1024,"thin_provision":true}'
    lamina_rpc nvmf_create_subsystem "{\"nqn\":\"$TLS_NQN\",\"allow_any_host\":false}"
    lamina_rpc nvmf_subsystem_add_ns "{\"nqn\":\"$TLS_NQN\",\"namespace\":{\"bdev_name\":\"lvs0/tlsvol\",\"nsid\":1}}"
    lamina_rpc nvmf_subsystem_add_listener "{\"nqn\":\"$TLS_NQN\",\"listen_address\":{\"trtype\":\"tcp\",\"adrfam\":\"ipv4\",\"traddr\":\"$TARGET_ADDR\",\"trsvcid\":\"$TLS_PORT\"},\"secure_channel\":true}"
    lamina_rpc nvmf_subsystem_add_host "{\"nqn\":\"$TLS_NQN\",\"host\":\"$TLS_HOST\",\"psk\":\"tls0\"}"
    wait_listen "$TLS_PORT" 10 || fail "nothing listens on port $TLS_PORT"
    echo "ok: Lamina listens on $TARGET_ADDR:$TLS_PORT"
    TARGET_NQN=$TLS_NQN

    # a. No TLS at all on a port that requires it.
    tls_refused "a clear-text connect (no --tls) to the TLS port"

    # b. PSK identity version 0 (NVMe/TCP 1.0c: "NVMe0R01 <hostnqn> <subnqn>"), SHA-256.
    PSK=$psk_v0
    insert_psk 0
    tls_connect "identity version 0, SHA-256 PSK"
    tls_io tls-v0 0
    disconnect_target

    # e. The host holds another PSK than Lamina's for it under the same identity (version 0
    # names only the hash and the NQNs): the handshake's binder must not verify.
    clear_psks
    PSK=$psk_wrong
    insert_psk 0
    tls_refused "a host whose SHA-256 PSK differs from Lamina's (same identity)" --tls

    # c. PSK identity version 1 (NVMe/TCP 2.0: the identity ends with the PSK digest), SHA-384;
    # the host is added again with that key.
    step "TLS: the host's PSK in Lamina replaced by a SHA-384 one"
    lamina_rpc nvmf_subsystem_remove_host "{\"nqn\":\"$TLS_NQN\",\"host\":\"$TLS_HOST\"}"
    lamina_rpc nvmf_subsystem_add_host "{\"nqn\":\"$TLS_NQN\",\"host\":\"$TLS_HOST\",\"psk\":\"tls1\"}"
    clear_psks
    PSK=$psk_v1
    insert_psk 1
    tls_connect "identity version 1, SHA-384 PSK"
    tls_io tls-v1 4
    disconnect_target

    # d. Header and data digests inside TLS; then lamina killed under fio and restarted: the
    # TLS port and the host's PSK come back from the saved configuration, and the host
    # reconnects by itself, through a new TLS handshake on every queue.
    tls_connect "identity version 1, SHA-384 PSK, header and data digests" -g -G
    tls_io tls-digests 8
    check_reconnect KILL
    disconnect_target

    # e2. Another PSK than Lamina's for this host: with identity version 1 the digest in the
    # identity differs too.
    clear_psks
    gen_psk 2
    insert_psk 1
    tls_refused "a host whose SHA-384 PSK differs from Lamina's (identity version 1)" --tls

    # f. What discovery says about the TLS port (Lamina reports it in the clear port's log).
    step "TLS: discovery on $TARGET_ADDR:$TARGET_PORT reports the TLS listener"
    run nvme discover -t tcp -a "$TARGET_ADDR" -s "$TARGET_PORT" --hostnqn="$TLS_HOST"
    entry=$(echo "$OUT" | awk -v nqn="$TLS_NQN" -v port="$TLS_PORT" '
        /^=====Discovery Log Entry/ { if (n && p) exit; rec = ""; n = 0; p = 0 }
        { rec = rec $0 "\n" }
        /^subnqn:/ && $2 == nqn { n = 1 }
        /^trsvcid:/ && $2 == port { p = 1 }
        END { if (n && p) printf "%s", rec }')
    [ -n "$entry" ] || fail "no discovery log entry for $TLS_NQN on port $TLS_PORT"
    expect "entry trtype" "$(field trtype "$entry")" tcp
    expect "entry traddr" "$(field traddr "$entry")" "$TARGET_ADDR"
    expect "entry sectype" "$(field sectype "$entry")" tls13
    treq=$(field treq "$entry")
    case "$treq" in
    required*) echo "ok: entry treq = $treq" ;;
    *) fail "entry treq is '$treq', expected 'required, ...'" ;;
    esac
    run nvme discover -t tcp -a "$TARGET_ADDR" -s "$TARGET_PORT" --hostnqn="$TLS_HOST" -o json
    echo "$OUT" | grep -q '"sectype":"tls13"' || fail "nvme discover -o json shows no sectype tls13"
    echo "ok: nvme discover -o json shows sectype tls13"

    step "TLS: clean up (the guest's PSKs, the subsystem)"
    clear_psks
    echo "ok: no PSK of $TLS_HOST for $TLS_NQN left in the .nvme keyring"
    lamina_rpc nvmf_delete_subsystem "{\"nqn\":\"$TLS_NQN\"}"
    if [ -n "$TLSHD_PID" ]; then
        kill "$TLSHD_PID" 2>/dev/null
        wait "$TLSHD_PID" 2>/dev/null
    fi

    TARGET_NQN=$saved_nqn CTRL=$saved_ctrl DEV=$saved_dev
}
