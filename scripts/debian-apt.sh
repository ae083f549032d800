# shellcheck shell=bash
# Sourced by the scripts that fetch Debian binary packages into .tools/
# (install-pahole.sh, install-registry.sh): an apt-get that reads only a
# private configuration in WORK, for one Debian suite and architecture, from
# its signed index (checked with debian-archive-keyring), and none of the
# machine's sources, pins or package state.
#
#   debian_apt WORK SUITE ARCH   # sets the array APT and runs `apt-get update`
debian_apt() {
    local work="$1" suite="$2" arch="$3"
    local mirror="${BTFHUB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts"
    echo "deb [signed-by=$keyring] $mirror $suite main" >"$work/sources.list"
    : >"$work/status"
    APT=(apt-get -q
         -o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts="$work/parts"
         -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts="$work/parts"
         -o Dir::State::Lists="$work/lists" -o Dir::State::status="$work/status"
         -o Dir::Cache="$work/cache" -o APT::Architectures="$arch" -o Acquire::Languages=none
         -o APT::Sandbox::User=root)
    "${APT[@]}" update >"$work/update.log" 2>&1 || { cat "$work/update.log" >&2; return 1; }
}
