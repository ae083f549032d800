"""Kernel modules for tests: objects with DWARF compiled at test time, and packages holding them.

A module is built like an out-of-tree one (`gcc -g -c`: a relocatable
object, the DWARF needing relocation as a .ko's does) and uses the fixture
vmlinux's types (generator.demokit.elf), so its split BTF refers to the
base's ids as a real module's refers to vmlinux's. Each module defines a
struct of its own that the tests look for.
"""

from __future__ import annotations

import re
from pathlib import Path

from generator.demokit.debpkg import build_deb
from generator.demokit.mirror import AptPackage
from generator.demokit.tools import run
from tests.kit.debpkg import incompressible
from tests.kit.hub import focal_suites, make_hub, write_ubuntu
from tests.kit.mirror import FaultyMirror

# The Focal kernel the module tests build, and the reconcile arguments that select it.
FOCAL_UNAME = "5.4.0-26-generic"
FOCAL_VERSION = "5.4.0-26.30"
FOCAL = ("--distro", "ubuntu", "--release", "focal", "--arch", "x86_64")

# Each module's own struct: btfhub_<module>_conn, with fields the tests read.
MODULE_SOURCE = r"""
struct btfhub_fixture_list {
    struct btfhub_fixture_task *task;
    struct btfhub_fixture_list *next;
};

struct btfhub_%(name)s_conn {
    struct btfhub_fixture_list *owner;
    unsigned long long cookie;
    int state;
    char tag[%(tag)d];
    struct btfhub_%(name)s_conn *peer;
};

struct btfhub_%(name)s_conn btfhub_%(name)s_table[4];

int btfhub_%(name)s_lookup(struct btfhub_%(name)s_conn *c, int depth)
{
    return c && c->owner ? depth + c->state : -1;
}
"""


# A struct two modules both define, as nf_nat carries its copy of nf_conntrack's structs.
SHARED_SOURCE = r"""
struct btfhub_shared_state {
    int refs;
    unsigned short proto;
    struct btfhub_fixture_list *head;
};

struct btfhub_shared_state btfhub_%(name)s_shared;
"""
SHARED_STRUCT = "btfhub_shared_state"


def module_struct(name: str) -> str:
    return f"btfhub_{name}_conn"


def build_module(
    directory: Path, name: str, *, tag: int = 12, shared: bool = False, extra: str = ""
) -> Path:
    """<directory>/<name>.ko: a relocatable object with DWARF defining btfhub_<name>_conn
    (and, shared, btfhub_shared_state, the same in every module built so; extra: more C)."""
    directory.mkdir(parents=True, exist_ok=True)
    src = directory / f"{name}.c"
    source = MODULE_SOURCE + (SHARED_SOURCE if shared else "")
    src.write_text(source % {"name": name, "tag": tag} + extra)
    obj = directory / f"{name}.ko"
    run(["gcc", "-g", "-O0", "-c", "-o", str(obj), str(src)])
    return obj


def build_ddeb_with_modules(
    directory: Path,
    uname: str,
    vmlinux: Path,
    modules: dict[str, Path],
    version: str,
    *,
    padding_after: int = 0,
) -> Path:
    """Ubuntu's linux-image-unsigned-<uname>-dbgsym .ddeb, with modules after vmlinux.

    padding_after: incompressible bytes in a member sorted after everything else.
    """
    workdir = directory / f"{uname}-{version}".replace("~", "_")
    workdir.mkdir(parents=True)
    debug = "usr/lib/debug"
    files: dict[str, bytes | Path] = {
        f"{debug}/boot/vmlinux-{uname}": vmlinux,
        f"{debug}/boot/System.map-{uname}": b"ffffffff81000000 T _stext\n",
    }
    for below, obj in modules.items():
        files[f"{debug}/lib/modules/{uname}/kernel/{below}"] = obj
    if padding_after:
        files["usr/share/zz-padding"] = incompressible(padding_after)
    symlinks = {f"{debug}/lib/modules/{uname}/vmlinux": f"../../../boot/vmlinux-{uname}"}
    package = f"linux-image-unsigned-{uname}-dbgsym"
    deb = build_deb(workdir, package, version, "amd64", files, symlinks, "xz")
    ddeb = deb.with_suffix(".ddeb")
    deb.rename(ddeb)
    return ddeb


def focal_hub(path: Path, modules: str | None) -> Path:
    """A hub whose Focal release asks for `modules` (None: the shipped manifest)."""
    hub = make_hub(path)
    if modules is not None:
        manifest = hub / "catalog" / "ubuntu.yaml"
        text = manifest.read_text()
        text, n = re.subn(r"(\n  - name: Focal\n)", rf"\1    modules: {modules}\n", text)
        assert n == 1
        manifest.write_text(text)
    return hub


def serve_focal(server: FaultyMirror, package: AptPackage) -> None:
    """The mirror's Focal suites list package (and nothing else)."""
    write_ubuntu(server, focal_suites([package]))
