#!/usr/bin/env bash
# Installs the OCI registry the tests push archive files to into
# .tools/docker-registry-2.8.2/bin/docker-registry: Debian 12's
# docker-registry package (CNCF distribution, the reference registry), its
# binary only. Not `apt-get install`: the package's maintainer scripts add a
# system user and start a registry service on :5000 that would outlive every
# test; the tests start their own on 127.0.0.1 with a config in a temporary
# directory (tests/kit/registry.py) and stop it at teardown.
#
# The package comes from Debian 12's signed index (scripts/debian-apt.sh)
# and must match the SHA-256 pinned here. Debian 12's build rather than 13's:
# it needs only the C library (>= 2.34), which Debian 12 and Ubuntu 22.04 on
# have. Idempotent: nothing is fetched when the binary is there and runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/debian-apt.sh
source scripts/debian-apt.sh

VERSION=2.8.2
DEB_VERSION=2.8.2+ds1-1
SUITE=bookworm
# docker-registry_2.8.2+ds1-1_<arch>.deb as Debian 12's signed Packages indexes list them.
declare -A SHA256=(
    [amd64]=a9bd06c0e006854608f8469b4371743f40604ad90975532bb3b7ceeb72fe2913
    [arm64]=652d4e3fe828ccf9b80962dce13f813fb969f1d5e1dae7d7ceff79ec9a5ed651
)
PREFIX="$PWD/.tools/docker-registry-$VERSION"
ARCH="$(dpkg --print-architecture)"
PIN="${SHA256[$ARCH]:-}"
if [ -z "$PIN" ]; then
    echo "install-registry: no pinned docker-registry $DEB_VERSION package for $ARCH" >&2
    exit 1
fi
says() { "$PREFIX/bin/docker-registry" --version 2>/dev/null; }
if [ "$(cat "$PREFIX/SHA256" 2>/dev/null)" = "$PIN" ] && [[ "$(says)" == *" $VERSION"* ]]; then
    exit 0
fi

work="$(mktemp -d)"
staging="$PREFIX.new"
trap 'rm -rf "$work" "$staging"' EXIT
mkdir -p "$work/debs"
echo "install-registry: fetching docker-registry $DEB_VERSION from Debian $SUITE"
debian_apt "$work" "$SUITE" "$ARCH"
(cd "$work/debs" && "${APT[@]}" download "docker-registry=$DEB_VERSION" \
    >"$work/download.log" 2>&1) || { cat "$work/download.log" >&2; exit 1; }
deb="$work/debs/docker-registry_${DEB_VERSION}_$ARCH.deb"
if ! echo "$PIN  $deb" | sha256sum --check --quiet --status; then
    echo "install-registry: $(basename "$deb") does not have the pinned SHA-256 $PIN" >&2
    exit 1
fi
rm -rf "$staging"
mkdir -p "$staging/bin"
dpkg-deb -x "$deb" "$work/root"
cp "$work/root/usr/bin/docker-registry" "$staging/bin/docker-registry"
echo "$PIN" >"$staging/SHA256"
rm -rf "$PREFIX"
mv "$staging" "$PREFIX"
if [[ "$(says)" != *" $VERSION"* ]]; then
    echo "install-registry: $PREFIX/bin/docker-registry says '$(says)', not $VERSION" >&2
    rm -rf "$PREFIX"
    exit 1
fi
echo "install-registry: docker-registry $VERSION in $PREFIX"
