# shellcheck shell=bash
# A private apt configuration for one Debian suite, sourced by build-base.sh: the guest's
# packages (bookworm's or trixie's) are resolved and downloaded with their own sources list,
# lists, cache and an empty dpkg status, so that adding the trixie suite never touches the
# host's bookworm packages, its apt lists or its pinning. The archive and security mirrors are
# the ones the host already uses for its own release (read through `apt-get indextargets`), so
# whatever proxy or mirror the host is set up with serves the guest's packages too.
#
# Environment: LAMINA_VM_MIRROR, LAMINA_VM_SECURITY_MIRROR override the mirrors taken from the
# host's sources (the security one may be "none").

VM_APT_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
VM_APT_OPTS=()
VM_APT_SOURCES=""

# Prints the URI the host's apt sources use for release $1 (e.g. bookworm-security), if any.
host_site_for() {
    # shellcheck disable=SC2016 # apt's own $(FIELD) placeholders
    apt-get indextargets --format '$(SITE) $(RELEASE)' 'Identifier: Packages' 2>/dev/null |
        awk -v rel="$1" '$2 == rel { print $1; exit }'
}

# Writes the suite's sources list into $1/sources.list and sets VM_APT_OPTS to use only it.
vm_apt_setup() {
    local dir="$1" suite="$2" codename site security
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    site="${LAMINA_VM_MIRROR:-$(host_site_for "$codename")}"
    security="${LAMINA_VM_SECURITY_MIRROR:-$(host_site_for "$codename-security")}"
    [[ -n $site ]] || vm_die "no Debian archive for '$codename' in the host's apt sources;" \
        "set LAMINA_VM_MIRROR to a Debian mirror URI"
    [[ -r $VM_APT_KEYRING ]] || vm_die "no $VM_APT_KEYRING (apt-get install debian-archive-keyring)"
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/sources.list.d" "$dir/preferences.d"
    : >"$dir/status"
    : >"$dir/preferences"
    VM_APT_SOURCES="$dir/sources.list"
    {
        printf 'deb [signed-by=%s] %s %s main\n' "$VM_APT_KEYRING" "$site" "$suite"
        printf 'deb [signed-by=%s] %s %s-updates main\n' "$VM_APT_KEYRING" "$site" "$suite"
        if [[ -n $security && $security != none ]]; then
            printf 'deb [signed-by=%s] %s %s-security main\n' "$VM_APT_KEYRING" "$security" "$suite"
        fi
    } >"$VM_APT_SOURCES"
    VM_APT_OPTS=(
        -o "Dir::Etc::SourceList=$VM_APT_SOURCES" -o "Dir::Etc::SourceParts=$dir/sources.list.d"
        -o "Dir::Etc::Preferences=$dir/preferences" -o "Dir::Etc::PreferencesParts=$dir/preferences.d"
        -o "Dir::State::Lists=$dir/lists" -o "Dir::State::Status=$dir/status"
        -o "Dir::Cache=$dir/cache" -o "APT::Architecture=amd64" -o "APT::Architectures=amd64"
        -o "APT::Sandbox::User=root" -o "Acquire::Languages=none"
    )
}

vm_apt_cache() { apt-cache "${VM_APT_OPTS[@]}" "$@"; }
vm_apt_get() { apt-get "${VM_APT_OPTS[@]}" "$@"; }

# Fetches the suite's package lists (twice at most: a mirror may be mid-sync).
vm_apt_refresh() {
    local try
    for try in 1 2; do
        vm_log "apt-get update ($(awk '{ print $4 }' "$VM_APT_SOURCES" | paste -sd' '))"
        vm_apt_get -qq -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false" update >&2 &&
            return 0
        ((try == 1)) && sleep 5
    done
    vm_die "apt-get update of the guest's suite failed"
}
