"""YAML loading that remembers where every value came from.

PyYAML's composer gives nodes with start marks; we build plain Python values
from them ourselves so that (a) every value has a (line, col) for diagnostics
(read from the nodes only when one is asked for),
(b) duplicate keys are errors instead of silently last-wins, and (c) only
true/false/null are typed: versions such as 7.0 or 20.10 and dates such as
2018-04-26 stay the strings the contributor wrote.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]

_BOOL_TRUE = {"true", "True", "TRUE"}
_BOOL_FALSE = {"false", "False", "FALSE"}
_NULL = {"null", "Null", "NULL", "~", ""}
_INT_RE = re.compile(r"^-?\d+$")
# libyaml is ~10x faster (the catalog bench parses 50 manifests); same marks.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_STR, _SEQ, _MAP = (f"tag:yaml.org,2002:{kind}" for kind in ("str", "seq", "map"))


class _ComposeLoader(_LOADER):  # type: ignore[misc,valid-type]
    """The loader load_yaml composes with: tags resolved only where _scalar reads them.

    PyYAML's resolver runs in Python for every node (path resolvers, then the
    implicit ones by regex): over half of composing a manifest. _scalar types
    plain scalars itself and reads a tag only to tell a YAML int among
    digit-only values, so only those go through PyYAML's resolution.
    """

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass  # no path resolvers are registered

    def ascend_resolver(self) -> None:
        pass

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0] and _INT_RE.match(value):
                return super().resolve(kind, value, implicit)  # type: ignore[no-any-return]
            return _STR
        return _SEQ if kind is yaml.SequenceNode else _MAP


def safe_load(text: str) -> Any:
    """PyYAML's safe_load (its usual typing, no positions), through libyaml when present."""
    return yaml.load(text, Loader=_LOADER)


class YamlSyntaxError(Exception):
    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


_Positions = dict[Path_, tuple[int, int]]


@dataclass(frozen=True)
class LoadedYaml:
    """A document's values and, for diagnostics, where each came from.

    The positions are read from the composed nodes on first use: a manifest
    that passes validation (nearly every load) never needs them.
    """

    data: Any
    node: yaml.Node | None = field(default=None, repr=False, compare=False)

    @functools.cached_property
    def _positions(self) -> tuple[_Positions, _Positions]:
        positions: _Positions = {(): (1, 1)}
        # Mapping entry path -> position of its key, so that a diagnostic about
        # the key itself (an unknown key) points at the key, not at its value.
        key_positions: _Positions = {}
        if self.node is not None:
            _walk(self.node, (), positions, key_positions)
        return positions, key_positions

    @property
    def positions(self) -> _Positions:
        """path -> (line, col), 1-based."""
        return self._positions[0]

    def position(self, path: Path_) -> tuple[int, int]:
        """The position of path, or of its nearest ancestor that has one."""
        positions = self.positions
        p = tuple(path)
        while p:
            if p in positions:
                return positions[p]
            p = p[:-1]
        return positions[()]

    def key_position(self, path: Path_) -> tuple[int, int]:
        """The position of the key of mapping entry path (else as position())."""
        return self._positions[1].get(tuple(path)) or self.position(path)


def _at(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def _walk(n: yaml.Node, path: Path_, positions: _Positions, key_positions: _Positions) -> None:
    positions[path] = _at(n.start_mark)
    if isinstance(n, yaml.SequenceNode):
        for i, child in enumerate(n.value):
            _walk(child, (*path, i), positions, key_positions)
    elif isinstance(n, yaml.MappingNode):
        for key_node, value_node in n.value:
            entry = (*path, str(key_node.value))
            key_positions[entry] = _at(key_node.start_mark)
            _walk(value_node, entry, positions, key_positions)


def _scalar(node: yaml.ScalarNode) -> Any:
    if node.style:  # quoted or block scalar: always a string (plain is None or "")
        return node.value
    v = node.value
    if v in _BOOL_TRUE:
        return True
    if v in _BOOL_FALSE:
        return False
    if v in _NULL:
        return None
    if _INT_RE.match(v) and node.tag == "tag:yaml.org,2002:int" and len(v) < 6:
        # Small plain integers (e.g. a count) stay numbers; long digit runs
        # and everything else stay strings.
        return int(v)
    return v


def _char_at(text: str, mark: yaml.Mark | None) -> str:
    """The character a parser error points at (libyaml does not name it)."""
    if mark is None:
        return ""
    lines = text.splitlines()
    if mark.line >= len(lines) or mark.column >= len(lines[mark.line]):
        return ""
    return lines[mark.line][mark.column]


@functools.lru_cache(maxsize=64)
def _compose(text: str) -> yaml.Node | None:
    """The document's node tree, composed once per distinct text in this process.

    A process that runs several commands (the tests, hundreds of them in one
    process; a caller of cli.main) loads the same manifests each time, and
    composing is two thirds of a catalog load. The nodes are only read
    (_build makes fresh values from them each time), so sharing them is safe.
    """
    return yaml.compose(text, Loader=_ComposeLoader)


def load_yaml(text: str) -> LoadedYaml:
    """Parse one YAML document; raise YamlSyntaxError with a 1-based position."""
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or str(exc)
        if "'\\t'" in problem or _char_at(text, mark) == "\t":
            problem = "a tab character where YAML allows only spaces (indent with spaces)"
        elif exc.context and exc.context_mark is not None:
            cm = exc.context_mark
            problem = f"{problem} ({exc.context} at line {cm.line + 1}, column {cm.column + 1})"
            if "quoted scalar" in exc.context:
                # The scanner only gives up at the end of the file: point at
                # the opening quote, which is where the fix goes.
                problem = "unclosed quoted string"
                line, col = cm.line + 1, cm.column + 1
        raise YamlSyntaxError(f"invalid YAML: {problem}", line, col) from None
    if node is None:
        return LoadedYaml(None)
    return LoadedYaml(_build(node), node)


def _build(n: yaml.Node) -> Any:
    """The plain value of a node; keys checked (plain, unique, no merge)."""
    if isinstance(n, yaml.ScalarNode):
        return _scalar(n)
    if isinstance(n, yaml.SequenceNode):
        return [_build(child) for child in n.value]
    if isinstance(n, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in n.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlSyntaxError(
                    "invalid YAML: mapping keys must be plain strings", *_at(key_node.start_mark)
                )
            key = str(key_node.value)
            if key == "<<":
                raise YamlSyntaxError(
                    "invalid YAML: merge keys (<<) are not supported; use an anchor "
                    "on the whole value instead",
                    *_at(key_node.start_mark),
                )
            if key in out:
                raise YamlSyntaxError(
                    f"invalid YAML: duplicate key {key!r}", *_at(key_node.start_mark)
                )
            out[key] = _build(value_node)
        return out
    raise YamlSyntaxError("invalid YAML: unsupported node", 1, 1)
