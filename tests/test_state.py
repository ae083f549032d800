"""The hub state kept in index.json: recording, loading, round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.errors import BtfhubError
from generator.fsutil import dump_json
from generator.index import build_index
from generator.model import (
    Catalog,
    Column,
    Distribution,
    KernelId,
    KernelOutcome,
    KernelPackage,
    KernelState,
    Release,
    ReleaseArch,
)
from generator.state import HubState, KnownKernel, load_hub_state

FOCAL = ReleaseArch("ubuntu", "focal", "x86_64")
U_R = ReleaseArch("u", "r", "x86_64")


def failed(kernel: KernelId) -> KernelOutcome:
    return KernelOutcome(kernel, KernelState.FAILED, "no vmlinux in the package")


def ships(kernel: KernelId) -> KernelOutcome:
    return KernelOutcome(kernel, KernelState.SHIPS_BTF)


def pkg(uname: str, arch: str = "x86_64", name: str | None = None) -> KernelPackage:
    name = name or f"linux-image-unsigned-{uname}-dbgsym"
    return KernelPackage(
        uname=uname,
        arch=arch,
        name=name,
        version="5.4.0-42.46",
        url=f"http://mirror.example/pool/{name}.ddeb",
        size=123,
        sha256="ab" * 32,
        repository="ddebs",
        filename=f"pool/main/l/linux/{name}.ddeb",
        format="deb",
    )


def test_an_incomplete_listing_updates_and_forgets_nothing() -> None:
    """Listed without a failed fallback source: what it lacks may be the fallback's."""
    d = HubState()
    d.record_listing(FOCAL, [pkg("5.4.0-1"), pkg("5.4.0-2")])
    d.record_outcome(failed(FOCAL.kernel("5.4.0-1")))
    d.record_listing(FOCAL, [pkg("5.4.0-2", name="newer"), pkg("5.4.0-3")], complete=False)
    listed = d.known(FOCAL)
    assert listed is not None and sorted(listed) == ["5.4.0-1", "5.4.0-2", "5.4.0-3"]
    assert listed["5.4.0-2"].package_name == "newer"
    assert d.outcomes() == {FOCAL.kernel("5.4.0-1"): failed(FOCAL.kernel("5.4.0-1"))}


def test_record_listing_replaces_the_list_and_keeps_outcomes_of_listed_kernels() -> None:
    d = HubState()
    d.record_listing(FOCAL, [pkg("5.4.0-1"), pkg("5.4.0-2")])
    d.record_outcome(failed(FOCAL.kernel("5.4.0-1")))
    d.record_outcome(ships(FOCAL.kernel("5.4.0-2")))
    d.record_listing(FOCAL, [pkg("5.4.0-2"), pkg("5.4.0-3")])
    listed = d.known(FOCAL)
    assert listed is not None and sorted(listed) == ["5.4.0-2", "5.4.0-3"]
    assert d.outcomes() == {FOCAL.kernel("5.4.0-2"): ships(FOCAL.kernel("5.4.0-2"))}
    # The persisted package never carries the (mirror-dependent) URL.
    assert listed["5.4.0-3"] == KnownKernel(
        uname="5.4.0-3",
        package_name="linux-image-unsigned-5.4.0-3-dbgsym",
        version="5.4.0-42.46",
        repository="ddebs",
        filename="pool/main/l/linux/linux-image-unsigned-5.4.0-3-dbgsym.ddeb",
        package_size=123,
        package_sha256="ab" * 32,
        outcome=None,
    )
    # Other lists are untouched; an empty listing is still "discovered".
    d.record_listing(ReleaseArch("ubuntu", "focal", "arm64"), [])
    assert d.known(ReleaseArch("ubuntu", "focal", "arm64")) == {}
    assert d.known(ReleaseArch("ubuntu", "bionic", "x86_64")) is None


def test_the_first_package_of_a_uname_wins() -> None:
    d = HubState()
    d.record_listing(U_R, [pkg("5.4.0-1", name="unsigned"), pkg("5.4.0-1", name="signed")])
    assert d.lists[U_R]["5.4.0-1"].package_name == "unsigned"


def test_record_outcome_refuses_unlisted_kernels_and_non_outcomes() -> None:
    d = HubState()
    d.record_listing(U_R, [pkg("5.4.0-1")])
    with pytest.raises(KeyError):
        d.record_outcome(failed(U_R.kernel("5.4.0-9")))
    with pytest.raises(KeyError):
        d.record_outcome(failed(KernelId("u", "r", "arm64", "5.4.0-1")))
    with pytest.raises(ValueError):
        KernelOutcome(U_R.kernel("5.4.0-1"), KernelState.MISSING)  # not an outcome
    with pytest.raises(ValueError):
        d.record_listing(U_R, [pkg("5.4.0-1", arch="arm64")])
    d.record_outcome(failed(U_R.kernel("5.4.0-1")))
    assert d.outcomes() == {U_R.kernel("5.4.0-1"): failed(U_R.kernel("5.4.0-1"))}
    d.record_outcome(KernelOutcome(U_R.kernel("5.4.0-1"), KernelState.ARCHIVED))  # built since
    assert d.outcomes() == {}


def _catalog() -> Catalog:
    release = Release(
        distro="ubuntu",
        id="focal",
        name="Focal",
        directory="20.04",
        kernel="5.4.0",
        series=("5.4.0",),
        bpf=True,
        btf=False,
        hub=True,
        architectures=("x86_64", "arm64"),
        sources=(),
    )
    return Catalog(
        (
            Distribution(
                id="ubuntu",
                title="Ubuntu",
                archive_dir="ubuntu",
                columns=(Column("Ubuntu", "name"),),
                releases=(release,),
                repositories=(),
            ),
        )
    )


def test_hub_state_survives_a_trip_through_index_json(tmp_path: Path) -> None:
    d = HubState()
    d.record_listing(FOCAL, [pkg("5.4.0-1"), pkg("5.4.0-2")])
    d.record_listing(ReleaseArch("ubuntu", "focal", "arm64"), [])
    d.record_outcome(failed(FOCAL.kernel("5.4.0-1")))
    d.record_outcome(ships(FOCAL.kernel("5.4.0-2")))
    data = dump_json(build_index(_catalog(), d, []))
    (tmp_path / "index.json").write_bytes(data)
    loaded = load_hub_state(tmp_path)
    assert loaded.lists == d.lists
    assert dump_json(build_index(_catalog(), loaded, [])) == data


def test_a_missing_index_is_an_empty_state(tmp_path: Path) -> None:
    assert load_hub_state(tmp_path).lists == {}


def test_an_index_that_is_not_utf8_is_refused_by_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_bytes(b'{"schema_version": 1,\n "x": "\xff"}')
    with pytest.raises(BtfhubError, match=r"index\.json:\d+:\d+: not valid JSON .*UTF-8"):
        load_hub_state(tmp_path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", r"index\.json:1:2: not valid JSON"),
        ('{"schema_version": 2}', r"schema_version: 2 is not supported"),
        ("[]", r"\$: \[\] is not of type 'object'"),
        (
            json.dumps(
                {
                    "schema_version": 1,
                    "distributions": {
                        "u": {
                            "releases": {
                                "r": {
                                    "architectures": {
                                        "x86_64": {
                                            "discovered": True,
                                            "kernels": {
                                                "5.4.0-1": {
                                                    "state": "missing",
                                                    "package": {"name": "k", "size": "big"},
                                                }
                                            },
                                        }
                                    }
                                }
                            }
                        }
                    },
                }
            ),
            r"\$\.distributions\.u\.releases\.r\.architectures\.x86_64\.kernels\['5\.4\.0-1'\]"
            r"\.package: 'version' is a required property",
        ),
    ],
)
def test_a_malformed_index_names_the_file_and_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "index.json").write_text(text)
    with pytest.raises(BtfhubError, match=message) as info:
        load_hub_state(tmp_path)
    assert str(tmp_path / "index.json") in str(info.value)
