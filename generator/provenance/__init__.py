"""Where every archive file came from (index.json's provenance), and checking it again.

`record`: the provenance map's JSON (pure); `build`: a package fetched,
verified and encoded, saying what vouched for it and what ran; `audit`:
`btfhub verify`, every file against index.json and, with --rebuild, built
again from its recorded package; `signing`: index.json.asc.
"""
