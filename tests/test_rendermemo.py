"""A no-op's render known without composing (hub/rendermemo.py), on a real git checkout.

The memo is written only when what was composed is what the files hold, and
any input that changes (code, catalog, store, archive/, README.md,
index.json) or a memo that is not one makes the next run compose again.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from generator.catalog import load_catalog
from generator.hub import earlyscan, rendermemo
from generator.hub.earlyscan import EarlyScan
from generator.model import Catalog
from generator.render import BEGIN_MARKER, END_MARKER, README_FILE, RenderResult, compose_hub
from generator.state import INDEX_FILE, HubState, load_hub_state
from generator.store.setting import parse_store
from tests.kit.hubrepo import archive_checkout
from tests.kit.processes import file_size_limit

UNAMES = ("5.4.0-1-generic", "5.4.0-2-generic")
REPO_ROOT = Path(__file__).resolve().parent.parent  # its catalog/
UNCHANGED = RenderResult((), (), ())


def _settled_hub(tmp_path: Path) -> tuple[Path, Catalog, HubState]:
    """A hub whose README.md and index.json are what render writes, memo not yet kept."""
    root, state = archive_checkout(tmp_path, UNAMES)
    (root / README_FILE).write_text(f"# hub\n\n{BEGIN_MARKER}\n{END_MARKER}\n")
    catalog = load_catalog(REPO_ROOT)
    composed = EarlyScan.take(root, state, catalog).composed
    assert composed is not None
    for name, data in composed.outputs.items():
        (root / name).write_bytes(data)
    return root, catalog, load_hub_state(root)


@pytest.fixture
def composing(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the times the early scan composes."""
    calls: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return compose_hub(*args, **kwargs)

    monkeypatch.setattr(earlyscan, "compose_hub", counted)
    return calls


def test_files_found_settled_are_taken_as_they_are_by_the_next_run(
    tmp_path: Path, composing: list[int]
) -> None:
    root, catalog, state = _settled_hub(tmp_path)
    composing.clear()
    first = EarlyScan.take(root, state, catalog)
    assert composing == [1]
    assert not (root / rendermemo.MEMO).exists()
    first.settled(root, UNCHANGED)
    assert (root / rendermemo.MEMO).is_file()

    again = EarlyScan.take(root, state, catalog)
    assert composing == [1]  # not composed again
    assert again.composed == first.composed
    assert again.composed is not None
    assert again.composed.outputs == {
        name: (root / name).read_bytes() for name in (README_FILE, INDEX_FILE)
    }
    # Settled again: the memo is not rewritten.
    mtime = (root / rendermemo.MEMO).stat().st_mtime_ns
    again.settled(root, UNCHANGED)
    assert (root / rendermemo.MEMO).stat().st_mtime_ns == mtime


def test_a_render_that_changed_a_file_keeps_no_memo(tmp_path: Path) -> None:
    root, catalog, state = _settled_hub(tmp_path)
    early = EarlyScan.take(root, state, catalog)
    for changed in (README_FILE, INDEX_FILE):
        early.settled(root, RenderResult((changed,), (), ()))
        assert not (root / rendermemo.MEMO).exists()
    # A new signature alone leaves both files as composed.
    early.settled(root, RenderResult(("index.json.asc",), (), ()))
    assert (root / rendermemo.MEMO).exists()


def _memo_holds(root: Path, catalog: Catalog, state: HubState) -> bool:
    early = EarlyScan.take(root, state, catalog)
    assert early.inputs is not None
    return rendermemo.found(root, early.inputs) is not None


def test_every_input_that_changes_makes_the_run_compose_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, catalog, state = _settled_hub(tmp_path)
    EarlyScan.take(root, state, catalog).settled(root, UNCHANGED)
    assert _memo_holds(root, catalog, state)

    # The catalog: a distribution's title.
    first = catalog.distributions[0]
    retitled = dataclasses.replace(first, title=first.title + " (new)")
    other = Catalog((retitled, *catalog.distributions[1:]))
    assert not _memo_holds(root, other, state)
    # Another store (an OCI hub's files are its state's locations).
    oci = load_hub_state(root)
    oci.store = parse_store("oci://127.0.0.1:5000/btfhub")
    assert not _memo_holds(root, catalog, oci)
    # btfhub's code.
    monkeypatch.setattr(rendermemo, "_code", lambda: "another btfhub")
    assert not _memo_holds(root, catalog, state)
    monkeypatch.undo()
    assert _memo_holds(root, catalog, state)

    # A file in archive/ (not yet committed: hashed by the scan).
    path = root / "archive/ubuntu/20.04/x86_64" / f"{UNAMES[0]}.btf.tar.xz"
    kept = path.read_bytes()
    path.write_bytes(b"rebuilt")
    assert not _memo_holds(root, catalog, state)
    path.write_bytes(kept)
    assert _memo_holds(root, catalog, state)
    # README.md: a hand edit, outside the tables or in them.
    for name in (README_FILE, INDEX_FILE):
        text = (root / name).read_bytes()
        (root / name).write_bytes(text + b"\n")
        assert not _memo_holds(root, catalog, state)
        (root / name).write_bytes(text)
    assert _memo_holds(root, catalog, state)


def test_an_oci_hub_s_memo_is_its_store_s(tmp_path: Path) -> None:
    root, catalog, _ = _settled_hub(tmp_path)
    state = HubState(store=parse_store("oci://127.0.0.1:5000/btfhub"))
    early = EarlyScan.take(root, state, catalog)
    assert early.composed is not None
    for name, data in early.composed.outputs.items():
        (root / name).write_bytes(data)
    EarlyScan.take(root, state, catalog).settled(root, UNCHANGED)
    assert _memo_holds(root, catalog, state)
    elsewhere = HubState(store=parse_store("oci://127.0.0.1:5000/elsewhere"))
    assert not _memo_holds(root, catalog, elsewhere)


@pytest.mark.parametrize(
    "memo",
    [b"", b"not json", b"[]", b'{"key": 1}', b'{"key": "%s", "unassigned": [1]}', b"\xff"],
)
def test_a_memo_that_is_not_one_is_none(tmp_path: Path, memo: bytes) -> None:
    root, catalog, state = _settled_hub(tmp_path)
    early = EarlyScan.take(root, state, catalog)
    assert early.inputs is not None
    early.settled(root, UNCHANGED)
    kept = (root / rendermemo.MEMO).read_bytes()
    if b"%s" in memo:  # the right key, a wrong list
        key = rendermemo.orjson.loads(kept)["key"]
        memo = memo.replace(b"%s", key.encode())
    (root / rendermemo.MEMO).write_bytes(memo)
    assert rendermemo.found(root, early.inputs) is None
    assert EarlyScan.take(root, state, catalog).composed == early.composed


def test_a_memo_that_cannot_be_written_is_no_error(tmp_path: Path) -> None:
    root, catalog, state = _settled_hub(tmp_path)
    early = EarlyScan.take(root, state, catalog)
    assert early.inputs is not None
    with file_size_limit(16):  # a full disk: StorageError from atomic_write
        early.settled(root, UNCHANGED)
    assert rendermemo.found(root, early.inputs) is None
    assert list((root / rendermemo.MEMO.parent).glob("*.tmp")) == []
    (root / rendermemo.MEMO).mkdir()  # a directory where the file goes
    early.settled(root, UNCHANGED)
    assert rendermemo.found(root, early.inputs) is None


def test_the_inputs_digest_is_the_same_in_another_process(tmp_path: Path) -> None:
    """A memo is read by the next run, another process with other string hashes:
    nothing in the digest may depend on them (a set's order would)."""
    root, state = archive_checkout(tmp_path, UNAMES)
    scan = EarlyScan.take(root, state).scan
    here = rendermemo.inputs_digest(load_catalog(REPO_ROOT), state.store, scan)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from generator import gitops\n"
        "from generator.catalog import load_catalog\n"
        "from generator.hub import rendermemo\n"
        "from generator.hub.earlyscan import EarlyScan\n"
        "from generator.model import FileDigest\n"
        "from generator.state import HubState\n"
        "from generator.store import hubstore\n"
        "root = Path(sys.argv[1])\n"
        "blobs = gitops.clean_blobs(root)\n"
        "state = HubState()\n"
        "for e in hubstore.hub_files(root, None, state, blobs).entries:\n"
        "    state.files[e.path] = FileDigest(e.size, e.sha256, blobs[e.path])\n"
        "scan = EarlyScan.take(root, state).scan\n"
        "print(rendermemo.inputs_digest(load_catalog(Path(sys.argv[2])), state.store, scan))\n"
    )
    for seed in ("1", "2"):
        there = subprocess.run(
            [sys.executable, "-c", script, str(root), str(REPO_ROOT)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert there == here
