"""Manifests written into a hub's catalog/, for the validation tests."""

from __future__ import annotations

from pathlib import Path

# Line numbers matter: tests/test_validate.py points into this text.
GOOD = """\
# yaml-language-server: $schema=../schemas/manifest.schema.json
title: Example
archive_dir: example
directory: "1"
columns:
  - {header: Example, field: name}
  - {header: Kernel, field: kernel}
  - {header: BPF, field: bpf}
  - {header: BTF, field: btf}
  - {header: HUB, field: hub}
repositories:
  - id: debs
    kind: apt
    url: http://deb.example/
    packages: ["linux-image-{uname}-dbg"]
releases:
  - name: One
    kernel: "5.4.0"
    bpf: true
    btf: false
    hub: true
    sources:
      - repository: debs
        suites: [one]
  - name: Two
    release_date: "2021-02-03"
    kernel: "5.8.0"
    bpf: true
    btf: true
    hub: false
"""


def edit(old: str, new: str, text: str = GOOD) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once"
    return text.replace(old, new)


def hub(tmp_path: Path, **manifests: str) -> Path:
    (tmp_path / "catalog").mkdir()
    for stem, text in manifests.items():
        (tmp_path / "catalog" / f"{stem}.yaml").write_text(text, encoding="utf-8")
    return tmp_path
