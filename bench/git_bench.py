"""What git through GitPython (generator/gitops/) costs a sync, against plain git.

A hub of N archive files (default 20,000, the public hub's scale), all
committed. Each figure is the median of --runs rounds, set against a
baseline measured in the same run:

1. start-up: a fresh interpreter importing GitPython against one that
   imports nothing (and, for scale, one importing all a sync imports);
2. the no-op sync's git work: `clean_blobs` + `hub_changes` against the
   same git commands spawned directly (`ls-files -s`, `diff-files`,
   `status`), as the subprocess runner before GitPython did;
3. a one-kernel sync's commit: `commit_paths` of one new archive file and
   README.md against `git add` + `git commit` of the same change;
4. what is left running: git processes still children of the bench after
   each step (GitPython's persistent `cat-file` ones included).

Run: .venv/bin/python bench/git_bench.py [--files N] [--runs R]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.gitops import clean_blobs, commit_paths, hub_changes

AUTHOR = "Bench <bench@example.invalid>"


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True)
    return done.stdout


def make_hub(root: Path, files: int) -> None:
    git(root, "init", "-q", "-b", "main")
    for i in range(files):
        path = root / "archive" / f"d{i % 20}" / f"r{i % 97}" / "x86_64" / f"k{i}.btf.tar.xz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"btf {i}\n".encode())
    (root / "README.md").write_text("# hub\n")
    (root / "index.json").write_text("{}\n")
    git(root, "add", "-A")
    git(root, "-c", "user.name=Bench", "-c", "user.email=b@example.invalid", "commit", "-qm", "hub")


def cpu_seconds() -> float:
    """User + system time of this process and of the children it has waited for."""
    own, waited = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + waited.ru_utime + waited.ru_stime


def median_seconds(runs: int, step: Callable[[], object]) -> tuple[float, float]:
    """Median wall and CPU seconds of `step` (CPU is less bent by a busy machine)."""
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), cpu_seconds()
        step()
        walls.append(time.perf_counter() - wall)
        cpus.append(cpu_seconds() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def fresh_import(module: str) -> Callable[[], object]:
    return lambda: subprocess.run([sys.executable, "-c", f"import {module}"], check=True)


def git_children() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and "git" in cmdline:
            found.append(cmdline)
    return found


def row(label: str, mine: tuple[float, float], base: tuple[float, float], base_label: str) -> None:
    for kind, m, b in (("wall", mine[0], base[0]), ("CPU", mine[1], base[1])):
        print(
            f"{label:<34} {kind:<4} {m * 1000:7.0f} ms   {base_label:<36} {b * 1000:7.0f} ms"
            f"   {m / b:5.2f}x  ({(m - b) * 1000:+.0f} ms)"
        )


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    os.environ["BTFHUB_GIT_AUTHOR"] = AUTHOR
    with tempfile.TemporaryDirectory(prefix="git-bench.") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        make_hub(root, args.files)
        print(f"hub of {args.files} archive files, made in {time.perf_counter() - start:.1f} s")
        print(f"load average at the start: {os.getloadavg()[0]:.2f}; median of {args.runs} runs")
        left: list[str] = []

        everything = median_seconds(args.runs, fresh_import("generator.hub.publish"))
        row(
            "start-up: import git (GitPython)",
            median_seconds(args.runs, fresh_import("git")),
            median_seconds(args.runs, fresh_import("sys")),
            "start-up: an interpreter alone",
        )
        print(
            f"(a sync's imports, GitPython included: wall {everything[0] * 1000:.0f} ms, ", end=""
        )
        print(f"CPU {everything[1] * 1000:.0f} ms)")

        def noop_gitops() -> None:
            assert clean_blobs(root) and not hub_changes(root)
            left.extend(git_children())

        def noop_plain() -> None:
            git(root, "ls-files", "-s", "-z", "--", "archive")
            git(root, "diff-files", "--name-only", "-z", "--", "archive")
            git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", "archive")

        row(
            "no-op: clean_blobs + hub_changes",
            median_seconds(args.runs, noop_gitops),
            median_seconds(args.runs, noop_plain),
            "no-op: ls-files, diff-files, status",
        )

        counter = iter(range(10**6))

        def one_file(name: str) -> list[str]:
            n = next(counter)
            new = root / "archive" / "new" / f"{name}{n}.btf.tar.xz"
            new.parent.mkdir(parents=True, exist_ok=True)
            new.write_bytes(f"{name} {n}\n".encode())
            (root / "README.md").write_text(f"# hub {name} {n}\n")
            return [new.relative_to(root).as_posix(), "README.md"]

        def commit_gitops() -> None:
            assert commit_paths(root, one_file("g"), "btfhub: add 1 BTF file") is not None
            left.extend(git_children())

        def commit_plain() -> None:
            git(root, "add", "--", *one_file("p"))
            git(root, "-c", "user.name=B", "-c", "user.email=b@e", "commit", "-qm", "add 1")

        row(
            "commit one kernel: commit_paths",
            median_seconds(args.runs, commit_gitops),
            median_seconds(args.runs, commit_plain),
            "commit one kernel: git add + commit",
        )
        print(f"git processes left running after a step: {len(left)} {left}")
        return 1 if left else 0


if __name__ == "__main__":
    sys.exit(cli())
