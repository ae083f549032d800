"""A local stand-in for the upstream debug-symbol repositories.

Builds real packages (a gcc -g ELF packed with dpkg-deb into a .ddeb/.deb,
or with rpmbuild into an .rpm), lays them out like ddebs.ubuntu.com,
debuginfo.centos.org or a Fedora tree, and serves them over HTTP on
127.0.0.1. Used by `btfhub demo`, the benchmarks and the tests: the same
machinery in all three, so the demo exercises exactly what the tests check.
"""
