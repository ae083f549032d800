"""Manifest documents as read from catalog/*.yaml, before they become the model.

Both the loader (catalog.py) and the checks (validation.py) work on these
documents; keeping them here lets validation run without the loader, and the
loader call validation, with no import cycle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from generator.yamlpos import LoadedYaml, YamlSyntaxError, load_yaml

CATALOG_DIR = "catalog"


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a manifest, printed as file:line:col: path: message."""

    file: str  # relative to the hub root, e.g. catalog/ubuntu.yaml
    line: int
    col: int
    path: str  # dotted, e.g. releases[3].kernel ("" for the whole file)
    message: str

    def format(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.col}: {where}{self.message}"

    def github(self) -> str:
        """The GitHub Actions workflow command that annotates this line of the diff."""
        where = f"{self.path}: " if self.path else ""
        file = _escape_property(self.file)
        message = _escape_data(f"{where}{self.message}")
        return f"::error file={file},line={self.line},col={self.col}::{message}"


def _escape_data(text: str) -> str:
    # A raw newline would end the workflow command and % starts an escape.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    # Property values are also split on , and :
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


@dataclass(frozen=True)
class ManifestDocument:
    file: str  # relative path, e.g. catalog/ubuntu.yaml
    id: str  # file stem
    loaded: LoadedYaml | None  # None when the YAML did not parse
    syntax_error: Diagnostic | None = None


def dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def manifest_files(root: Path) -> list[Path]:
    return sorted((root / CATALOG_DIR).glob("*.yaml"))


def read_documents(root: Path) -> list[ManifestDocument]:
    docs = []
    for path in manifest_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            diag = Diagnostic(rel, 1, 1, "", f"not UTF-8 text: {exc.reason}")
            docs.append(ManifestDocument(rel, path.stem, None, diag))
            continue
        try:
            docs.append(ManifestDocument(rel, path.stem, load_yaml(text)))
        except YamlSyntaxError as exc:
            diag = Diagnostic(rel, exc.line, exc.col, "", exc.message)
            docs.append(ManifestDocument(rel, path.stem, None, diag))
    return docs


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-")
