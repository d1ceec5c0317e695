#!/usr/bin/env bash
# deploy/test/image_bases.sh: makes the two base images deploy/Dockerfile's FROM lines name,
# locally, for deploy/test/image.sh (which sources this file; it runs nothing by itself):
#   - docker.io/library/debian:bookworm-slim from a `debootstrap --variant=minbase` rootfs of the
#     Debian mirror this machine's apt uses, trimmed like the official slim image;
#   - docker.io/library/rust:X.Y-bookworm from that image plus gcc, libc6-dev, ca-certificates, the
#     host's extra CA certificates and the host's Rust X.Y toolchain in the official image's layout.
# Both are cached in image.sh's buildah store and rebuilt only when their inputs change (recipe,
# rootfs, toolchain, CA certificates). Uses image.sh's globals (CACHE, SUITE, RECIPE,
# BASE_MAX_AGE_DAYS, RUST_IMAGE, RUNTIME_IMAGE, RUST_VERSION) and helpers (bah, bah_run, log, die).

# Prints "URI SUITES" for every enabled deb source of this machine's apt, one per line.
apt_sources() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r $f ]] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
        {
            types = ""; uris = ""; suites = ""; enabled = "yes"
            for (i = 1; i <= NF; i++) {
                if ($i ~ /^Types:/)   { sub(/^Types:[ \t]*/, "", $i); types = $i }
                if ($i ~ /^URIs:/)    { sub(/^URIs:[ \t]*/, "", $i); uris = $i }
                if ($i ~ /^Suites:/)  { sub(/^Suites:[ \t]*/, "", $i); suites = $i }
                if ($i ~ /^Enabled:/) { sub(/^Enabled:[ \t]*/, "", $i); enabled = $i }
            }
            if (types ~ /(^| )deb( |$)/ && enabled != "no") {
                n = split(uris, u, /[ \t]+/)
                for (j = 1; j <= n; j++) print u[j], suites
            }
        }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r $f ]] || continue
        # deb [options] URI SUITE COMPONENTS...
        sed -E -n 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+).*/\2 \3/p' "$f"
    done
}

# Sets MIRROR and SECURITY_MIRROR from LAMINA_DEBIAN_MIRROR or this machine's apt sources.
detect_mirrors() {
    local uri suites main="" security=""
    while read -r uri suites; do
        [[ $uri == http*://* ]] || continue
        if [[ " $suites " == *" $SUITE-security "* || $suites == "$SUITE/updates"* ]]; then
            [[ -n $security ]] || security=${uri%/}
        elif [[ " $suites " == *" $SUITE "* ]]; then
            [[ -n $main ]] || main=${uri%/}
        fi
    done < <(apt_sources)
    MIRROR=${LAMINA_DEBIAN_MIRROR:-${main:-http://deb.debian.org/debian}}
    MIRROR=${MIRROR%/}
    SECURITY_MIRROR=${security:-${MIRROR%/debian}/debian-security}
    log "Debian mirror: $MIRROR (security: $SECURITY_MIRROR)"
}

# ---------------------------------------------------------------------------------------------
# Base image: docker.io/library/debian:bookworm-slim
# ---------------------------------------------------------------------------------------------

# Trims a minbase rootfs the way the official slim image is trimmed, and gives it the apt
# configuration of the official image (deb822 sources with updates and security, no caches).
slim_rootfs() {
    local root=$1
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
# Like the official slim image: no docs, man pages, info or translations (copyright files stay).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$root"/usr/share/{man,groff,info,lintian,linda}/*
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    printf 'Acquire::Languages "none";\n' >"$root/etc/apt/apt.conf.d/docker-no-languages"
    printf 'APT::AutoRemove::SuggestsImportant "false";\n' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/*
    rm -rf "$root"/var/log/* "$root"/tmp/* "$root"/var/tmp/*
    # The container engine provides these per container.
    rm -f "$root/etc/hostname" "$root/etc/resolv.conf"
    : >"$root/etc/machine-id"
}

# Makes (or reuses) $CACHE/rootfs/$SUITE-minbase.tar; sets ROOTFS_TAR and ROOTFS_SHA.
make_rootfs() {
    local dir=$CACHE/rootfs arch tar meta tmp
    arch=$(dpkg --print-architecture)
    tar=$dir/$SUITE-minbase-$arch.tar
    meta=$tar.meta
    mkdir -p "$dir"
    if [[ -s $tar && -s $meta ]] && grep -qx "recipe=$RECIPE mirror=$MIRROR" "$meta" &&
        [[ -z $(find "$tar" -mtime +"$BASE_MAX_AGE_DAYS") ]]; then
        log "rootfs: cached $tar"
    else
        log "rootfs: debootstrap --variant=minbase $SUITE from $MIRROR"
        tmp=$(mktemp -d "$dir/debootstrap.XXXXXX")
        debootstrap --variant=minbase --arch="$arch" "$SUITE" "$tmp/root" "$MIRROR" >"$tmp/log" 2>&1 || {
            tail -n 30 "$tmp/log" >&2
            rm -rf "$tmp"
            die "debootstrap failed"
        }
        slim_rootfs "$tmp/root"
        tar --numeric-owner --xattrs -C "$tmp/root" -cf "$tmp/rootfs.tar" .
        mv "$tmp/rootfs.tar" "$tar"
        printf 'recipe=%s mirror=%s\n' "$RECIPE" "$MIRROR" >"$meta"
        sha256sum "$tar" | cut -d' ' -f1 >>"$meta"
        rm -rf "$tmp"
    fi
    ROOTFS_TAR=$tar
    ROOTFS_SHA=$(tail -n 1 "$meta")
}

# The recipe key of each cached base image lives beside the image, in $CACHE/keys, with the image
# ID it was made as: a label would leak into every image built FROM it.
key_file() { echo "$CACHE/keys/${1//[\/:]/_}"; }

# is_cached IMAGE KEY: the local IMAGE was made from KEY and is still in the store.
is_cached() {
    local file id
    file=$(key_file "$1")
    [[ -f $file ]] || return 1
    id=$(bah inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null) || return 1
    [[ $(cat "$file") == "$2 $id" ]]
}

# remember IMAGE KEY: records that the local IMAGE was made from KEY.
remember() {
    mkdir -p "$CACHE/keys"
    echo "$2 $(bah inspect --type image --format '{{.FromImageID}}' "$1")" >"$(key_file "$1")"
}

# commit_replacing CONTAINER IMAGE: commits and removes the image IMAGE pointed to before, so
# rebuilt base images do not pile up in the cache.
commit_replacing() {
    local ctr=$1 image=$2 old
    old=$(bah inspect --type image --format '{{.FromImageID}}' "$image" 2>/dev/null || true)
    bah commit --quiet --rm "$ctr" "$image" >/dev/null
    if [[ -n $old ]]; then
        bah rmi "$old" >/dev/null 2>&1 || true
    fi
}

make_runtime_base() {
    local key="recipe-$RECIPE-rootfs-${ROOTFS_SHA:0:16}" ctr
    if is_cached "$RUNTIME_IMAGE" "$key"; then
        log "$RUNTIME_IMAGE: cached ($key)"
        return 0
    fi
    log "$RUNTIME_IMAGE: importing the rootfs"
    ctr=$(bah from scratch)
    bah add --quiet "$ctr" "$ROOTFS_TAR" / >/dev/null
    bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd bash --os linux --arch "$(dpkg --print-architecture)" "$ctr"
    commit_replacing "$ctr" "$RUNTIME_IMAGE"
    remember "$RUNTIME_IMAGE" "$key"
}

# ---------------------------------------------------------------------------------------------
# Builder image: docker.io/library/rust:X.Y-bookworm
# ---------------------------------------------------------------------------------------------

# Sets HOST_TOOLCHAIN to a host rustup toolchain dir whose rustc is $RUST_VERSION, and
# HOST_RUSTUP to the rustup binary.
find_host_toolchain() {
    local rustup_home=${RUSTUP_HOME:-$HOME/.rustup} cargo_home=${CARGO_HOME:-$HOME/.cargo} dir version
    HOST_TOOLCHAIN=""
    for dir in "$rustup_home"/toolchains/*; do
        dir=$(readlink -f "$dir")
        [[ -x $dir/bin/rustc && -x $dir/bin/cargo ]] || continue
        version=$("$dir/bin/rustc" --version 2>/dev/null) || continue
        # Stable releases only: "rustc 1.95.0 (hash date)", never a nightly or beta.
        if [[ $version =~ ^rustc\ ${RUST_VERSION//./\\.}(\.[0-9]+)?\ \( ]]; then
            HOST_TOOLCHAIN=$dir
            break
        fi
    done
    [[ -n $HOST_TOOLCHAIN ]] ||
        die "no host rustup toolchain with Rust $RUST_VERSION under $rustup_home/toolchains (the builder image is made from it)"
    HOST_RUSTUP=$cargo_home/bin/rustup
    [[ -x $HOST_RUSTUP ]] || HOST_RUSTUP=$(command -v rustup) || die "rustup not found"
    HOST_RUSTC_VERSION=$("$HOST_TOOLCHAIN/bin/rustc" --version)
    log "host toolchain: $HOST_TOOLCHAIN ($HOST_RUSTC_VERSION)"
}

# Prints the extra CA certificates this host trusts (added by its administrator).
host_extra_cas() {
    find /usr/local/share/ca-certificates -type f -name '*.crt' 2>/dev/null | sort
}

builder_key() {
    local base_id cas
    base_id=$(bah inspect --type image --format '{{.FromImageID}}' "$RUNTIME_IMAGE")
    cas=$(host_extra_cas | xargs -r cat | sha256sum | cut -c1-16)
    printf 'recipe-%s-base-%s-rust-%s-ca-%s' "$RECIPE" "${base_id:0:12}" \
        "$(printf '%s' "$HOST_RUSTC_VERSION" | sha256sum | cut -c1-12)" "$cas"
}

# Installs the host toolchain into a mounted builder rootfs in the official image's layout:
# RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo, rustup proxies in its bin/.
install_toolchain() {
    local mnt=$1 name triple part
    triple=$("$HOST_TOOLCHAIN/bin/rustc" -vV | sed -n 's/^host: //p')
    name=$(sed -n -E 's/^rustc ([0-9.]+) .*/\1/p' <<<"$HOST_RUSTC_VERSION")-$triple
    mkdir -p "$mnt/usr/local/rustup/toolchains/$name" "$mnt/usr/local/cargo/bin"
    # Everything but share/ (docs and man pages, ~800 MB nobody reads in a builder).
    for part in bin lib libexec etc; do
        [[ -e $HOST_TOOLCHAIN/$part ]] || continue
        cp -a "$HOST_TOOLCHAIN/$part" "$mnt/usr/local/rustup/toolchains/$name/"
    done
    install -m 0755 "$HOST_RUSTUP" "$mnt/usr/local/cargo/bin/rustup"
    for part in cargo cargo-clippy cargo-fmt clippy-driver rustc rustdoc rustfmt rust-gdb rust-lldb; do
        ln -sf rustup "$mnt/usr/local/cargo/bin/$part"
    done
    cat >"$mnt/usr/local/rustup/settings.toml" <<EOF
version = "12"
default_toolchain = "$name"
profile = "minimal"
auto_self_update = "disable"

[overrides]
EOF
    BUILDER_RUST_VERSION=${name%%-*}
}

make_builder() {
    local key ctr mnt ca
    key=$(builder_key)
    if is_cached "$RUST_IMAGE" "$key"; then
        log "$RUST_IMAGE: cached ($key)"
        return 0
    fi
    log "$RUST_IMAGE: $RUNTIME_IMAGE + gcc, libc6-dev, libssl-dev, pkg-config, ca-certificates + host Rust toolchain"
    ctr=$(bah from --pull=never "$RUNTIME_IMAGE")
    bah_run --isolation chroot "$ctr" -- sh -c \
        'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq &&
         apt-get install -y -qq --no-install-recommends gcc libc6-dev libssl-dev pkg-config \
             ca-certificates >/dev/null &&
         rm -rf /var/lib/apt/lists/*'
    mnt=$(bah mount "$ctr")
    while read -r ca; do
        [[ -n $ca ]] || continue
        install -D -m 0644 "$ca" "$mnt/usr/local/share/ca-certificates/host/$(basename "$ca")"
    done < <(host_extra_cas)
    install_toolchain "$mnt"
    bah umount "$ctr" >/dev/null
    bah_run --isolation chroot "$ctr" -- update-ca-certificates >/dev/null
    bah config \
        --env RUSTUP_HOME=/usr/local/rustup --env CARGO_HOME=/usr/local/cargo \
        --env PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env RUST_VERSION="$BUILDER_RUST_VERSION" "$ctr"
    bah_run --isolation chroot "$ctr" -- sh -c 'cargo --version && rustc --version && cc --version | head -n 1'
    commit_replacing "$ctr" "$RUST_IMAGE"
    remember "$RUST_IMAGE" "$key"
}
