"""The offline demo's stand-in for the upstream debug-symbol repositories.

Builds real packages (a gcc -g ELF packed with dpkg-deb into a .ddeb/.deb,
or with rpmbuild into an .rpm), lays them out like ddebs.ubuntu.com,
debuginfo.centos.org or a Fedora tree, and serves them over HTTP on
127.0.0.1. It holds only what `btfhub demo` runs; the tests and benchmarks
build on it, and their own machinery (fault injection, hostile packages,
index-only mirrors, the real kernel) lives in tests/kit/.
"""
