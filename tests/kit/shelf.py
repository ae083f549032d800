"""Packages built once per test run: dpkg-deb and rpmbuild run once for each distinct package.

build_deb() and build_rpm() take the demokit builders' arguments and return
the same path. The first call for a package (its name, fields, compression
and the bytes of every file in it) builds it onto the run's shelf, a
directory conftest opens that every xdist worker of the run shares (each
package built under a lock, by whichever worker asks first); every call,
the first included, then copies the shelf's file where the builder would
have written it, so a test may cut or corrupt its copy freely. Without an
open shelf (bench scripts) they build as the demokit does.

once() is the same for any other read-only input of the run (the fixture ELF).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import inspect
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec

from generator.demokit import debpkg, rpmpkg
from generator.demokit.signing import Signer, default_signer

P = ParamSpec("P")
_shelf: list[Path] = []  # the open shelf's directory, if any


def open_shelf(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    _shelf[:] = [directory]


def close_shelf() -> None:
    _shelf.clear()


@contextmanager
def _locked(lock: Path) -> Iterator[None]:
    """lock held by this process alone (the other workers of the run wait)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def once(directory: Path, build: Callable[[Path], Path]) -> Path:
    """build(directory)'s path, built by the first worker of the run to ask, read by all.

    A build that failed leaves no mark, so the next caller builds again.
    """
    done = directory.with_name(directory.name + ".done")
    with _locked(directory.with_name(directory.name + ".lock")):
        if done.is_file():
            return Path(done.read_text())
        if directory.exists():
            shutil.rmtree(directory)  # a build that failed half-way
        built = build(directory)
        done.write_text(str(built))
        return built


def _keyed(value: object) -> object:
    """A builder's argument as the shelf's key holds it: file contents by their digest."""
    if isinstance(value, Path):
        with value.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    if isinstance(value, dict):
        return {str(k): _keyed(v) for k, v in value.items()}
    if isinstance(value, Signer):
        return str(value.home)  # a signer's home is its own
    return value


def _shelved(
    builder: Callable[P, Path], out_name: Callable[[dict[str, Any]], str]
) -> Callable[P, Path]:
    """`builder` (its first argument the directory to build in), once per distinct package."""
    signature = inspect.signature(builder)

    @functools.wraps(builder)
    def build(*args: P.args, **kwargs: P.kwargs) -> Path:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        tmpdir = Path(arguments.pop("tmpdir"))
        if arguments.get("signer", False) is None:
            # The signer is part of the package: each worker has its own default key.
            arguments["signer"] = default_signer()
        out = tmpdir / out_name(arguments)
        if not _shelf:
            return builder(*args, **kwargs)
        key = [builder.__name__, {name: _keyed(v) for name, v in arguments.items()}]
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
        shelved = once(
            _shelf[0] / digest,
            lambda directory: builder(directory, **arguments),  # type: ignore[arg-type]
        )
        assert shelved.name == out.name, (shelved, out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shelved, out)
        return out

    return build


build_deb = _shelved(debpkg.build_deb, lambda a: f"{a['package']}_{a['version']}_{a['arch']}.deb")
build_rpm = _shelved(
    rpmpkg.build_rpm, lambda a: f"{a['name']}-{a['version']}-{a['release']}.{a['arch']}.rpm"
)
