"""The discovery state kept in index.json: recording, loading, round trip."""

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
    KernelPackage,
    KernelState,
    Outcome,
    Release,
)
from generator.state import Discovery, KnownKernel, load_discovery

FAILED = Outcome(KernelState.FAILED, "no vmlinux in the package")
SHIPS = Outcome(KernelState.SHIPS_BTF)


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


def test_record_listing_replaces_the_list_and_keeps_outcomes_of_listed_kernels() -> None:
    d = Discovery()
    d.record_listing("ubuntu", "focal", "x86_64", [pkg("5.4.0-1"), pkg("5.4.0-2")])
    d.record_outcome("ubuntu", "focal", "x86_64", "5.4.0-1", FAILED)
    d.record_outcome("ubuntu", "focal", "x86_64", "5.4.0-2", SHIPS)
    d.record_listing("ubuntu", "focal", "x86_64", [pkg("5.4.0-2"), pkg("5.4.0-3")])
    listed = d.known("ubuntu", "focal", "x86_64")
    assert listed is not None and sorted(listed) == ["5.4.0-2", "5.4.0-3"]
    assert d.outcomes() == {("ubuntu", "focal", "x86_64", "5.4.0-2"): SHIPS}
    # The persisted package never carries the (mirror-dependent) URL.
    assert listed["5.4.0-3"] == KnownKernel(
        uname="5.4.0-3",
        package="linux-image-unsigned-5.4.0-3-dbgsym",
        version="5.4.0-42.46",
        repository="ddebs",
        filename="pool/main/l/linux/linux-image-unsigned-5.4.0-3-dbgsym.ddeb",
        package_size=123,
        package_sha256="ab" * 32,
        outcome=None,
    )
    # Other lists are untouched; an empty listing is still "discovered".
    d.record_listing("ubuntu", "focal", "arm64", [])
    assert d.known("ubuntu", "focal", "arm64") == {}
    assert d.known("ubuntu", "bionic", "x86_64") is None


def test_the_first_package_of_a_uname_wins() -> None:
    d = Discovery()
    d.record_listing(
        "u", "r", "x86_64", [pkg("5.4.0-1", name="unsigned"), pkg("5.4.0-1", name="signed")]
    )
    assert d.lists[("u", "r", "x86_64")]["5.4.0-1"].package == "unsigned"


def test_record_outcome_refuses_unlisted_kernels_and_non_outcomes() -> None:
    d = Discovery()
    d.record_listing("u", "r", "x86_64", [pkg("5.4.0-1")])
    with pytest.raises(KeyError):
        d.record_outcome("u", "r", "x86_64", "5.4.0-9", FAILED)
    with pytest.raises(KeyError):
        d.record_outcome("u", "r", "arm64", "5.4.0-1", FAILED)
    with pytest.raises(ValueError):
        d.record_outcome("u", "r", "x86_64", "5.4.0-1", Outcome(KernelState.ARCHIVED))
    with pytest.raises(ValueError):
        d.record_listing("u", "r", "x86_64", [pkg("5.4.0-1", arch="arm64")])
    d.record_outcome("u", "r", "x86_64", "5.4.0-1", FAILED)
    d.record_outcome("u", "r", "x86_64", "5.4.0-1", None)  # built since: cleared
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


def test_discovery_survives_a_trip_through_index_json(tmp_path: Path) -> None:
    d = Discovery()
    d.record_listing("ubuntu", "focal", "x86_64", [pkg("5.4.0-1"), pkg("5.4.0-2")])
    d.record_listing("ubuntu", "focal", "arm64", [])
    d.record_outcome("ubuntu", "focal", "x86_64", "5.4.0-1", FAILED)
    d.record_outcome("ubuntu", "focal", "x86_64", "5.4.0-2", SHIPS)
    data = dump_json(build_index(_catalog(), d, []))
    (tmp_path / "index.json").write_bytes(data)
    loaded = load_discovery(tmp_path)
    assert loaded.lists == d.lists
    assert dump_json(build_index(_catalog(), loaded, [])) == data


def test_a_missing_index_is_an_empty_state(tmp_path: Path) -> None:
    assert load_discovery(tmp_path).lists == {}


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", r"index\.json:1:2: not valid JSON"),
        ('{"schema_version": 2}', r"schema_version: 2 is not supported"),
        ("[]", r"\(document\): expected an object"),
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
            r"distributions\.u\.releases\.r\.architectures\.x86_64\.kernels\.5\.4\.0-1"
            r"\.package\.version: expected a string",
        ),
    ],
)
def test_a_malformed_index_names_the_file_and_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "index.json").write_text(text)
    with pytest.raises(BtfhubError, match=message) as info:
        load_discovery(tmp_path)
    assert str(tmp_path / "index.json") in str(info.value)
