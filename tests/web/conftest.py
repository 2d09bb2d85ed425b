"""Browser tests: Debian's Chromium driven by Playwright, against the app over real HTTP.

They run on SQLite only. What they test is the front end; the API's behaviour on PostgreSQL is
covered by the API tests, and a second backend would double the run time without testing anything new.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, patient_expectations, require_chromium
from tests.support.databases import IN_CI
from tests.support.https_server import HttpsStandIn, make_certificates
from tests.support.live import LiveApp
from tests.web.browser import AXE, DIST, Tab

WEB_TESTS = Path(__file__).resolve().parent


def require_build() -> None:
    missing = [str(p) for p in (DIST / "my-plugins" / "index.html", AXE) if not p.is_file()]
    if missing:
        message = f"the front end is not built ({', '.join(missing)} missing): run `make install`"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselects this directory's tests on backends other than SQLite."""
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        if not item.path.is_relative_to(WEB_TESTS):
            keep.append(item)
            continue
        callspec = getattr(item, "callspec", None)
        other_backend = callspec is not None and callspec.params.get("backend", "sqlite") != "sqlite"
        (drop if other_backend else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    require_build()
    require_chromium()
    patient_expectations()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def hook(tmp_path) -> AsyncIterator[HttpsStandIn]:
    """A loopback HTTPS stand-in for a user's webhook (`forward` posts to it)."""
    async with HttpsStandIn(make_certificates(tmp_path)) as server:
        yield server


@pytest.fixture
async def forwarding(make_app, hook) -> LiveApp:
    """The app, allowed to reach the stand-in (and nothing else inside)."""
    return await make_app(
        outbound_allowed_hosts=(f"localhost:{hook.port}",), outbound_ca_file=hook.certificates.ca_file
    )


@pytest.fixture
async def tab(browser, app) -> AsyncIterator[Tab]:
    """A desktop-sized tab on the app, signed out."""
    opened = await Tab.open(browser, app.url)
    yield opened
    await opened.close()
