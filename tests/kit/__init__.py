"""Test-only machinery: fault injection, hostile and odd package builders,
index-only mirror writers, the real-kernel fetcher and the CO-RE loader.

Kept out of the installed package (generator/demokit holds only what
`btfhub demo` runs); tests and benchmarks import it from here.
"""
