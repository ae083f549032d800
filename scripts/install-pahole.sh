#!/usr/bin/env bash
# Installs the pahole btfhub encodes with into .tools/pahole-1.30/ (the one
# generator/btf/encode.py looks for): Debian 13's pahole 1.30, whose threaded
# encoding is reproducible (from 1.29 on, -j gives the same bytes for any
# number of threads), so builds can use every core. Debian 12 ships 1.24,
# whose -j output differs run to run (bench/README.md, "pahole -j").
#
# Debian 13's binary packages, not a build from source: these machines reach
# Debian's binary packages but not dwarves' source tarballs. The binaries need
# Debian 13's C library, so the C library and pahole's other libraries come
# from Debian 13 too, into the same prefix, and the pahole binary is pointed
# at them (patchelf: its ELF interpreter and RPATH), so nothing of the
# system's is used or touched; Debian's own dwarves stays installed.
#
# apt fetches them from a private configuration (Debian 13's signed index,
# checked with debian-archive-keyring), and the pahole package must also
# match the SHA-256 pinned here. Idempotent: nothing is fetched when the
# prefix already holds this pahole and it runs.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=1.30
DEB_VERSION=1.30-1
SUITE=trixie
# pahole_1.30-1_<arch>.deb as Debian 13's signed Packages indexes list them.
declare -A PAHOLE_SHA256=(
    [amd64]=08b8b559ab1707dc146880d329f1e96f011788a18d6d3dc7159accd488ae2712
    [arm64]=0363d28e3153746e08f18de2b916f292937e292f0abf0cd1cf67a10a8884ec1b
)
# pahole's run-time closure in Debian 13 (its Depends, and theirs).
LIBRARIES=(libc6 libgcc-s1 libbpf1 libdw1t64 libelf1t64 zlib1g liblzma5 libzstd1 libbz2-1.0)
MIRROR="${BTFHUB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

PREFIX="$PWD/.tools/pahole-$VERSION"
ARCH="$(dpkg --print-architecture)"
SHA256="${PAHOLE_SHA256[$ARCH]:-}"
if [ -z "$SHA256" ]; then
    echo "install-pahole: no pinned pahole $VERSION package for $ARCH" >&2
    exit 1
fi

if [ -x "$PREFIX/bin/pahole" ] && [ "$(cat "$PREFIX/PAHOLE_SHA256" 2>/dev/null)" = "$SHA256" ] \
    && [ "$("$PREFIX/bin/pahole" --version 2>/dev/null)" = "v$VERSION" ]; then
    exit 0
fi

start=$SECONDS
work="$(mktemp -d)"
staging="$PREFIX.new"
trap 'rm -rf "$work" "$staging"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/debs"
echo "deb [signed-by=$KEYRING] $MIRROR $SUITE main" >"$work/sources.list"
: >"$work/status"
# Only this configuration: not the machine's sources, pins or package state.
APT=(apt-get -q
     -o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts="$work/parts"
     -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts="$work/parts"
     -o Dir::State::Lists="$work/lists" -o Dir::State::status="$work/status"
     -o Dir::Cache="$work/cache" -o APT::Architectures="$ARCH" -o Acquire::Languages=none
     -o APT::Sandbox::User=root)
echo "install-pahole: fetching pahole $DEB_VERSION and its libraries from Debian $SUITE"
"${APT[@]}" update >"$work/update.log" 2>&1 || { cat "$work/update.log" >&2; exit 1; }
(cd "$work/debs" && "${APT[@]}" download "pahole=$DEB_VERSION" "${LIBRARIES[@]}" >"$work/download.log" 2>&1) \
    || { cat "$work/download.log" >&2; exit 1; }
deb="$work/debs/pahole_${DEB_VERSION}_$ARCH.deb"
if ! echo "$SHA256  $deb" | sha256sum --check --quiet --status; then
    echo "install-pahole: $(basename "$deb") does not have the pinned SHA-256 $SHA256" >&2
    exit 1
fi

rm -rf "$staging"
mkdir -p "$staging/bin"
for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$staging/root"
    printf '%s %s\n' "$(dpkg-deb -f "$deb" Package)" "$(dpkg-deb -f "$deb" Version)" >>"$staging/PACKAGES"
done
loader="$(find "$staging/root" -name 'ld-linux*.so*' -type f | head -n 1)"
libdir="$(dirname "$loader")"
# The paths pahole will run with: those of the final prefix, not the staging one.
final_libdir="$PREFIX${libdir#"$staging"}"
cp "$staging/root/usr/bin/pahole" "$staging/bin/pahole"
# DT_RPATH (not RUNPATH): it also applies to the libraries' own dependencies.
patchelf --set-interpreter "$final_libdir/$(basename "$loader")" --force-rpath \
    --set-rpath "$final_libdir" "$staging/bin/pahole"
echo "$SHA256" >"$staging/PAHOLE_SHA256"

rm -rf "$PREFIX"
mv "$staging" "$PREFIX"
found="$("$PREFIX/bin/pahole" --version)"
if [ "$found" != "v$VERSION" ]; then
    echo "install-pahole: $PREFIX/bin/pahole says $found, not v$VERSION" >&2
    rm -rf "$PREFIX"
    exit 1
fi
# Every library it loads must be one of the prefix's.
if "$final_libdir/$(basename "$loader")" --list "$PREFIX/bin/pahole" | grep '=>' | grep -v "=> $PREFIX/"; then
    echo "install-pahole: $PREFIX/bin/pahole loads a library from outside its prefix" >&2
    rm -rf "$PREFIX"
    exit 1
fi
echo "install-pahole: pahole $VERSION in $PREFIX ($((SECONDS - start)) s)"
