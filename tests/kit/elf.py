"""A large ELF for tests that need pahole to take seconds (kill safety, timing)."""

from __future__ import annotations

from pathlib import Path

from generator.demokit.tools import run


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


def build_large_elf(directory: Path, *, copies: int = 100, types: int = 3000) -> Path:
    """An ELF with `copies` compile units of `types` structs each: pahole takes seconds on it.

    100 copies of 3,000 types: about 160 MB, most of it DWARF, and some
    5 s of pahole on one core; the BTF stays a few MB (types deduplicate).
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "big.c").write_text(large_source(types))
    (directory / "main.c").write_text("int main(void) { return 0; }\n")
    run(["gcc", "-g", "-O0", "-c", "-o", str(directory / "big.o"), str(directory / "big.c")])
    run(["gcc", "-g", "-O0", "-c", "-o", str(directory / "main.o"), str(directory / "main.c")])
    elf = directory / "vmlinux-large"
    run(["gcc", "-o", str(elf), str(directory / "main.o"), *[str(directory / "big.o")] * copies])
    return elf
