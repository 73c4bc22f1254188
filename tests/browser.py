"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Selenium.

Why Selenium and Debian's packages: everything comes from registries the project's machines
reach (``chromium`` and ``chromium-driver`` from Debian, ``selenium`` from PyPI, in the dev
extras), the driver matches the browser by construction (one source package), and the test stays
in Python. Selenium is pointed at ``/usr/bin/chromedriver`` and ``/usr/bin/chromium`` explicitly,
so its "Selenium Manager" never tries to download a browser or a driver.

:func:`chromium_or_skip` installs the two packages with apt-get when they are missing and the test
runs as root (as ``make test`` does on a fresh machine), and skips with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-size=1600,1250",
)
_lock = threading.Lock()


def install_chromium() -> str | None:
    """Install Debian's chromium and chromium-driver when missing; the reason when it cannot."""
    with _lock:
        if CHROMIUM.exists() and CHROMEDRIVER.exists():
            return None
        if os.geteuid() != 0:
            return ("chromium/chromium-driver are missing and this is not root: "
                    "run `sudo apt-get install -y chromium chromium-driver`")
        if shutil.which("apt-get") is None:
            return "chromium is missing and there is no apt-get to install it"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if r.returncode != 0:
                return f"`{' '.join(cmd)}` failed: {(r.stderr or r.stdout)[-400:]}"
        if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
            return "apt-get ran but /usr/bin/chromium or /usr/bin/chromedriver is still missing"
        return None


def chromium_or_skip():  # type: ignore[no-untyped-def]
    """A Selenium Chrome driver on headless Debian chromium (skips with the reason if impossible)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    reason = install_chromium()
    if reason:
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ARGS:
        options.add_argument(arg)
    profile = tempfile.mkdtemp(prefix="fs-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    driver._fs_profile = profile  # type: ignore[attr-defined]
    return driver


def quit_driver(driver) -> None:  # type: ignore[no-untyped-def]
    try:
        driver.quit()
    finally:
        shutil.rmtree(getattr(driver, "_fs_profile", ""), ignore_errors=True)
