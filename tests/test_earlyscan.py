"""archive/ scanned for render while the workers ask upstream (hub/earlyscan.py).

A real git checkout holding archive files; the scan is held against the one
render makes, and refused once the state records other digests.
"""

from __future__ import annotations

from pathlib import Path

from generator import gitops
from generator.archive import ArchiveScan
from generator.catalog import load_catalog
from generator.hub.earlyscan import EarlyScan
from generator.model import FileDigest
from generator.render import BEGIN_MARKER, END_MARKER, compose_hub
from generator.state import HubState
from generator.store import hubstore
from generator.store.setting import Blob, parse_store
from tests.kit.hubrepo import archive_checkout

UNAMES = ("5.4.0-1-generic", "5.4.0-2-generic")
REPO_ROOT = Path(__file__).resolve().parent.parent  # its catalog/


def _hub(tmp_path: Path) -> tuple[Path, HubState]:
    return archive_checkout(tmp_path, UNAMES)


def _render_scan(root: Path, state: HubState) -> ArchiveScan:
    return hubstore.hub_files(root, None, state, gitops.clean_blobs(root))


def test_the_early_scan_is_render_s_own_while_the_state_records_the_same(tmp_path: Path) -> None:
    root, state = _hub(tmp_path)
    early = EarlyScan.take(root, state)
    assert early is not None
    assert early.still(state) == _render_scan(root, state)
    assert [e.path.rsplit("/", 1)[1] for e in early.scan.entries] == [
        f"{u}.btf.tar.xz" for u in UNAMES
    ]


def test_other_recorded_digests_or_modules_make_render_scan_again(tmp_path: Path) -> None:
    root, state = _hub(tmp_path)
    early = EarlyScan.take(root, state)
    assert early is not None
    path = next(iter(state.files))
    kept = state.files[path]
    state.files[path] = FileDigest(kept.size, "0" * 64, kept.blob)
    assert early.still(state) is None
    state.files[path] = kept
    assert early.still(state) is not None
    state.module_files["archive/x/1/x86_64/u.modules.tar.xz"] = {"sha256": "0" * 64}
    assert early.still(state) is None


def test_an_oci_hub_has_no_early_scan(tmp_path: Path) -> None:
    root, state = _hub(tmp_path)
    state.store = parse_store("oci://127.0.0.1:5000/btfhub")
    early = EarlyScan.take(root, state)
    assert (early.scan, early.composed, early.still(state)) == (None, None, None)


def test_what_render_would_write_is_composed_early_and_dropped_with_scan_only(
    tmp_path: Path,
) -> None:
    root, state = _hub(tmp_path)
    (root / "README.md").write_text(f"# hub\n\n{BEGIN_MARKER}\n{END_MARKER}\n")
    catalog = load_catalog(REPO_ROOT)
    early = EarlyScan.take(root, state, catalog)
    assert early.composed == compose_hub(root, catalog, state, _render_scan(root, state))
    assert early.composed_for(state) == early.composed
    assert early.scan_only().composed is None
    # A file recorded since (a push to an OCI store records its location): composed again.
    state.locations["archive/ubuntu/20.04/x86_64/x.btf.tar.xz"] = Blob(
        "archive/ubuntu/20.04/x86_64/x.btf.tar.xz", 1, "0" * 64
    )
    assert early.composed_for(state) is None
    assert early.still(state) is None
    del state.locations["archive/ubuntu/20.04/x86_64/x.btf.tar.xz"]
    assert early.composed_for(state) == early.composed
    assert early.scan_only().still(state) == early.still(state)
    # A hub render refuses composes nothing early: render refuses it in its place.
    (root / "README.md").unlink()
    assert EarlyScan.take(root, state, catalog).composed is None
