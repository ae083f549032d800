#!/usr/bin/env bash
# Installs everything btfhub needs on a fresh Debian/Ubuntu machine:
# the Debian tools it runs (bpftool, rpm, compressors, Debian's pahole and a
# C compiler for test fixtures), the pahole it encodes with (Debian 13's 1.30)
# and the xz it decodes packages with (Debian 13's 5.8), both in .tools/ by
# scripts/install-pahole.sh, the OCI registry the tests run (Debian's
# docker-registry, scripts/install-registry.sh), Go and cilium/ebpf where the
# distribution packages them (and a Go build cache the cilium tests start from),
# and a project-local virtualenv with the package and its test extra. Safe to
# rerun; it only installs what is missing.
# Needs Python 3.11+ (Debian 12, Ubuntu 24.04 or newer; PYTHON=... to choose).
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(dwarves bpftool rpm zstd xz-utils bzip2 gzip gcc libc6-dev git make
              llvm libarchive-tools cpio python3-venv python3-pip ca-certificates
              shellcheck gpgv gnupg openssl util-linux
              clang libbpf-dev pkg-config  # BPF objects and a libbpf loader (consumer tests)
              patchelf debian-archive-keyring  # the project's pahole (install-pahole.sh)
              chromium chromium-driver)  # the coverage site's browser tests (tests/test_site_browser.py)
# Go and cilium/ebpf's sources (Debian 12: 0.9.1), for the tests that read hub
# files with cilium/ebpf (tests/kit/cilium.py). Only where the distribution
# has them: those tests skip, saying why, elsewhere.
OPTIONAL_DEB_PACKAGES=(golang-go golang-github-cilium-ebpf-dev)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    # Ubuntu ships bpftool in linux-tools rather than in a package of its own.
    if [[ " ${missing[*]} " == *" bpftool "* ]] && ! apt-cache show bpftool >/dev/null 2>&1; then
        missing=("${missing[@]/bpftool/linux-tools-common}" linux-tools-generic)
    fi
    echo "setup: installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
optional=()
for pkg in "${OPTIONAL_DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || optional+=("$pkg")
done
if [ ${#optional[@]} -gt 0 ]; then
    [ ${#missing[@]} -gt 0 ] || $SUDO apt-get update -qq
    if apt-cache show "${optional[@]}" >/dev/null 2>&1; then
        echo "setup: installing Debian packages: ${optional[*]}"
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${optional[@]}"
    else
        echo "setup: ${optional[*]} not available here: the cilium/ebpf tests will skip"
    fi
fi

# The pahole btfhub encodes with (1.30, reproducible with -j) and the xz that
# decodes packages (5.8), in .tools/.
./scripts/install-pahole.sh
# The OCI registry the store tests push to (docker-registry, its binary only), in .tools/.
./scripts/install-registry.sh

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: btfhub needs Python 3.11 or newer; $PYTHON is $("$PYTHON" -V 2>&1) (set PYTHON=...)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
# The project is installed editable, so pip compiled none of its modules; where
# PYTHONDONTWRITEBYTECODE is set (CI images, this sandbox), every btfhub process
# would compile ~350 modules again (~0.25 CPU-s a start). Python checks each
# .pyc against its source's mtime and size, so an edited module is recompiled.
.venv/bin/python -m compileall -q -j 0 generator tests/kit > /dev/null
# Go's standard library and cilium/ebpf compiled once into .tools/go-cache, which
# the cilium tests' builds start from (tests/kit/cilium.py): ~30 CPU-s a test run.
# A second run rebuilds nothing.
if command -v go >/dev/null; then
    .venv/bin/python -m tests.kit.cilium
fi
echo "setup: ready (.venv/bin/btfhub)"
