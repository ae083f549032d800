"""Test-only machinery: the fixtures' builders and every helper shared by tests.

Fault injection, hostile and odd package builders, index-only mirror
writers, hubs and their git remotes, the Launchpad and TLS stand-ins, the
real-kernel fetcher and the CO-RE loader. A test module imports from here,
never from another test module (tests/test_architecture.py holds that).

Kept out of the installed package (generator/demokit holds only what
`btfhub demo` runs); tests and benchmarks import it from here.
"""
