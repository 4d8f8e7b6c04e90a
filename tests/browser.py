"""Headless Chromium (Debian's package) driven by Playwright, for the page tests.

Playwright never downloads a browser here: it launches /usr/bin/chromium with flags that keep it
off the network. Tests skip, saying why, when no Chromium is installed.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def browser_page(requests: list[str] | None = None) -> Iterator[object]:
    """A Playwright page; every request URL the page makes is appended to ``requests``."""
    exe = chromium_path()
    if exe is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            if requests is not None:
                page.on("request", lambda r: requests.append(r.url))
            yield page
        finally:
            browser.close()
