# shellcheck shell=sh
# DH-HMAC-CHAP with the Linux host (sourced by lamina.sh after checks.sh and lamina-ctl.sh):
# a second subsystem whose one allowed host has a host key and a controller key in Lamina's
# keyring. The kernel's host must be refused without a key, with a wrong key, and when it
# expects another controller key; it must authenticate both ways (Lamina picks the strongest
# the host offers: SHA-512 and ffdhe8192) and do I/O; and after the key is rotated over RPC
# (nvmf_subsystem_set_keys) and in the host's sysfs, the live controller re-authenticates on
# its own and keeps working, while the old key no longer gets in.
# Needs a kernel with NVMe in-band authentication: Debian 13's 6.12 has it, Debian 12's 6.1
# does not (CONFIG_NVME_AUTH unset), where the check says so and is skipped.

AUTH_NQN=nqn.2026-11.io.lamina:auth

# gen_key HMAC NQN [LENGTH]: a new DHHC-1 secret from nvme-cli, in $KEY.
gen_key() {
    run nvme gen-dhchap-key --hmac="$1" --nqn="$2" ${3:+--key-length="$3"}
    KEY=$(echo "$OUT" | grep -o 'DHHC-1:[0-9][0-9]:[A-Za-z0-9+/=]*:' | head -n 1)
    [ -n "$KEY" ] || fail "nvme gen-dhchap-key printed no DHHC-1 key"
}

# add_key NAME: writes $KEY to a file only its owner can read and adds it to Lamina's keyring.
add_key() {
    (umask 077 && printf '%s\n' "$KEY" >"$AUTH_KEYS/$1")
    lamina_rpc keyring_file_add_key "{\"name\":\"$1\",\"path\":\"$AUTH_KEYS/$1\"}"
}

# auth_controller: the live controller of AUTH_NQN, if any.
auth_controller() {
    for c in /sys/class/nvme/nvme*; do
        [ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$AUTH_NQN" ] && echo "${c##*/}"
    done
    return 0
}

# refused LABEL [nvme connect options...]: the connect must fail and leave no controller.
refused() {
    label=$1
    shift
    echo "+ nvme connect -n $AUTH_NQN ($label) $*"
    out=$(timeout -k 10 "$CMD_TIMEOUT" nvme connect -t tcp -a "$TARGET_ADDR" -s "$TARGET_PORT" \
        -n "$AUTH_NQN" --hostnqn="$AUTH_HOST" "$@" 2>&1)
    rc=$?
    echo "$out"
    [ "$rc" -ne 0 ] || fail "nvme connect ($label) succeeded; it must be refused"
    sleep 1
    [ -z "$(auth_controller)" ] || fail "a controller of $AUTH_NQN exists after the refused connect ($label)"
    echo "ok: refused ($label), exit status $rc"
}

# auth_connect LABEL [nvme connect options...]: connects as the listed host; sets CTRL and DEV.
auth_connect() {
    label=$1
    shift
    connect_target "DH-HMAC-CHAP: $label" --hostnqn="$AUTH_HOST" "$@"
}

# qpairs_auth: every queue of AUTH_NQN as Lamina reports its authentication.
qpairs_auth() {
    lamina_rpc nvmf_subsystem_get_qpairs "{\"nqn\":\"$AUTH_NQN\"}"
    QPAIRS=$(echo "$OUT" | tr -d ' \n')
}

check_dhchap() {
    step "DH-HMAC-CHAP: does this kernel's host authenticate?"
    modprobe nvme-auth 2>/dev/null
    if [ ! -d /sys/module/nvme_auth ]; then
        echo "skip: kernel $(uname -r) has no NVMe in-band authentication (CONFIG_NVME_AUTH)"
        return 0
    fi
    echo "ok: kernel $(uname -r) has nvme_auth"
    saved_nqn=$TARGET_NQN saved_ctrl=$CTRL saved_dev=$DEV
    AUTH_HOST=$(cat "/sys/class/nvme/$CTRL/hostnqn")
    AUTH_KEYS=/tmp/lamina-keys
    mkdir -p "$AUTH_KEYS"
    chmod 700 "$AUTH_KEYS"

    step "DH-HMAC-CHAP: keys from nvme gen-dhchap-key in Lamina's keyring; a subsystem that requires them"
    gen_key 1 "$AUTH_HOST"
    host_key=$KEY
    add_key host0
    gen_key 2 "$AUTH_NQN"
    ctrl_key=$KEY
    add_key ctrl0
    gen_key 0 "$AUTH_HOST" 64
    new_key=$KEY
    add_key host1
    gen_key 3 "$AUTH_NQN"
    other_key=$KEY
    lamina_rpc bdev_lvol_create '{"lvs_name":"lvs0","lvol_name":"authvol","size_in_mib":16,"thin_provision":true}'
    lamina_rpc nvmf_create_subsystem "{\"nqn\":\"$AUTH_NQN\",\"allow_any_host\":false}"
    lamina_rpc nvmf_subsystem_add_ns "{\"nqn\":\"$AUTH_NQN\",\"namespace\":{\"bdev_name\":\"lvs0/authvol\",\"nsid\":1}}"
    lamina_rpc nvmf_subsystem_add_listener "{\"nqn\":\"$AUTH_NQN\",\"listen_address\":{\"trtype\":\"tcp\",\"adrfam\":\"ipv4\",\"traddr\":\"$TARGET_ADDR\",\"trsvcid\":\"$TARGET_PORT\"}}"
    lamina_rpc nvmf_subsystem_add_host "{\"nqn\":\"$AUTH_NQN\",\"host\":\"$AUTH_HOST\",\"dhchap_key\":\"host0\",\"dhchap_ctrlr_key\":\"ctrl0\"}"
    TARGET_NQN=$AUTH_NQN

    step "DH-HMAC-CHAP: a host without the key, with a wrong key, or expecting another controller key is refused"
    refused "no key"
    refused "wrong host key" --dhchap-secret="$new_key"
    refused "wrong controller key" --dhchap-secret="$host_key" --dhchap-ctrl-secret="$other_key"
    n=$(grep -c "DH-HMAC-CHAP: authentication failed" "$LAMINA_LOG")
    [ "$n" -ge 2 ] || fail "Lamina logged $n authentication failures, expected at least 2"
    echo "ok: Lamina logged $n authentication failures"

    auth_connect "bidirectional: host and controller keys" \
        --dhchap-secret="$host_key" --dhchap-ctrl-secret="$ctrl_key"
    qpairs_auth
    case "$QPAIRS" in
    *'"auth":{"dhgroup":"ffdhe8192","digest":"sha512","state":"completed"}'*) ;;
    *) fail "nvmf_subsystem_get_qpairs does not show sha512/ffdhe8192 completed: $QPAIRS" ;;
    esac
    case "$QPAIRS" in *'"state":"negotiate"'* | *'"state":"failure1"'* | *'"state":"error"'*)
        fail "a queue is not authenticated: $QPAIRS" ;;
    esac
    echo "ok: every queue authenticated with SHA-512 and ffdhe8192"
    write_check "authenticated" 2 0 "$MIB" oflag=direct iflag=direct
    cntlid=$(cat "/sys/class/nvme/$CTRL/cntlid")

    step "DH-HMAC-CHAP: the host key rotated (nvmf_subsystem_set_keys, then the host's sysfs) re-authenticates the live controller"
    lamina_rpc nvmf_subsystem_set_keys "{\"nqn\":\"$AUTH_NQN\",\"host\":\"$AUTH_HOST\",\"dhchap_key\":\"host1\",\"dhchap_ctrlr_key\":\"ctrl0\"}"
    before=$(grep -c "reauthentication=true" "$LAMINA_LOG")
    echo "$new_key" >"/sys/class/nvme/$CTRL/dhchap_secret" ||
        fail "writing the new key to /sys/class/nvme/$CTRL/dhchap_secret failed"
    i=0
    until [ "$(grep -c "reauthentication=true" "$LAMINA_LOG")" -gt "$before" ]; do
        [ "$i" -lt 30 ] || fail "Lamina saw no re-authentication 30s after the host's key changed"
        sleep 1
        i=$((i + 1))
    done
    sleep 2
    expect "state of $CTRL" "$(cat "/sys/class/nvme/$CTRL/state")" live
    expect "controller ID of $CTRL" "$(cat "/sys/class/nvme/$CTRL/cntlid")" "$cntlid"
    write_check "re-authenticated" 2 4 "$MIB" oflag=direct iflag=direct
    run nvme disconnect -n "$AUTH_NQN"

    step "DH-HMAC-CHAP: after the rotation the old key is refused and the new one gets in"
    refused "the rotated-out key" --dhchap-secret="$host_key"
    auth_connect "unidirectional, the new key" --dhchap-secret="$new_key"
    write_check "new key" 2 8 "$MIB" oflag=direct iflag=direct
    run nvme disconnect -n "$AUTH_NQN"
    lamina_rpc nvmf_delete_subsystem "{\"nqn\":\"$AUTH_NQN\"}"

    TARGET_NQN=$saved_nqn CTRL=$saved_ctrl DEV=$saved_dev
}
