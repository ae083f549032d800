"""YAML loading that remembers where every value came from.

PyYAML's composer gives nodes with start marks; we build plain Python values
from them ourselves so that (a) every value has a (line, col) for diagnostics,
(b) duplicate keys are errors instead of silently last-wins, and (c) only
true/false/null are typed: versions such as 7.0 or 20.10 and dates such as
2018-04-26 stay the strings the contributor wrote.
"""

from __future__ import annotations

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


def safe_load(text: str) -> Any:
    """PyYAML's safe_load (its usual typing, no positions), through libyaml when present."""
    return yaml.load(text, Loader=_LOADER)


class YamlSyntaxError(Exception):
    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


@dataclass(frozen=True)
class LoadedYaml:
    data: Any
    positions: dict[Path_, tuple[int, int]]  # path -> (line, col), 1-based
    # Mapping entry path -> position of its key, so that a diagnostic about
    # the key itself (an unknown key) points at the key, not at its value.
    key_positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def position(self, path: Path_) -> tuple[int, int]:
        """The position of path, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.positions:
                return self.positions[p]
            p = p[:-1]
        return self.positions.get((), (1, 1))

    def key_position(self, path: Path_) -> tuple[int, int]:
        """The position of the key of mapping entry path (else as position())."""
        return self.key_positions.get(tuple(path)) or self.position(path)


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


def load_yaml(text: str) -> LoadedYaml:
    """Parse one YAML document; raise YamlSyntaxError with a 1-based position."""
    positions: dict[Path_, tuple[int, int]] = {}
    key_positions: dict[Path_, tuple[int, int]] = {}
    try:
        node = yaml.compose(text, Loader=_LOADER)
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
        return LoadedYaml(None, {(): (1, 1)})

    def build(n: yaml.Node, path: Path_) -> Any:
        positions[path] = (n.start_mark.line + 1, n.start_mark.column + 1)
        if isinstance(n, yaml.ScalarNode):
            return _scalar(n)
        if isinstance(n, yaml.SequenceNode):
            return [build(child, (*path, i)) for i, child in enumerate(n.value)]
        if isinstance(n, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in n.value:
                key_at = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                if not isinstance(key_node, yaml.ScalarNode):
                    raise YamlSyntaxError(
                        "invalid YAML: mapping keys must be plain strings", *key_at
                    )
                key = str(key_node.value)
                if key == "<<":
                    raise YamlSyntaxError(
                        "invalid YAML: merge keys (<<) are not supported; use an anchor "
                        "on the whole value instead",
                        *key_at,
                    )
                if key in out:
                    raise YamlSyntaxError(f"invalid YAML: duplicate key {key!r}", *key_at)
                key_positions[(*path, key)] = key_at
                out[key] = build(value_node, (*path, key))
            return out
        raise YamlSyntaxError("invalid YAML: unsupported node", 1, 1)

    return LoadedYaml(build(node, ()), positions, key_positions)
