"""Debian's Chromium driven by Playwright (its own browser download does not work here)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest

from tests.support.databases import IN_CI

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def patient_expectations() -> None:
    """Playwright's `expect` waits up to 30 s (not 5) for a page to get there: on a busy machine
    the browser, the app and the test share two cores. It returns as soon as the page is there."""
    from playwright.async_api import expect

    expect.set_options(timeout=30_000)


def require_chromium() -> None:
    if not shutil.which(CHROMIUM):
        message = f"Chromium is missing at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


async def chromium_page() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    require_chromium()
    patient_expectations()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield await browser.new_page()
        finally:
            await browser.close()
