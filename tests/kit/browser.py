"""A headless Debian chromium driven by Selenium through chromium-driver, and gone afterwards.

scripts/setup.sh installs `chromium` and `chromium-driver`; the test extra
installs selenium. Both paths are given, so Selenium Manager never looks for
(or downloads) a driver. The browser runs as root in the sandbox-less mode
with a fresh profile in a temporary directory, and no traffic of its own
(updates, sync, QUIC). On exit the driver quits and every process it started
is checked to have ended, by process id (tests/kit/processes.py): none is
left behind, even a crashed renderer.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.kit.processes import descendants, end_all

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",  # as root, chromium refuses to start with its sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # a small /dev/shm in containers crashes renderers
)


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is missing: run scripts/setup.sh (chromium, chromium-driver)"
    return None


class Browser:
    """The running driver and the processes it started (read when closing)."""

    def __init__(self, driver: webdriver.Chrome, service: Service) -> None:
        self.driver = driver
        self.service = service
        self.leftovers: set[int] = set()

    @property
    def processes(self) -> set[int]:
        process = self.service.process
        if process is None:
            return set()
        return {process.pid} | set(descendants(process.pid))


@contextmanager
def chromium(width: int = 1200, height: int = 900, page_load: str = "normal") -> Iterator[Browser]:
    """A headless chromium; after the block every process of it has ended (else an error).

    page_load "none": driver.get returns at once instead of at the load event.
    """
    profile = tempfile.mkdtemp(prefix="btfhub-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.page_load_strategy = page_load
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    service = Service(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    browser = Browser(driver, service)
    try:
        yield browser
    finally:
        started = browser.processes
        try:
            driver.quit()
        finally:
            browser.leftovers = end_all(started)
            shutil.rmtree(profile, ignore_errors=True)
    if browser.leftovers:
        raise RuntimeError(f"chromium processes still ran after quit (killed): {browser.leftovers}")
