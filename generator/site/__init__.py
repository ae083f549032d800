"""The coverage site (`btfhub site`): which kernels the hub has, searchable, as static files.

`data.py` shapes the catalog and an index.json into what the page shows and
what its script searches (pure), with `extras.py` for the optional maps
other features add to index.json (provenance, modules); `page.py` lays it
out (Jinja2 template, static JS and CSS shipped as package data) into the
site's files, the same bytes for the same inputs; `output.py` reads the
inputs and writes the files.
"""
