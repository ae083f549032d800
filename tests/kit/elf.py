"""ELF files for tests: a large one for pahole to take seconds (kill safety, timing), and
one linked as a kernel is (relocation sections kept) for the multi-block xz tests."""

from __future__ import annotations

from pathlib import Path

from generator.demokit.tools import run

# The multi-block xz tests' blocks: Debian 12's dpkg makes 24 MiB ones, these are small
# enough for a test's package, and many span relocation sections only.
XZ_BLOCK = 64 << 10
MULTI_BLOCK_XZ = ("-T2", f"--block-size={XZ_BLOCK}")
POINTERS = 30_000  # 24 bytes of .rela.data each: 720 KB, a dozen whole blocks


def build_relocated_elf(directory: Path) -> Path:
    """A gcc -g executable linked with --emit-relocs, as a kernel is: mostly .rela.* bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "relocated.c"
    table = ",".join(["&base"] * POINTERS)
    source.write_text(
        "struct item { int id; const char *name; struct item *next; };\n"
        "static struct item base;\n"
        f"struct item *table[{POINTERS}] = {{{table}}};\n"
        "int main(void) { return table[0] == 0; }\n"
    )
    elf = directory / "vmlinux-relocated"
    run(["gcc", "-g", "-O0", "-no-pie", "-Wl,--emit-relocs", "-o", str(elf), str(source)])
    return elf


def large_source(types: int) -> str:
    """C source with `types` interlinked structs and a function over each: a lot of DWARF.

    Everything is static, so one object file can be linked many times over
    (build_large_elf) to make DWARF as big as a kernel's without compiling
    as much.
    """
    parts = []
    for i in range(types):
        members = "".join(
            f"  long f{j}_{i}; struct big{(i * 7 + j) % types} *p{j};\n" for j in range(12)
        )
        parts.append(
            f"struct big{i};\nstruct big{i} {{\n{members}}};\n"
            f"static struct big{i} g{i} __attribute__((used));\n"
            f"static __attribute__((used, noinline)) long fn{i}"
            f"(struct big{i} *a, struct big{(i + 1) % types} *b)"
            f" {{ return a->f0_{i} + (long)b; }}\n"
        )
    return "".join(parts)


def build_large_elf(
    directory: Path, *, copies: int = 100, types: int = 3000, padding: int = 0
) -> Path:
    """An ELF with `copies` compile units of `types` structs each: pahole takes seconds on it.

    100 copies of 3,000 types: about 160 MB, most of it DWARF, and some
    5 s of pahole on one core; the BTF stays a few MB (types deduplicate).
    padding: bytes of zeros in a section of their own (.pad), for a file as
    large as a kernel's that pahole, reading DWARF only, spends no time on.
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "big.c").write_text(large_source(types))
    (directory / "main.c").write_text("int main(void) { return 0; }\n")
    run(["gcc", "-g", "-O0", "-c", "-o", str(directory / "big.o"), str(directory / "big.c")])
    run(["gcc", "-g", "-O0", "-c", "-o", str(directory / "main.o"), str(directory / "main.c")])
    elf = directory / "vmlinux-large"
    run(["gcc", "-o", str(elf), str(directory / "main.o"), *[str(directory / "big.o")] * copies])
    if padding:
        pad = directory / "pad"
        with pad.open("wb") as f:
            f.truncate(padding)
        run(["objcopy", "--add-section", f".pad={pad}", str(elf)])
        pad.unlink()
    return elf


def unit_source(unit: int, types: int) -> str:
    """One compile unit: structs shared by every unit, its own ones, and a name that clashes.

    Shared structs deduplicate into one; `struct clash` has a different
    layout in each unit, so all of them stay and their ids depend on the
    order the units are encoded in: what a threaded pahole must keep stable.
    """
    shared = "".join(
        f"struct shared{i} {{ long a; struct shared{(i + 1) % types} *next; }};\n"
        for i in range(types)
    )
    own = "".join(
        f"struct u{unit}_t{i} {{ int x[{i + 1}]; struct shared{i} *s; struct clash *c; }};\n"
        f"__attribute__((used)) struct u{unit}_t{i} u{unit}_g{i};\n"
        for i in range(types)
    )
    clash = f"struct clash {{ char pad[{unit + 1}]; }};\n"
    return shared + clash + own + f"int unit{unit}(struct shared0 *p) {{ return p != 0; }}\n"


def build_many_units_elf(directory: Path, *, units: int = 24, types: int = 150) -> Path:
    """An ELF of `units` different compile units (unit_source): threads encode them apart."""
    directory.mkdir(parents=True, exist_ok=True)
    objects = []
    for unit in range(units):
        source = directory / f"unit{unit}.c"
        source.write_text(unit_source(unit, types))
        objects.append(directory / f"unit{unit}.o")
        run(["gcc", "-g", "-O0", "-c", "-o", str(objects[-1]), str(source)])
    (directory / "main.c").write_text("int main(void) { return 0; }\n")
    elf = directory / "vmlinux-units"
    run(["gcc", "-g", "-o", str(elf), str(directory / "main.c"), *map(str, objects)])
    return elf
