"""cilium/ebpf reading a hub BTF file: a small Go program built at test time, offline.

Deliverable 4 of issue 16: the merged file (vmlinux's types and the
modules') must be a spec cilium/ebpf accepts, as it is a btf_custom_path
libbpf accepts (tests/kit/bpfobj.py). The program is built against Debian's
golang-github-cilium-ebpf-dev (0.9.1, installed by scripts/setup.sh) in
GOPATH mode over /usr/share/gocode: no module download, no network, the
build cache in the caller's directory, seeded from the one scripts/setup.sh
warms in .tools/ (see seeded_cache). It does two things with the file,
each with cilium's own API and nothing of the kernel's:

- `structs FILE NAME`: btf.LoadSpec(FILE), then every struct called NAME
  (Spec.AnyTypesByName) with its members' byte offsets, and how many types
  the spec holds.
- `relocate FILE OBJECT.o`: btf.LoadSpec(FILE) as the target,
  ebpf.LoadCollectionSpec(OBJECT.o) for the programs, their CO-RE
  relocations (btf.CORERelocationMetadata) relocated by btf.CORERelocate
  against the target and applied to the instructions (COREFixup.Apply), as
  cilium does inside NewProgram before the kernel sees anything. So unlike
  libbpf 1.1, no BPF privilege is needed and the kernel's verifier is not
  involved: what is checked is cilium's CO-RE calculation.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from generator.demokit.tools import run

# Where Debian's golang-*-dev packages put their sources (GOPATH layout).
GOCODE = Path("/usr/share/gocode")
CILIUM = GOCODE / "src" / "github.com" / "cilium" / "ebpf"
# The build cache scripts/setup.sh warms (git-ignored, beside the project's pahole):
# Go's standard library and cilium/ebpf compiled, ~30 CPU-s a test session saves.
WARM_CACHE = Path(__file__).resolve().parents[2] / ".tools" / "go-cache"
# The program calls CORERelocate as 0.9 declares it; other versions may declare it otherwise.
API = "func CORERelocate(local, target *Spec, relos []*CORERelocation)"

PROGRAM = r"""
// btfcheck reads a raw BTF file with cilium/ebpf (tests/kit/cilium.py).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

type member struct {
	Name   string `json:"name"`
	Offset uint32 `json:"offset"`
}

type structs struct {
	Types   int        `json:"types"`
	Structs [][]member `json:"structs"`
}

type fixup struct {
	Program string `json:"program"`
	Insn    int    `json:"insn"`
	Fixup   string `json:"fixup"`
}

func findStructs(spec *btf.Spec, name string) (structs, error) {
	result := structs{Structs: [][]member{}}
	for iter := spec.Iterate(); iter.Next(); {
		result.Types++
	}
	types, err := spec.AnyTypesByName(name)
	if errors.Is(err, btf.ErrNotFound) {
		return result, nil
	}
	if err != nil {
		return result, err
	}
	for _, typ := range types {
		s, ok := typ.(*btf.Struct)
		if !ok {
			continue
		}
		members := []member{}
		for _, m := range s.Members {
			members = append(members, member{m.Name, uint32(m.Offset) / 8})
		}
		result.Structs = append(result.Structs, members)
	}
	return result, nil
}

// relocate does what cilium/ebpf's NewProgram does before loading
// (linker.go's applyRelocations), program by program, with a given target.
func relocate(target *btf.Spec, object string) ([]fixup, error) {
	coll, err := ebpf.LoadCollectionSpec(object)
	if err != nil {
		return nil, err
	}
	names := []string{}
	for name := range coll.Programs {
		names = append(names, name)
	}
	sort.Strings(names)
	out := []fixup{}
	for _, name := range names {
		prog := coll.Programs[name]
		var relos []*btf.CORERelocation
		var at []int
		for i := range prog.Instructions {
			if relo := btf.CORERelocationMetadata(&prog.Instructions[i]); relo != nil {
				relos = append(relos, relo)
				at = append(at, i)
			}
		}
		if len(relos) == 0 {
			continue
		}
		fixups, err := btf.CORERelocate(prog.BTF, target, relos)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for i := range fixups {
			if err := fixups[i].Apply(&prog.Instructions[at[i]]); err != nil {
				return nil, fmt.Errorf("%s: apply %s: %w", name, &fixups[i], err)
			}
			out = append(out, fixup{name, at[i], fixups[i].String()})
		}
	}
	return out, nil
}

func main() {
	if len(os.Args) != 4 || (os.Args[1] != "structs" && os.Args[1] != "relocate") {
		fmt.Fprintln(os.Stderr, "usage: btfcheck structs BTF STRUCT | relocate BTF OBJECT.o")
		os.Exit(64)
	}
	spec, err := btf.LoadSpec(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "load spec:", err)
		os.Exit(2)
	}
	var result interface{}
	if os.Args[1] == "structs" {
		result, err = findStructs(spec, os.Args[3])
	} else {
		result, err = relocate(spec, os.Args[3])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, os.Args[1]+":", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(result); err != nil {
		fmt.Fprintln(os.Stderr, "write:", err)
		os.Exit(1)
	}
}
"""


def missing() -> str | None:
    """Why the program cannot be built here, or None."""
    if shutil.which("go") is None:
        return "no Go toolchain (golang-go, scripts/setup.sh)"
    core = CILIUM / "btf" / "core.go"
    if not core.is_file():
        return (
            f"no cilium/ebpf sources in {CILIUM} (golang-github-cilium-ebpf-dev, scripts/setup.sh)"
        )
    if API not in core.read_text(errors="replace"):
        return f"cilium/ebpf in {CILIUM} is not 0.9's API (no {API}...)"
    return None


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


def seeded_cache(directory: Path, warm: Path = WARM_CACHE) -> Path:
    """A build cache in directory holding what the warm cache holds (empty without one).

    The build writes only into directory: the warm cache's files are hard
    links (Go adds new entries as new files and never rewrites an entry that
    matches), so a test leaves nothing outside its temp dir. The program is
    still compiled from PROGRAM on every build; only what it imports comes
    from the cache, and Go's own keys tell a stale entry (another Go or
    cilium) from a usable one.
    """
    cache = directory / "cache"
    if warm.is_dir():
        shutil.copytree(warm, cache, copy_function=_link_or_copy)
    else:
        cache.mkdir()
    return cache


def build_btfcheck(directory: Path, cache: Path | None = None) -> Path:
    """The program, built offline in GOPATH mode; GOPATH's own part in directory.

    The build cache is `cache`, else one seeded from the warm cache in directory.
    """
    if cache is None:
        cache = seeded_cache(directory)
    gopath = directory / "gopath"
    src = gopath / "src" / "btfcheck"
    src.mkdir(parents=True)
    (src / "main.go").write_text(PROGRAM)
    exe = directory / "btfcheck"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(directory),
        "GO111MODULE": "off",
        "GOPATH": f"{gopath}{os.pathsep}{GOCODE}",
        "GOCACHE": str(cache),
        "GOFLAGS": "-trimpath",
        "GOENV": "off",
        "GOPROXY": "off",
        "CGO_ENABLED": "0",  # pure Go: no C compiler, a static binary
        "TMPDIR": str(directory),
    }
    build = ["go", "build", "-o", str(exe), "btfcheck"]
    run(["env", "-i", *(f"{k}={v}" for k, v in env.items()), *build], cwd=directory)
    return exe


def warm(directory: Path = WARM_CACHE) -> None:
    """Build the program once with directory as the cache (scripts/setup.sh)."""
    directory.mkdir(parents=True, exist_ok=True)
    scratch = directory.parent / f"{directory.name}.build"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        build_btfcheck(scratch, cache=directory)
    finally:
        shutil.rmtree(scratch)


class CiliumError(Exception):
    """The program refused the file or the object: its exit code and what it said."""

    def __init__(self, code: int, stderr: str) -> None:
        super().__init__(f"btfcheck exited {code}: {stderr.strip()}")
        self.code = code
        self.stderr = stderr


def _ask(exe: Path, *args: str) -> object:
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CiliumError(proc.returncode, proc.stderr)
    return json.loads(proc.stdout)


@dataclass(frozen=True)
class SpecStructs:
    types: int  # every type of the spec cilium loaded, void included
    structs: tuple[dict[str, int], ...]  # each struct of the name: member -> byte offset


def cilium_structs(exe: Path, btf: Path, name: str) -> SpecStructs:
    answer = _ask(exe, "structs", str(btf), name)
    assert isinstance(answer, dict)
    return SpecStructs(
        answer["types"],
        tuple({m["name"]: m["offset"] for m in s} for s in answer["structs"]),
    )


@dataclass(frozen=True)
class Fixup:
    program: str
    insn: int
    kind: str  # cilium's name of the relocation kind, e.g. byte_off
    local: int | None  # None: poisoned (no target type matched)
    target: int | None


_FIXUP = re.compile(r"^(?P<kind>[^=]+)=(?:(?P<local>\d+)->(?P<target>\d+)|poison)$")


def cilium_relocate(exe: Path, btf: Path, obj: Path) -> tuple[Fixup, ...]:
    """The CO-RE fixups cilium/ebpf computes for obj's programs against btf, in order."""
    answer = _ask(exe, "relocate", str(btf), str(obj))
    assert isinstance(answer, list)
    fixups = []
    for f in answer:
        m = _FIXUP.match(f["fixup"])
        assert m is not None, f"unexpected fixup {f['fixup']!r}"
        local, target = m["local"], m["target"]
        fixups.append(
            Fixup(
                f["program"],
                f["insn"],
                m["kind"],
                int(local) if local is not None else None,
                int(target) if target is not None else None,
            )
        )
    return tuple(fixups)


if __name__ == "__main__":
    # scripts/setup.sh: `python -m tests.kit.cilium` warms .tools/go-cache where Go and cilium are.
    reason = missing()
    if reason is not None:
        print(f"setup: {reason}: no Go build cache to warm", file=sys.stderr)
    else:
        warm()
