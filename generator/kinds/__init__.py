"""Repository kinds: one record per kind (generator/kinds/<kind>.py), one registry.

A record says all btfhub knows of a kind: the manifest keys it has (with
their schema), its rules, how it spells architectures, what its sources name
(suites or paths), and the lister (and completer) that read it. Validation,
the manifest schema's kind part and discovery all come from
``registry.KINDS``: a new kind is its module plus one line there.
"""
