"""GraphiQL at /graphql, in a real browser, served wholly by this server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.browser import chromium_page
from tests.support.databases import IN_CI

BUILT_PAGE = Path(__file__).resolve().parents[2] / "frontend" / "dist" / "graphiql" / "index.html"


@pytest.fixture
async def page():
    if not BUILT_PAGE.is_file():
        message = "GraphiQL is not built: run `make install`"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    async for page in chromium_page():
        yield page


async def test_graphiql_runs_a_query_with_the_users_token(app, page):
    user = await app.create_user("viewer@example.com", "pro")
    outside_requests: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(app.url) else outside_requests.append(r.url))

    # As if typed into GraphiQL's headers editor earlier: it keeps them in localStorage.
    headers = json.dumps(json.dumps({"Authorization": f"Bearer {user.token}"}))
    await page.add_init_script(f"localStorage.setItem('graphiql:headers', {headers})")
    # What the Content-Security-Policy blocks, if anything: GraphiQL must work within it.
    await page.add_init_script(
        "window.cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI))"
    )
    loaded = await page.goto(f"{app.url}/graphql")
    assert loaded is not None
    policy = (await loaded.all_headers())["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    await page.wait_for_selector(".graphiql-container")
    query = page.locator(".graphiql-query-editor .monaco-editor").first
    await query.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.type("{ me { email plan } plugins { slug } ")  # the editor closes the brace
    await page.keyboard.press("Escape")  # dismiss the autocomplete popup
    await page.keyboard.press("Control+Enter")  # GraphiQL's run shortcut

    response = page.locator(".graphiql-response")
    await response.get_by_text("viewer@example.com").wait_for()
    text = (await response.inner_text()).replace("\xa0", " ")
    assert '"plan": "PRO"' in text
    assert '"slug": "analytics"' in text
    assert outside_requests == []
    assert await page.evaluate("window.cspViolations") == []
