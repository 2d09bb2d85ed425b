"""The web front end's pages over HTTP: where they are, how they are served, and a clear page
when the front end has not been built."""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.applications import Starlette

from app.web import FRONTEND_DIST, PAGES, web_routes
from tests.support.databases import IN_CI
from tests.support.server import LiveServer

SCRIPT = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


@pytest.fixture
def built() -> None:
    if not (FRONTEND_DIST / "my-plugins" / "index.html").is_file():
        message = "the front end is not built: run `make install`"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


async def test_the_root_leads_to_the_app(app):
    response = await app.http.get("/")
    assert response.status_code == 302
    assert response.headers["location"] == "/my-plugins"


@pytest.mark.parametrize("path", sorted(PAGES))
async def test_each_page_is_served_with_its_built_assets_and_a_strict_policy(app, built, path):
    response = await app.http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-cache"
    scripts = SCRIPT.findall(response.text)
    assert scripts and all("src=" in attributes for attributes in scripts)  # no inline script
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', response.text):
        assert (await app.http.get(asset)).status_code == 200, asset
    head = await app.http.head(path)
    assert head.status_code == 200


async def test_the_widget_has_a_stable_address_for_other_pages(app, built):
    response = await app.http.get("/static/widget/analytics.js")
    assert response.status_code == 200
    assert "plugboard-analytics" in response.text


async def test_a_missing_build_gives_a_page_that_says_how_to_build_it(tmp_path):
    async with LiveServer(Starlette(routes=web_routes(tmp_path))) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            for path in PAGES:
                response = await client.get(path)
                assert response.status_code == 503
                assert "The web front end is not built" in response.text
                assert "make install" in response.text


async def test_serve_prints_the_apps_address_and_graphiqls(database_url):
    import asyncio
    import os
    import signal
    import sys

    from tests.support.processes import free_port

    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "serve",
        "--port",
        str(port),
        env={**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 60)
    assert line.strip() == f"Plugboard: http://127.0.0.1:{port}/  (GraphiQL: http://127.0.0.1:{port}/graphql)"
