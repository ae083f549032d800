"""The rooms of generator/ and what each may import (ARCHITECTURE.md), read from the code.

The commands parse, call the application layer (generator/hub/) and print;
below them nothing imports the commands or argparse, or prints; the domain
vocabulary (model/) and the pure planner depend on nothing that does I/O;
no import cycle, imports inside functions included. In tests/, fixtures and
builders live in tests/kit/: no test module imports another.

Each rule is one test over the whole import graph; a failure lists every
offending "module imports module" (or "module prints at line N") at once.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_under(package: str) -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


MODULES = modules_under("generator")
TEST_MODULES = modules_under("tests")


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


@cache  # the rules ask about each module many times: one walk of its tree
def imported_names(path: Path) -> frozenset[str]:
    """What the module imports, wherever the statement sits (`from a import b` gives a and a.b)."""
    found: set[str] = set()
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(found)


def imports(name: str, modules: dict[str, Path] = MODULES) -> set[str]:
    """The modules `name` imports: of its own package only those that exist, all others."""
    own = name.split(".")[0]
    return {
        m
        for m in imported_names(modules[name])
        if m in modules or not (m == own or m.startswith(f"{own}."))
    }


def generator_imports(name: str) -> set[str]:
    return {m for m in imports(name) if m.startswith("generator.")}


def in_room(name: str, *rooms: str) -> bool:
    return any(name == r or name.startswith(f"{r}.") for r in rooms)


def edges(
    names: Iterator[str] | list[str], *targets: str, modules: dict[str, Path] = MODULES
) -> list[str]:
    """Every "a imports b" with a in names and b in one of the target rooms."""
    return [
        f"{name} imports {m}"
        for name in names
        for m in sorted(imports(name, modules))
        if in_room(m, *targets)
    ]


UPPER = ("generator.commands", "generator.cli", "generator.__main__")


def test_the_walk_sees_the_package_and_its_imports() -> None:
    assert {"generator.model", "generator.hub.run", "generator.commands.plan"} <= set(MODULES)
    assert "generator.model" in imports("generator.planner")
    # An import inside a function counts: the cli imports each command when chosen.
    assert any(in_room(m, "generator.commands") for m in imports("generator.cli"))


def test_nothing_below_the_commands_imports_them_or_argparse() -> None:
    below = [m for m in MODULES if not in_room(m, *UPPER)]
    assert edges(below, *UPPER, "argparse") == []


def test_nothing_below_the_commands_prints() -> None:
    """Messages go through the one Reporter (generator/progress.py)."""
    prints = [
        f"{name} prints at line {node.lineno}"
        for name in MODULES
        if not in_room(name, *UPPER, "generator.progress")
        for node in ast.walk(tree(MODULES[name]))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]
    assert prints == []


def test_only_the_commands_use_the_application_layer() -> None:
    others = [m for m in MODULES if not in_room(m, *UPPER, "generator.hub")]
    assert edges(others, "generator.hub") == []


PURE = {
    "generator.model": ("generator.model",),  # its own parts (model/catalog.py)
    "generator.model.catalog": (),
    "generator.errors": (),
    "generator.planner": ("generator.model", "generator.errors", "generator.jsonschemas"),
    "generator.shards.split": ("generator.model",),
}


def test_the_pure_core_imports_no_adapter() -> None:
    found = [
        f"{name} imports {m}"
        for name, allowed in PURE.items()
        for m in sorted(generator_imports(name))
        if not in_room(m, *allowed)
    ]
    assert found == []


CORE = {"errors", "model"}
EVERYTHING_BELOW = {
    "archive", "btf", "catalog", "children", "codedigest", "elf", "errors", "fsutil", "gitops",
    "heap",
    "index",
    "jsonschemas", "kinds", "lock", "manifest", "model", "openpgp", "packages", "planner",
    "progress", "provenance", "render", "resources", "shards", "state", "store", "trust",
    "upstream", "validation", "verify", "workdir", "yamlpos",
}  # fmt: skip
# room -> the rooms it may import (ARCHITECTURE.md's table); its own room always.
ROOMS: dict[str, set[str]] = {
    "hub": EVERYTHING_BELOW,
    "model": set(),
    "errors": set(),
    "progress": set(),
    "heap": set(),
    "planner": CORE | {"jsonschemas"},
    "manifest": {"yamlpos"},
    "catalog": CORE | {"jsonschemas", "manifest", "resources", "validation", "yamlpos"},
    "validation": CORE | {"kinds", "manifest", "resources", "yamlpos"},
    "kinds": CORE | {"fsutil", "resources"},
    "yamlpos": set(),
    "upstream": CORE
    | {"children", "codedigest", "fsutil", "jsonschemas", "kinds", "packages", "openpgp", "trust"},
    "openpgp": {"children", "errors"},
    "trust": CORE | {"openpgp"},
    "verify": CORE | {"fsutil", "openpgp", "packages", "upstream"},
    "packages": {"children", "elf", "errors", "model"},
    "btf": {"children", "elf", "errors", "fsutil", "jsonschemas", "model"},
    "elf": {"errors"},
    "children": {"errors"},
    "workdir": {"lock"},
    "archive": CORE | {"btf"},
    "state": CORE | {"jsonschemas", "provenance", "store"},
    "index": CORE | {"jsonschemas", "provenance", "state", "store"},
    # Issue 17: setting.py (pure), registryauth.py, oci.py (the registry, over
    # upstream's one transport), hubstore.py (a hub's files in its store), migrate.py,
    # credhelper.py (Docker's credential helpers, started through children).
    "store": CORE | {"archive", "children", "fsutil", "progress", "state", "upstream"},
    "render": CORE
    | {"archive", "catalog", "fsutil", "index", "openpgp", "provenance", "resources", "state"},
    "shards": CORE | {"fsutil", "jsonschemas", "provenance"},
    # Issue 18: provenance recorded, checked (`btfhub verify`), index.json signed.
    "provenance": CORE
    | {"btf", "consumer", "fsutil", "jsonschemas", "openpgp", "planner", "state", "upstream"}
    | {"packages", "verify", "workdir"},
    "gitops": {"children", "errors"},
    "jsonschemas": {"errors", "resources"},
    "fsutil": {"errors"},
    "codedigest": set(),
    "resources": {"errors"},
    "lock": {"errors"},
    # The tools' side (issue 10): api.py is its public face, consumer/ its parts.
    "api": {"consumer", "errors"},
    "consumer": CORE
    | {"btf", "children", "elf", "fsutil", "jsonschemas", "manifest", "openpgp", "resources"}
    | {"store", "upstream"}
    | {"validation"}
    | {"yamlpos"},
    # The coverage site (issue 19): the README's cells, the host rules, the index.
    "site": CORE | {"catalog", "consumer", "fsutil", "render", "resources"},
    "demo": EVERYTHING_BELOW | {"demokit"},
    "demokit": EVERYTHING_BELOW | {"demokit"},
}


def room_of(name: str) -> str:
    """generator.upstream.http -> upstream; generator.model -> model; generator -> generator."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "generator"


def test_each_room_imports_only_what_architecture_md_allows() -> None:
    rooms = [m for m in MODULES if not in_room(m, *UPPER) and m != "generator"]
    assert sorted({room_of(m) for m in rooms} - set(ROOMS)) == [], (
        "a new room: add it to ARCHITECTURE.md and ROOMS"
    )
    found = [
        f"{name} imports {m} (room {room_of(name)} may import {sorted(ROOMS[room_of(name)])})"
        for name in rooms
        for m in sorted(generator_imports(name))
        # The package itself may be imported anywhere: its __version__.
        if room_of(m) not in ROOMS[room_of(name)] | {room_of(name), "generator"}
    ]
    assert found == []


def test_a_forbidden_import_is_named() -> None:
    """The rules above can fail, and say which module imports what."""
    assert edges(["generator.cli"], "generator.commands")
    assert all(e.startswith("generator.cli imports generator.commands.") for e in edges(
        ["generator.cli"], "generator.commands"
    ))  # fmt: skip


# -- no import cycle ---------------------------------------------------------------


def import_graph() -> dict[str, set[str]]:
    return {name: {m for m in imports(name) if m in MODULES and m != name} for name in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            # A package's __init__ is not an edge worth reporting as a cycle.
            if nxt == "generator" or graph.get(nxt) is None:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_generator_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_one() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


# -- the installed package holds what `btfhub` runs (issue 7, point 6) -------------------

# Test machinery that lives in tests/kit/ and must not creep back into generator/.
TEST_ONLY = {
    "Fault",
    "FaultyHandler",
    "FaultyMirror",
    "IndexedDeb",
    "build_kernel_deb",
    "build_large_elf",
    "build_odd_rpm",
    "incompressible",
    "tar_link",
    "v3_rsa_sha256_signature",
    "with_header_signature",
    "write_apt_index",
    "write_ar",
    "write_html_listing",
    "write_rpmmd_index",
}
INJECTION = {"fail", "truncate", "drop", "without_length", "clear_faults", "_take_fault", "_admits"}


def test_nothing_in_the_package_imports_the_tests() -> None:
    assert edges(list(MODULES), "tests") == []


def test_the_demokit_defines_no_test_machinery() -> None:
    defined: set[str] = set()
    for name in (m for m in MODULES if in_room(m, "generator.demokit")):
        for node in ast.walk(tree(MODULES[name])):
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                defined.add(node.name)
    assert "MirrorServer" in defined, "the walk missed generator/demokit"
    assert defined & (TEST_ONLY | INJECTION) == set()


def test_the_demo_mirror_injects_nothing_and_the_tests_mirror_does(tmp_path: Path) -> None:
    from generator.demokit.server import MirrorServer
    from tests.kit.mirror import FaultyMirror

    (tmp_path / "file").write_bytes(b"content")
    plain = MirrorServer(tmp_path)
    # The package's mirror has no fault hooks: the tests' handler brings them.
    assert not any(hasattr(plain, method) for method in INJECTION)
    assert not TEST_ONLY & set(vars(sys.modules["generator.demokit.server"]))
    faulty = FaultyMirror(tmp_path)
    faulty.fail("/file", 503)
    fault = faulty._take_fault("/file")
    assert fault is not None and fault.status == 503
    assert faulty._take_fault("/file") is None  # times=1: used up
    guarded = FaultyMirror(tmp_path, basic_auth=("user", "secret"))
    assert not guarded._admits(None) and guarded._admits("Basic dXNlcjpzZWNyZXQ=")
    for server in (plain, faulty, guarded):
        server._httpd.server_close()


def test_no_module_binds_a_c_library() -> None:
    """Tools run as processes through generator/children.py (xz, pahole), never ctypes."""
    assert [m for m in MODULES if in_room(m, "generator") and "ctypes" in imports(m)] == []


# -- the tests: fixtures and builders in tests/kit/ ---------------------------------------


def test_no_test_module_imports_another() -> None:
    """A test module imports the kit (tests/kit/), never another test module or conftest."""
    assert "tests.conftest" in TEST_MODULES and "tests.kit.hub" in TEST_MODULES
    found = edges(
        list(TEST_MODULES),
        *(
            m
            for m in TEST_MODULES
            if m not in ("tests", "tests.kit") and not in_room(m, "tests.kit")
        ),
        modules=TEST_MODULES,
    )
    assert found == []
    # The kit builds on generator/ and itself only.
    kit = [m for m in TEST_MODULES if in_room(m, "tests.kit")]
    assert [e for e in edges(kit, "tests", modules=TEST_MODULES) if " tests.kit" not in e] == []
