"""A browser tab on the app, with what the web tests check on every page: console errors, an
axe-core audit, horizontal overflow, and screenshots kept as artifacts."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, ViewportSize, expect

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "frontend" / "dist"
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("PLUGBOARD_ARTIFACTS", ROOT / "tests" / "artifacts")) / "web"
TOKEN_KEY = "plugboard:token"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
BLOCKING_IMPACTS = ("serious", "critical")

AXE_RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " :: " + n.failureSummary),
  }));
}"""

OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  const visit = (root) => {
    for (const el of root.querySelectorAll("*")) {
      const box = el.getBoundingClientRect();
      if (box.width && box.right > width + 1) wide.push(`${el.tagName.toLowerCase()}.${el.className} right=${Math.round(box.right)}`);
      if (el.shadowRoot) visit(el.shadowRoot);
    }
  };
  visit(document);
  return { scrollWidth: document.documentElement.scrollWidth, width, wide: wide.slice(0, 10) };
}"""


def sent_variable(tab: Tab, field: str, variable: str) -> list[Any]:
    """The `variable` of each GraphQL operation naming `field` (e.g. runPlugin) that the page sends
    from now on, as sent, in order."""
    sent: list[Any] = []

    def seen(request: Any) -> None:
        body = request.post_data_json if request.url.endswith("/graphql") and request.method == "POST" else None
        if body and field in body["query"]:
            sent.append(body["variables"][variable])

    tab.page.on("request", seen)
    return sent


class Tab:
    """One page in its own browser context (its own localStorage)."""

    def __init__(self, context: BrowserContext, page: Page, base_url: str) -> None:
        self.context = context
        self.page = page
        self.base_url = base_url
        self.console_errors: list[str] = []
        self.requests: list[tuple[str, dict[str, str]]] = []  # (url, headers) of every request
        self.websockets: list[str] = []
        self._tolerating = False
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console_errors.append(f"page error: {error}"))
        page.on("request", lambda request: self.requests.append((request.url, request.headers)))
        page.on("websocket", lambda ws: self.websockets.append(ws.url))

    @classmethod
    async def open(cls, browser: Browser, base_url: str, viewport: ViewportSize = DESKTOP) -> Tab:
        context = await browser.new_context(viewport=viewport, base_url=base_url, accept_downloads=True)
        return cls(context, await context.new_page(), base_url)

    async def close(self) -> None:
        await self.context.close()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not self._tolerating:
            self.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    @contextlib.contextmanager
    def server_down(self) -> Iterator[None]:
        """While the server is away, the browser itself logs failed connections: those are expected.
        Uncaught page errors still count."""
        self._tolerating = True
        try:
            yield
        finally:
            self._tolerating = False

    # --- actions ------------------------------------------------------------------------------

    async def goto(self, path: str) -> None:
        await self.page.goto(path)

    async def sign_in(self, token: str, path: str = "/my-plugins") -> None:
        """Opens `path` signed out, signs in with the form, and waits for the signed-in header."""
        await self.page.goto(path)
        await self.page.get_by_label("API token").fill(token)
        await self.page.get_by_role("button", name="Sign in").click()
        await expect(self.page.get_by_role("button", name="Sign out")).to_be_visible()

    async def stored_token(self) -> str | None:
        return await self.page.evaluate(f"() => localStorage.getItem({TOKEN_KEY!r})")

    # --- checks -------------------------------------------------------------------------------

    def assert_no_console_errors(self) -> None:
        assert self.console_errors == [], "\n".join(self.console_errors)

    async def audit(self) -> list[dict[str, Any]]:
        """axe-core's violations of serious or critical impact on the page as it is now."""
        if not await self.page.evaluate("() => typeof window.axe !== 'undefined'"):
            # Evaluated, not added as a <script>: the pages' CSP allows scripts from the server only.
            await self.page.evaluate(AXE.read_text(encoding="utf-8"))
        violations = await self.page.evaluate(AXE_RUN)
        return [v for v in violations if v["impact"] in BLOCKING_IMPACTS]

    async def overflow(self) -> dict[str, Any] | None:
        """None when nothing sticks out sideways; else what does."""
        found = await self.page.evaluate(OVERFLOW)
        return None if found["scrollWidth"] <= found["width"] and not found["wide"] else found

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        width = self.page.viewport_size["width"] if self.page.viewport_size else 0
        path = ARTIFACTS / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}-{width}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path
