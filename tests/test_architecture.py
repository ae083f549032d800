"""The rooms of generator/ and what each may import (ARCHITECTURE.md), read from the code.

The commands parse, call the application layer (generator/hub/) and print;
below them nothing imports the commands or argparse, or prints; the domain
vocabulary (model/) and the pure planner depend on nothing that does I/O.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "generator"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> set[str]:
    """The modules `name` imports (absolute names; `from generator import x` counts as x)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {m for m in found if m in MODULES or not m.startswith("generator")}


def generator_imports(name: str) -> set[str]:
    return {m for m in imports(name) if m.startswith("generator.")}


def in_room(name: str, *rooms: str) -> bool:
    return any(name == r or name.startswith(f"{r}.") for r in rooms)


UPPER = ("generator.commands", "generator.cli", "generator.__main__")


def test_the_walk_sees_the_package() -> None:
    assert {"generator.model", "generator.hub.run", "generator.commands.plan"} <= set(MODULES)


@pytest.mark.parametrize("name", [m for m in MODULES if not in_room(m, *UPPER)])
def test_nothing_below_the_commands_imports_them_or_argparse(name: str) -> None:
    assert not {m for m in imports(name) if in_room(m, *UPPER, "argparse")}


@pytest.mark.parametrize(
    "name", [m for m in MODULES if not in_room(m, *UPPER, "generator.progress")]
)
def test_nothing_below_the_commands_prints(name: str) -> None:
    """Messages go through the one Reporter (generator/progress.py)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    calls = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]
    assert calls == [], f"{name} prints at lines {calls}"


@pytest.mark.parametrize("name", [m for m in MODULES if not in_room(m, *UPPER, "generator.hub")])
def test_only_the_commands_use_the_application_layer(name: str) -> None:
    assert not {m for m in generator_imports(name) if in_room(m, "generator.hub")}


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("generator.model", ("generator.model",)),  # its own parts (model/catalog.py)
        ("generator.model.catalog", ()),
        ("generator.errors", ()),
        ("generator.planner", ("generator.model", "generator.errors", "generator.jsonschemas")),
        ("generator.shards.split", ("generator.model",)),
    ],
)
def test_the_pure_core_imports_no_adapter(name: str, allowed: tuple[str, ...]) -> None:
    assert {m for m in generator_imports(name) if not in_room(m, *allowed)} == set()


CORE = {"errors", "model"}
EVERYTHING_BELOW = {
    "archive", "btf", "catalog", "children", "errors", "fsutil", "gitops", "index",
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
    "planner": CORE | {"jsonschemas"},
    "manifest": {"yamlpos"},
    "catalog": CORE | {"jsonschemas", "manifest", "resources", "validation", "yamlpos"},
    "validation": CORE | {"kinds", "manifest", "resources", "yamlpos"},
    "kinds": CORE | {"fsutil", "resources"},
    "yamlpos": set(),
    "upstream": CORE | {"fsutil", "jsonschemas", "kinds", "packages", "openpgp", "trust"},
    "openpgp": {"children", "errors"},
    "trust": CORE | {"openpgp"},
    "verify": CORE | {"fsutil", "openpgp", "packages", "upstream"},
    "packages": {"children", "errors", "model"},
    "btf": {"children", "errors", "fsutil", "jsonschemas", "model"},
    "children": {"errors"},
    "workdir": {"lock"},
    "archive": CORE | {"btf"},
    "state": CORE | {"jsonschemas", "provenance", "store"},
    "index": CORE | {"jsonschemas", "provenance", "state", "store"},
    # Issue 17: setting.py (pure), registryauth.py, oci.py (the registry, over
    # upstream's one transport), hubstore.py (a hub's files in its store), migrate.py.
    "store": CORE | {"archive", "fsutil", "progress", "state", "upstream"},
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
    "resources": {"errors"},
    "lock": {"errors"},
    # The tools' side (issue 10): api.py is its public face, consumer/ its parts.
    "api": {"consumer", "errors"},
    "consumer": CORE
    | {"btf", "children", "fsutil", "jsonschemas", "manifest", "openpgp", "resources"}
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


@pytest.mark.parametrize(
    "name", [m for m in MODULES if not in_room(m, *UPPER) and m != "generator"]
)
def test_each_room_imports_only_what_architecture_md_allows(name: str) -> None:
    room = room_of(name)
    assert room in ROOMS, f"{name}: a new room; add it to ARCHITECTURE.md and ROOMS"
    allowed = ROOMS[room] | {room, "generator"}  # the package itself: its __version__
    assert {room_of(m) for m in generator_imports(name)} - allowed == set()


# -- the installed package holds what `btfhub` runs (issue 7, point 6) -------------------

# Test machinery that lives in tests/kit/ and must not creep back into generator/.
TEST_ONLY = {
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
INJECTION = {"fail", "truncate", "drop", "without_length", "clear_faults"}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_nothing_in_the_package_imports_the_tests(name: str) -> None:
    assert {m for m in imports(name) if in_room(m, "tests")} == set()


def test_the_demokit_defines_no_test_machinery() -> None:
    defined: set[str] = set()
    for name in (m for m in MODULES if in_room(m, "generator.demokit")):
        for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                defined.add(node.name)
    assert "MirrorServer" in defined, "the walk missed generator/demokit"
    assert defined & (TEST_ONLY | INJECTION) == set()


def test_the_demo_mirror_injects_nothing_and_the_tests_mirror_does(tmp_path: Path) -> None:
    from generator.demokit.mirror import MirrorServer
    from tests.kit.mirror import FaultyMirror

    (tmp_path / "file").write_bytes(b"content")
    plain = MirrorServer(tmp_path)
    assert plain._take_fault("/file") is None
    assert plain._admits(None)
    assert not any(hasattr(plain, method) for method in INJECTION)
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
