#!/usr/bin/env bash
# Installs the pahole btfhub encodes with into .tools/pahole-1.30/ (the one
# generator/btf/encode.py looks for): Debian 13's pahole 1.30, whose threaded
# encoding is reproducible (from 1.29 on, -j gives the same bytes for any
# number of threads), so builds can use every core. Debian 12 ships 1.24,
# whose -j output differs run to run (bench/README.md, "pahole -j").
#
# Debian 13's xz (xz-utils 5.8) goes into the same prefix, as bin/xz: it
# decodes a package's data.tar.xz (generator/codecs.py) with about 30% less
# CPU than Debian 12's xz 5.4 (bench/README.md, "xz 5.8"), and it needs
# nothing but the C library and liblzma that pahole already brings.
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
# match the SHA-256 pinned here, and so must the xz-utils package. Idempotent:
# nothing is fetched when the prefix already holds this pahole and this xz
# and both run.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/debian-apt.sh
source scripts/debian-apt.sh

VERSION=1.30
DEB_VERSION=1.30-1
SUITE=trixie
# pahole_1.30-1_<arch>.deb as Debian 13's signed Packages indexes list them.
declare -A PAHOLE_SHA256=(
    [amd64]=08b8b559ab1707dc146880d329f1e96f011788a18d6d3dc7159accd488ae2712
    [arm64]=0363d28e3153746e08f18de2b916f292937e292f0abf0cd1cf67a10a8884ec1b
)
XZ_VERSION=5.8.1
XZ_DEB_VERSION=5.8.1-1+deb13u2
# xz-utils_5.8.1-1+deb13u2_<arch>.deb as Debian 13's signed Packages indexes list them.
declare -A XZ_SHA256=(
    [amd64]=66b060ef2f09722c947ba019da5e9a63f6bac9d7bf90b32339a72c0390acc53f
    [arm64]=d2151cc127dfc9948255ed40c271ff0683d9cf9553933a8b94cb29068ab5e715
)
# pahole's run-time closure in Debian 13 (its Depends, and theirs).
LIBRARIES=(libc6 libgcc-s1 libbpf1 libdw1t64 libelf1t64 zlib1g liblzma5 libzstd1 libbz2-1.0)

PREFIX="$PWD/.tools/pahole-$VERSION"
ARCH="$(dpkg --print-architecture)"
SHA256="${PAHOLE_SHA256[$ARCH]:-}"
XZ_PIN="${XZ_SHA256[$ARCH]:-}"
if [ -z "$SHA256" ] || [ -z "$XZ_PIN" ]; then
    echo "install-pahole: no pinned pahole $VERSION or xz $XZ_VERSION package for $ARCH" >&2
    exit 1
fi

xz_says() { "$1" --version 2>/dev/null | head -n 1; }
if [ -x "$PREFIX/bin/pahole" ] && [ "$(cat "$PREFIX/PAHOLE_SHA256" 2>/dev/null)" = "$SHA256" ] \
    && [ "$("$PREFIX/bin/pahole" --version 2>/dev/null)" = "v$VERSION" ] \
    && [ -x "$PREFIX/bin/xz" ] && [ "$(cat "$PREFIX/XZ_SHA256" 2>/dev/null)" = "$XZ_PIN" ] \
    && [ "$(xz_says "$PREFIX/bin/xz")" = "xz (XZ Utils) $XZ_VERSION" ]; then
    exit 0
fi

start=$SECONDS
work="$(mktemp -d)"
staging="$PREFIX.new"
trap 'rm -rf "$work" "$staging"' EXIT
mkdir -p "$work/debs"
echo "install-pahole: fetching pahole $DEB_VERSION, xz $XZ_DEB_VERSION and their libraries from Debian $SUITE"
debian_apt "$work" "$SUITE" "$ARCH"
(cd "$work/debs" && "${APT[@]}" download "pahole=$DEB_VERSION" "xz-utils=$XZ_DEB_VERSION" \
    "${LIBRARIES[@]}" >"$work/download.log" 2>&1) || { cat "$work/download.log" >&2; exit 1; }
for pin in "pahole_${DEB_VERSION}_$ARCH.deb $SHA256" "xz-utils_${XZ_DEB_VERSION//:/%3a}_$ARCH.deb $XZ_PIN"; do
    deb="$work/debs/${pin% *}"
    if ! echo "${pin#* }  $deb" | sha256sum --check --quiet --status; then
        echo "install-pahole: $(basename "$deb") does not have the pinned SHA-256 ${pin#* }" >&2
        exit 1
    fi
done

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
for tool in pahole xz; do
    cp "$staging/root/usr/bin/$tool" "$staging/bin/$tool"
    # DT_RPATH (not RUNPATH): it also applies to the libraries' own dependencies.
    patchelf --set-interpreter "$final_libdir/$(basename "$loader")" --force-rpath \
        --set-rpath "$final_libdir" "$staging/bin/$tool"
done
echo "$SHA256" >"$staging/PAHOLE_SHA256"
echo "$XZ_PIN" >"$staging/XZ_SHA256"

rm -rf "$PREFIX"
mv "$staging" "$PREFIX"
found="$("$PREFIX/bin/pahole" --version)"
if [ "$found" != "v$VERSION" ]; then
    echo "install-pahole: $PREFIX/bin/pahole says $found, not v$VERSION" >&2
    rm -rf "$PREFIX"
    exit 1
fi
found="$(xz_says "$PREFIX/bin/xz")"
if [ "$found" != "xz (XZ Utils) $XZ_VERSION" ]; then
    echo "install-pahole: $PREFIX/bin/xz says $found, not xz $XZ_VERSION" >&2
    rm -rf "$PREFIX"
    exit 1
fi
# Every library they load must be one of the prefix's.
for tool in pahole xz; do
    if "$final_libdir/$(basename "$loader")" --list "$PREFIX/bin/$tool" | grep '=>' | grep -v "=> $PREFIX/"; then
        echo "install-pahole: $PREFIX/bin/$tool loads a library from outside its prefix" >&2
        rm -rf "$PREFIX"
        exit 1
    fi
done
echo "install-pahole: pahole $VERSION and xz $XZ_VERSION in $PREFIX ($((SECONDS - start)) s)"
