"""The real kernel package the slow tests share (fetched once per session, cached on disk)."""

from __future__ import annotations

import shutil

import pytest

from tests.kit.realkernel import RealKernel, fetch


@pytest.fixture(scope="session")
def kernel() -> RealKernel:
    if shutil.which("apt-get") is None:
        pytest.skip("needs apt (a Debian machine) to fetch a real kernel package")
    return fetch()
