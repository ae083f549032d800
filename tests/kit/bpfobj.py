"""Real CO-RE BPF objects and a real libbpf loader, for the consumer tests and docs.

The objects are compiled by clang (-O2 -g -target bpf) against the fixture
ELF's types (generator/demokit/elf.py), declared locally with
preserve_access_index and a different member order, so that loading them
against the fixture's BTF needs real CO-RE relocation. The loader is a small C
program linked with Debian's libbpf: it opens an object with
bpf_object_open_opts.btf_custom_path, as eBPF tools do with a hub file, and
reports what libbpf relocated through libbpf's print callback.

libbpf 1.6 added bpf_object__prepare (relocation without loading the
programs), which the loader uses when built against it. Debian 12 ships 1.1,
where relocation happens inside bpf_object__load, so the kernel's verifier
also sees the relocated program. Both versions first load a trivial probe
program (bpf_object__probe_loading), so both need the BPF privilege (root
here): seen with 1.1 and with 1.6.2 built from source, as uid 65534 both
stop at that probe with EPERM before any relocation. The loader then exits
77, which the tests turn into a skip.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from generator.demokit.tools import run

# Reads task->pid, task->next and task->value.as_long, and asks for the offset
# of `value`: nothing of btfhub_fixture_task's comm, state, handler or flags.
TASK_PROGRAM = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

union btfhub_fixture_value {
    long as_long;
} __attribute__((preserve_access_index));

struct btfhub_fixture_list;

/* Members in another order than the kernel's (the fixture's): offsets must move. */
struct btfhub_fixture_task {
    union btfhub_fixture_value value;
    struct btfhub_fixture_list *next;
    int pid;
} __attribute__((preserve_access_index));

struct btfhub_fixture_task *task_ptr;
int seen_pid;
long seen_value;
void *seen_next;
unsigned int value_offset;

SEC("kprobe/do_nanosleep")
int btfhub_task_probe(void *ctx)
{
    struct btfhub_fixture_task *task = task_ptr;

    seen_pid = BPF_CORE_READ(task, pid);
    seen_value = BPF_CORE_READ(task, value.as_long);
    seen_next = BPF_CORE_READ(task, next);
    value_offset = bpf_core_field_offset(struct btfhub_fixture_task, value);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

# Uses only btfhub_fixture_list: its minimized BTF lacks btfhub_fixture_task.
LIST_PROGRAM = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct btfhub_fixture_list {
    struct btfhub_fixture_list *next;
} __attribute__((preserve_access_index));

struct btfhub_fixture_list *list_ptr;
void *seen;

SEC("kprobe/do_nanosleep")
int btfhub_list_probe(void *ctx)
{
    seen = BPF_CORE_READ(list_ptr, next);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

# Reads a module's struct (tests/kit/modules.py: btfhub_nf_demo_conn) and
# vmlinux's task, members in another order than the module's: offsets must move.
MODULE_PROGRAM = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct btfhub_fixture_task {
    int pid;
} __attribute__((preserve_access_index));

struct btfhub_nf_demo_conn {
    int state;
    char tag[4];
    unsigned long long cookie;
    void *peer;
} __attribute__((preserve_access_index));

struct btfhub_nf_demo_conn *conn_ptr;
struct btfhub_fixture_task *task_ptr;
int seen_state, seen_pid;
unsigned long long seen_cookie;
void *seen_peer;

SEC("kprobe/do_nanosleep")
int btfhub_module_probe(void *ctx)
{
    seen_state = BPF_CORE_READ(conn_ptr, state);
    seen_cookie = BPF_CORE_READ(conn_ptr, cookie);
    seen_peer = BPF_CORE_READ(conn_ptr, peer);
    seen_pid = BPF_CORE_READ(task_ptr, pid);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

# Reads btfhub_shared_state, which two modules both carry (tests/kit/modules.py).
SHARED_PROGRAM = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct btfhub_shared_state {
    void *head;
    unsigned short proto;
} __attribute__((preserve_access_index));

struct btfhub_shared_state *shared_ptr;
unsigned short seen_proto;
void *seen_head;

SEC("kprobe/do_nanosleep")
int btfhub_shared_probe(void *ctx)
{
    seen_proto = BPF_CORE_READ(shared_ptr, proto);
    seen_head = BPF_CORE_READ(shared_ptr, head);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

# Reads a real module's struct (Linux 6.1's nf_conntrack), for the slow tests.
L4PROTO_PROGRAM = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct nf_conntrack_l4proto {
    unsigned short nlattr_size;
    _Bool allow_clash;
    unsigned char l4proto;
} __attribute__((preserve_access_index));

struct nf_conntrack_l4proto *l4proto_ptr;
unsigned char seen_proto;
_Bool seen_clash;
unsigned short seen_size;

SEC("kprobe/do_nanosleep")
int btfhub_l4proto_probe(void *ctx)
{
    seen_proto = BPF_CORE_READ(l4proto_ptr, l4proto);
    seen_clash = BPF_CORE_READ(l4proto_ptr, allow_clash);
    seen_size = BPF_CORE_READ(l4proto_ptr, nlattr_size);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

# No CO-RE and, compiled without -g, no .BTF.ext: what bpftool cannot minimize for.
PLAIN_PROGRAM = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int hits;

SEC("kprobe/do_nanosleep")
int btfhub_plain_probe(void *ctx)
{
    hits++;
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

LOADER = r"""
/* Opens a BPF object with btf_custom_path and CO-RE-relocates it with libbpf. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>

static int patched, unresolved;

static int on_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
    char line[2048];

    (void)level;
    vsnprintf(line, sizeof(line), fmt, args);
    if (strstr(line, ": patched insn #")) {
        patched++;
        printf("RELO %s", strstr(line, "relo #"));
    }
    if (strstr(line, "no matching targets found") || strstr(line, "failed to relocate")) {
        unresolved++;
        printf("UNRESOLVED %s", strstr(line, "relo #") ? strstr(line, "relo #") : line);
    }
    fputs(line, stderr);
    return 0;
}

int main(int argc, char **argv)
{
    struct bpf_object *obj;
    int err;

    if (argc != 3) {
        fprintf(stderr, "usage: %s OBJECT.o BTF_FILE\n", argv[0]);
        return 64;
    }
    libbpf_set_print(on_print);
    LIBBPF_OPTS(bpf_object_open_opts, opts, .btf_custom_path = argv[2]);
    obj = bpf_object__open_file(argv[1], &opts);
    if (!obj) {
        printf("OPEN %d\n", -errno);
        return 3;
    }
#if LIBBPF_MAJOR_VERSION > 1 || (LIBBPF_MAJOR_VERSION == 1 && LIBBPF_MINOR_VERSION >= 6)
    err = bpf_object__prepare(obj);
    printf("STAGE prepare\n");
#else
    err = bpf_object__load(obj);
    printf("STAGE load\n");
#endif
    printf("PATCHED %d\nUNRESOLVED-COUNT %d\nRESULT %d\n", patched, unresolved, err);
    bpf_object__close(obj);
    if (unresolved)
        return 1;
    if (err == -EPERM && patched == 0)
        return 77; /* no BPF privilege, and libbpf 1.1 relocates only after a probe load */
    return err ? 2 : 0;
}
"""


def btf_types(btf: Path) -> list[dict[str, object]]:
    """Every type of a raw BTF file, as `bpftool -j btf dump file` lists them (void not listed)."""
    dump = run(["bpftool", "-j", "btf", "dump", "file", str(btf)]).stdout
    types: list[dict[str, object]] = json.loads(dump)["types"]
    return types


def struct_offsets(btf: Path, name: str) -> list[dict[str, int]]:
    """Each struct called name in a raw BTF file: member -> byte offset, as bpftool reads it."""
    return [
        {m["name"]: m["bits_offset"] // 8 for m in t["members"]}  # type: ignore[attr-defined]
        for t in btf_types(btf)
        if t["kind"] == "STRUCT" and t.get("name") == name
    ]


def _bpf_includes() -> list[str]:
    # <linux/bpf.h> includes <asm/types.h>, which lives under the multiarch dir.
    machine = os.uname().machine
    multiarch = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}.get(machine)
    return [f"-I/usr/include/{multiarch}"] if multiarch else []


def compile_bpf(directory: Path, name: str, source: str, *, debug: bool = True) -> Path:
    """clang -O2 [-g] -target bpf: debug False gives an object with no .BTF.ext."""
    directory.mkdir(parents=True, exist_ok=True)
    src = directory / f"{name}.bpf.c"
    src.write_text(source)
    obj = directory / f"{name}.bpf.o"
    flags = ["-g"] if debug else []
    run(
        ["clang", "-O2", *flags, "-target", "bpf", *_bpf_includes(), "-c", str(src), "-o", str(obj)]
    )
    return obj


def build_loader(directory: Path) -> Path:
    """The C loader, linked with libbpf through pkg-config."""
    directory.mkdir(parents=True, exist_ok=True)
    src = directory / "core_loader.c"
    src.write_text(LOADER)
    exe = directory / "core_loader"
    libs = run(["pkg-config", "--cflags", "--libs", "libbpf"]).stdout.decode().split()
    run(["gcc", "-O1", "-Wall", "-Werror", "-o", str(exe), str(src), *libs])
    return exe


@dataclass(frozen=True)
class LoadResult:
    code: int  # 0 relocated (and loaded on libbpf 1.1), 1 unresolved relocation, 77 no privilege
    relocations: tuple[str, ...]  # libbpf's "relo #N: patched insn ..." lines
    unresolved: tuple[str, ...]
    stdout: str
    stderr: str  # libbpf's whole log


_PREFIX = re.compile(r"^(RELO|UNRESOLVED) ")


def load_with_btf(loader: Path, obj: Path, btf: Path) -> LoadResult:
    proc = subprocess.run(
        [str(loader.resolve()), str(obj), str(btf)], capture_output=True, text=True, check=False
    )
    relos = tuple(
        _PREFIX.sub("", line) for line in proc.stdout.splitlines() if line.startswith("RELO ")
    )
    unresolved = tuple(
        _PREFIX.sub("", line) for line in proc.stdout.splitlines() if line.startswith("UNRESOLVED ")
    )
    return LoadResult(proc.returncode, relos, unresolved, proc.stdout, proc.stderr)
