#!/usr/bin/env bash
# Builds the cached base of the Lamina test VM for one Debian suite: the suite's kernel and a
# base initramfs (busybox, the NVMe/TCP host and target modules, nvme-cli, fio, e2fsprogs and
# their libraries, and guest/init; trixie adds Python with libnvme's bindings, tcpdump, and
# tlshd and keyctl for NVMe/TCP TLS).
# Everything comes from Debian's package registry through `apt-get download` and `dpkg -x`,
# resolved with a private apt configuration per suite (apt.sh), into a cache outside the
# repository:
#   ${LAMINA_VM_CACHE:-$HOME/.cache/lamina-vm}/SUITE/{vmlinuz,base.cpio.gz,base.files,base.info}
# A second run with the cache present and these scripts unchanged returns at once.
#
# Usage: build-base.sh [--suite bookworm|trixie] [--force]
#   --suite   Debian suite of the guest (default $LAMINA_VM_SUITE or bookworm): bookworm has
#             kernel 6.1 and nvme-cli 2.3, trixie kernel 6.12 and nvme-cli 2.13
#   --force   rebuild (and re-resolve package versions) even if the cache is current
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=apt.sh
. "$LAMINA_VM_DIR/apt.sh"

# User-space packages to take binaries from; their shared-library dependencies are walked.
USER_PKGS=(busybox-static nvme-cli fio e2fsprogs)
# Binaries (paths inside the packages) copied into the guest with the libraries they load.
GUEST_BINS=(usr/sbin/nvme usr/bin/fio sbin/mke2fs sbin/e2fsck)
# Aliases of those binaries: name=target, both guest paths.
GUEST_LINKS=(usr/sbin/mkfs.ext4=mke2fs usr/sbin/fsck.ext4=e2fsck)
# Kernel modules shipped (with their dependencies): host side, reference target, test devices.
MODULES=(configfs crc32c_generic crc32c-intel nvme-core nvme-fabrics nvme-tcp
    nvmet nvmet-tcp null_blk loop ext4)
# Loaded by /init at boot ('?' = optional); nvmet, null_blk and loop are left to the tests.
BOOT_MODULES=(configfs crc32c_generic '?crc32c-intel' nvme-tcp ext4)
# Folders copied whole (Python's standard library, libnvme's bindings); the shared objects in
# them get their libraries like GUEST_BINS do.
GUEST_TREES=()
# Files written into the guest: path=content.
GUEST_FILES=()

FORCE=0
SUITE="${LAMINA_VM_SUITE:-bookworm}"
while (($#)); do
    case "$1" in
    --force) FORCE=1; shift ;;
    --suite) (($# >= 2)) || vm_die "--suite needs a value"; SUITE="$2"; shift 2 ;;
    -h | --help)
        vm_usage
        exit 0
        ;;
    *) vm_die "unknown argument: $1" ;;
    esac
done
vm_check_suite "$SUITE"

# The second host implementation (libnvme's Python bindings) and the packet capture need
# trixie: bookworm has no python3-libnvme.
if [[ $SUITE == trixie ]]; then
    USER_PKGS+=(python3.13-minimal libpython3.13-minimal libpython3.13-stdlib python3-libnvme tcpdump)
    GUEST_BINS+=(usr/bin/python3.13 usr/bin/tcpdump)
    GUEST_LINKS+=(usr/bin/python3=python3.13)
    GUEST_TREES+=(usr/lib/python3.13 usr/lib/python3/dist-packages/libnvme)
    # In-band authentication (DH-HMAC-CHAP): 6.12's host library and the crypto it asks for
    # by name at run time (the DH groups, HMAC and the SHA-2 hashes), which no module
    # dependency pulls in. Debian 12's 6.1 has no NVMe authentication at all.
    MODULES+=(nvme-auth dh_generic hmac sha256_generic sha512_generic)
    # NVMe/TCP over TLS 1.3 with a PSK (6.12 has CONFIG_NVME_TCP_TLS and
    # CONFIG_NVME_TARGET_TCP_TLS): the kernel asks user space for the handshake over the
    # netlink "handshake" family, served by tlshd (ktls-utils), then runs the record layer
    # itself (kTLS: the tls module and the AEADs it asks for by name: AES-GCM, and
    # ChaCha20-Poly1305, which gnutls picks for a SHA-384 PSK between two tlshd). keyctl shows
    # and removes the PSKs nvme-cli puts in the kernel's .nvme keyring (nvme-keyring, pulled in
    # by nvme-tcp). Debian 12's 6.1 has no NVMe/TCP TLS.
    USER_PKGS+=(ktls-utils keyutils)
    GUEST_BINS+=(usr/sbin/tlshd usr/bin/keyctl)
    MODULES+=(tls gcm ghash-generic ghash-clmulni-intel aesni-intel
        chacha20poly1305 chacha_generic chacha-x86_64 poly1305_generic poly1305-x86_64)
    # tlshd exits at once without its config; it always links the .nvme keyring into its
    # session keyring, the line below only says so. Debug level 1 logs the PSK identity.
    GUEST_FILES+=("etc/tlshd.conf=[debug]
loglevel=1
tls=0
nl=0

[authenticate]
keyrings=.nvme
")
fi
# virtio-blk carries files back to the host (run.sh --export).
MODULES+=(virtio_pci virtio_blk)

CACHE="$(vm_suite_cache "$SUITE")"
DEBS="$CACHE/debs"
WORK="$CACHE/work"
TREE="$WORK/tree"
ROOT="$WORK/root"

# The base is current when it was built by these exact scripts and lists.
stamp() {
    {
        cat "$LAMINA_VM_DIR/build-base.sh" "$LAMINA_VM_DIR/common.sh" "$LAMINA_VM_DIR/apt.sh" \
            "$LAMINA_VM_DIR/guest/init"
        printf '%s\n' "$SUITE" "${USER_PKGS[@]}" "${GUEST_BINS[@]}" "${MODULES[@]}" \
            "${BOOT_MODULES[@]}" "${GUEST_TREES[@]}" "${GUEST_FILES[@]}"
    } | sha256sum | cut -d' ' -f1
}

base_is_current() {
    [[ -s $CACHE/base.cpio.gz && -s $CACHE/vmlinuz && -s $CACHE/base.files && -s $CACHE/base.stamp ]] &&
        [[ $(cat "$CACHE/base.stamp") == "$(stamp)" ]]
}

# ---------------------------------------------------------------------------------------------
# Package resolution

# Direct Depends/Pre-Depends of the given packages: the first alternative of each or-group and
# the first provider of a virtual package.
direct_deps() {
    vm_apt_cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances "$@" 2>/dev/null | awk '
        /^  \|?(Pre)?Depends: / {
            alt = ($1 ~ /^\|/); name = $2; provider = 0
            if (skip) { skip = alt; next }
            skip = alt
            if (name ~ /^</) { provider = 1; next }
            sub(/:any$/, "", name); print name; next
        }
        /^    [^ ]/ && provider { print $1; provider = 0; next }
        /^[^ ]/ { skip = 0; provider = 0 }'
}

# Of the given packages, those that are shared-library packages (Debian section libs/oldlibs).
# Names alone are not enough: zlib1g is a library package whose name does not start with lib.
library_pkgs() {
    (($# == 0)) && return 0
    vm_apt_cache show --no-all-versions "$@" 2>/dev/null | awk '
        /^Package: / { p = $2 }
        /^Section: / { if ($2 ~ /(^|\/)(old)?libs$/) print p }' | sort -u
}

# All packages to download: USER_PKGS plus the transitive closure of their library deps.
resolve_user_pkgs() {
    local -A seen=()
    local queue=("${USER_PKGS[@]}") fresh cand p d
    while ((${#queue[@]})); do
        fresh=()
        for p in "${queue[@]}"; do
            [[ -n ${seen[$p]:-} ]] && continue
            seen[$p]=1
            fresh+=("$p")
        done
        ((${#fresh[@]})) || break
        cand=()
        while read -r d; do
            [[ -n $d && -z ${seen[$d]:-} ]] && cand+=("$d")
        done < <(direct_deps "${fresh[@]}" | sort -u)
        mapfile -t queue < <(library_pkgs "${cand[@]}")
    done
    printf '%s\n' "${!seen[@]}" | sort
}

# The versioned kernel image package linux-image-amd64 depends on (linux-image-6.1.0-N-amd64).
resolve_kernel_pkg() {
    direct_deps linux-image-amd64 | grep -m1 -E '^linux-image-[0-9]' ||
        vm_die "$SUITE's linux-image-amd64 has no linux-image-<version> dependency"
}

# Prints "package version arch file" for each package, file being apt-get download's name.
pkg_table() {
    vm_apt_cache show --no-all-versions "$@" | awk '
        /^Package: / { p = $2 } /^Version: / { v = $2 } /^Architecture: / { a = $2 }
        /^$/ { if (p != "") { f = v; gsub(/:/, "%3a", f); print p, v, a, p "_" f "_" a ".deb" }; p = "" }
        END { if (p != "") { f = v; gsub(/:/, "%3a", f); print p, v, a, p "_" f "_" a ".deb" } }'
}

# Downloads the packages not already in $DEBS, and prunes versions no longer wanted.
download_pkgs() {
    local table want=() keep=() pkg ver file
    table=$(pkg_table "$@") || vm_die "apt-cache show failed for: $*"
    while read -r pkg ver _ file; do
        keep+=("$file")
        [[ -s $DEBS/$file ]] || want+=("$pkg=$ver")
    done <<<"$table"
    ((${#keep[@]} == $#)) || vm_die "$SUITE has only ${#keep[@]} of the $# packages: $*"
    if ((${#want[@]})); then
        vm_log "downloading ${#want[@]} packages from Debian"
        (cd "$DEBS" && vm_apt_get -qq download "${want[@]}" >&2) ||
            vm_die "apt-get download failed"
    fi
    for file in "${keep[@]}"; do
        [[ -s $DEBS/$file ]] || vm_die "apt-get download did not produce $file"
    done
    local old
    for old in "$DEBS"/*.deb; do
        [[ -e $old ]] || continue
        printf '%s\n' "${keep[@]}" | grep -qxF "$(basename "$old")" || rm -f "$old"
    done
    printf '%s\n' "$table" >"$WORK/packages.txt"
}

# ---------------------------------------------------------------------------------------------
# Filling the guest root (usr-merged: /bin, /sbin, /lib, /lib64 are links into /usr)

guest_path() {
    case "$1" in
    bin/* | sbin/* | lib/* | lib64/*) printf 'usr/%s\n' "$1" ;;
    *) printf '%s\n' "$1" ;;
    esac
}

# Copies TREE-relative file $1 (symlinks followed) to its guest path.
install_from_tree() {
    local dest
    dest="$ROOT/$(guest_path "$1")"
    [[ -e $TREE/$1 ]] || vm_die "packages provide no $1"
    mkdir -p "$(dirname "$dest")"
    cp -L "$TREE/$1" "$dest"
}

make_skeleton() {
    rm -rf "$ROOT"
    mkdir -p "$ROOT"/{dev,proc,sys,tmp,run,root,mnt,test,etc/lamina-vm,usr/bin,usr/sbin,usr/lib64}
    mkdir -p "$ROOT/usr/lib/x86_64-linux-gnu"
    local d
    for d in bin sbin lib lib64; do ln -s "usr/$d" "$ROOT/$d"; done
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ROOT/etc/passwd"
    printf 'root:x:0:\n' >"$ROOT/etc/group"
    install -m 0755 "$LAMINA_VM_DIR/guest/init" "$ROOT/init"
    printf '%s\n' "${BOOT_MODULES[@]}" >"$ROOT/etc/lamina-vm/boot-modules"
    local f
    for f in "${GUEST_FILES[@]}"; do
        mkdir -p "$(dirname "$ROOT/${f%%=*}")"
        printf '%s' "${f#*=}" >"$ROOT/${f%%=*}"
    done
}

# Bookworm's packages install into /bin, /sbin and /lib, trixie's into /usr: the unpacked tree
# is usr-merged like the guest, so that one path names a file in either suite.
merge_tree() {
    local d
    for d in bin sbin lib lib64; do
        [[ -L $TREE/$d ]] && continue
        mkdir -p "$TREE/usr/$d"
        if [[ -d $TREE/$d ]]; then
            cp -a "$TREE/$d/." "$TREE/usr/$d/"
            rm -rf "${TREE:?}/$d"
        fi
        ln -s "usr/$d" "$TREE/$d"
    done
}

# Directories of the unpacked packages holding shared libraries, system ones first.
tree_lib_path() {
    {
        printf '%s\n' "$TREE/usr/lib/x86_64-linux-gnu"
        find "$TREE/usr/lib" -path "$TREE/usr/lib/modules" -prune -o \
            \( -type f -o -type l \) -name 'lib*.so*' -printf '%h\n' | sort -u
    } | awk '!seen[$0]++' | paste -sd:
}

# Prints the absolute paths of the shared objects $2 loads, resolved with the glibc loader of
# root $1 restricted to library path $3; fails if one is missing or resolves outside root $1.
elf_libs() {
    local root="$1" bin="$2" libpath="$3" out line name path
    out=$("$root/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "$libpath" --list "$bin") ||
        vm_die "cannot list the libraries of $bin: $out"
    while IFS= read -r line; do
        case "$line" in
        *'=> not found'*)
            name="${line%% =>*}"
            vm_die "$bin needs ${name//[[:space:]]/}, which no downloaded package provides"
            ;;
        *' => '*)
            name="${line%% =>*}"
            path="${line#*=> }"
            path="${path% (0x*}"
            [[ $path == "$root"/* ]] ||
                vm_die "$bin: ${name//[[:space:]]/} resolved outside the guest tree: $path"
            printf '%s\n' "$path"
            ;;
        esac
    done <<<"$out"
}

# Installs the libraries TREE-relative ELF file $1 loads, resolved in library path $2.
install_libs_of() {
    local libs lib rel
    # A plain assignment, so that a vm_die inside the substitution stops the build.
    libs=$(elf_libs "$TREE" "$TREE/$1" "$2")
    while read -r lib; do
        [[ -n $lib ]] || continue
        rel="${lib#"$TREE"/}"
        [[ -e $ROOT/$(guest_path "$rel") ]] || install_from_tree "$rel"
    done <<<"$libs"
}

# The shared objects (Python extension modules) inside the GUEST_TREES folders, root-relative.
tree_objects() {
    local dir
    for dir in "${GUEST_TREES[@]}"; do
        (cd "$1" && find "$dir" -type f -name '*.so*' | LC_ALL=C sort)
    done
}

install_binaries() {
    local libpath bin link dir so
    libpath=$(tree_lib_path)
    install_from_tree lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
    ln -sf ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$ROOT/usr/lib64/ld-linux-x86-64.so.2"
    for bin in "${GUEST_BINS[@]}"; do
        install_from_tree "$bin"
        install_libs_of "$bin" "$libpath"
    done
    for dir in "${GUEST_TREES[@]}"; do
        [[ -d $TREE/$dir ]] || vm_die "packages provide no folder $dir"
        mkdir -p "$ROOT/$(dirname "$dir")"
        # Bytecode caches, the IDE, Tk and pip's bootstrap are of no use to the tests.
        tar -C "$TREE" -cf - --exclude=__pycache__ --exclude=idlelib --exclude=tkinter \
            --exclude=turtledemo --exclude=ensurepip --exclude='config-3.*' "$dir" | tar -C "$ROOT" -xf -
    done
    while read -r so; do
        [[ -n $so ]] && install_libs_of "$so" "$libpath"
    done < <(tree_objects "$ROOT")
    for link in "${GUEST_LINKS[@]}"; do
        ln -sf "${link#*=}" "$ROOT/${link%%=*}"
    done
    [[ -e $TREE/etc/mke2fs.conf ]] && install_from_tree etc/mke2fs.conf
    return 0
}

# Busybox and a link per applet, except where a real binary is already installed (mke2fs).
install_busybox() {
    local applet dest
    install_from_tree bin/busybox
    while read -r applet; do
        dest="$ROOT/$(guest_path "$applet")"
        [[ -e $dest || -L $dest ]] && continue
        mkdir -p "$(dirname "$dest")"
        ln -s /usr/bin/busybox "$dest"
    done < <("$TREE/bin/busybox" --list-full)
}

install_modules() {
    local kver="$1" kdir="$TREE/lib/modules/$1" mod entry file
    local -A files=()
    depmod -b "$TREE" "$kver"
    for mod in "${MODULES[@]}"; do
        entry=$(grep -m1 -E "(^|/)${mod}\.ko(\.[a-z]+)?:" "$kdir/modules.dep" || true)
        if [[ -z $entry ]]; then
            grep -qE "/${mod}\.ko$" "$kdir/modules.builtin" || vm_die "kernel $kver has no module $mod"
            continue
        fi
        for file in ${entry/:/}; do files[$file]=1; done
    done
    for file in "${!files[@]}"; do install_from_tree "lib/modules/$kver/$file"; done
    for file in modules.builtin modules.builtin.modinfo modules.order; do
        install_from_tree "lib/modules/$kver/$file"
    done
    # Trixie's modules are xz-compressed; busybox's modprobe wants them plain.
    kdir="$ROOT/usr/lib/modules/$kver"
    find "$kdir" -name '*.ko.xz' -exec xz -d {} +
    find "$kdir" -name '*.ko.zst' -exec zstd -q -d --rm {} +
    sed -i -E 's/\.ko\.(xz|zst)$/.ko/' "$kdir/modules.order"
    depmod -b "$ROOT" "$kver"
}

# Every dynamic binary of the guest must load with the guest's own libraries only.
verify_root() {
    local libpath bin out n=0 objs=("${GUEST_BINS[@]}")
    libpath="$ROOT/usr/lib/x86_64-linux-gnu"
    libpath+=$(find "$ROOT/usr/lib/x86_64-linux-gnu" -mindepth 1 -type d -printf ':%p')
    mapfile -t -O "${#objs[@]}" objs < <(tree_objects "$ROOT")
    for bin in "${objs[@]}"; do
        out=$(elf_libs "$ROOT" "$ROOT/$(guest_path "$bin")" "$libpath")
        n=$((n + $(wc -l <<<"$out")))
    done
    vm_log "verified ${#objs[@]} guest binaries and shared objects: $n library loads," \
        "all from the guest's own libraries"
}

pack_base() {
    local kver="$1"
    (cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
        gzip -6 >"$CACHE/base.cpio.gz.tmp"
    (cd "$ROOT" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort) >"$CACHE/base.files.tmp"
    cp "$TREE/boot/vmlinuz-$kver" "$CACHE/vmlinuz.tmp"
    {
        echo "kernel $kver"
        cat "$WORK/packages.txt"
    } >"$CACHE/base.info.tmp"
    local f
    for f in base.cpio.gz base.files vmlinuz base.info; do mv -f "$CACHE/$f.tmp" "$CACHE/$f"; done
    stamp >"$CACHE/base.stamp"
}

build() {
    local kpkg kver pkgs deb
    rm -f "$CACHE/base.stamp"
    rm -rf "$WORK"
    mkdir -p "$DEBS" "$WORK"
    # Fresh lists for every build: the mirror drops superseded versions.
    vm_apt_setup "$CACHE/apt" "$SUITE"
    vm_apt_refresh
    kpkg=$(resolve_kernel_pkg)
    kver="${kpkg#linux-image-}"
    mapfile -t pkgs < <(resolve_user_pkgs)
    vm_log "$SUITE: kernel $kver; ${#pkgs[@]} user-space packages"
    download_pkgs "$kpkg" "${pkgs[@]}"
    vm_log "unpacking packages"
    mkdir -p "$TREE"
    while read -r _ _ _ deb; do dpkg-deb -x "$DEBS/$deb" "$TREE"; done <"$WORK/packages.txt"
    merge_tree
    [[ -s $TREE/boot/vmlinuz-$kver ]] || vm_die "$kpkg has no /boot/vmlinuz-$kver"
    make_skeleton
    install_binaries
    install_busybox
    install_modules "$kver"
    verify_root
    vm_log "packing the base initramfs"
    pack_base "$kver"
    [[ ${LAMINA_VM_KEEP_WORK:-0} == 1 ]] || rm -rf "$WORK"
}

main() {
    vm_ensure_host_tools
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.lock"
    flock 9
    if [[ $FORCE == 0 ]] && base_is_current; then
        vm_log "base image is current: $CACHE ($(head -n1 "$CACHE/base.info"))"
        return 0
    fi
    local t0=$SECONDS
    # The single-suite layout of earlier versions kept one base at the top of the cache.
    rm -rf "${LAMINA_VM_CACHE:?}"/{base.cpio.gz,base.files,base.info,base.stamp,vmlinuz,debs,work}
    build
    local size
    size=$(du -h "$CACHE/base.cpio.gz" | cut -f1)
    vm_log "base image built in $((SECONDS - t0))s: $CACHE/base.cpio.gz ($size), $(head -n1 "$CACHE/base.info")"
}

main
