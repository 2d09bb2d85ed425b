"""The web front end's pages: `/` leads to the app, `/sign-in`, `/plugins` and `/my-plugins` serve
the pages vite built into frontend/dist (their scripts and styles are under /static)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

FRONTEND_DIST = Path(__file__).resolve().parents[1] / "frontend" / "dist"
HOME = "/my-plugins"
PAGES = {"/sign-in": "sign-in", "/plugins": "plugins", "/my-plugins": "my-plugins"}

# Scripts only from this server (no inline script, no CDN); the API and its websocket on this origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Plugboard · front end not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1.25rem;color:#0f172a}
code{background:#eef2ff;padding:.1rem .3rem;border-radius:4px}</style></head>
<body><h1>The web front end is not built</h1>
<p>This server found no <code>frontend/dist/{page}/index.html</code>. Build it with <code>make install</code>
(it runs <code>npm ci &amp;&amp; npm run build</code> in <code>frontend/</code>), then reload this page.</p>
<p>The GraphQL API answers at <a href="/graphql">/graphql</a> in the meantime.</p></body></html>"""


def page_file(name: str, dist: Path = FRONTEND_DIST) -> Path:
    return dist / name / "index.html"


def _page(name: str, dist: Path) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        try:
            html = page_file(name, dist).read_text(encoding="utf-8")
        except FileNotFoundError:
            return HTMLResponse(
                NOT_BUILT.replace("{page}", name), status_code=503, headers={"Cache-Control": "no-store"}
            )
        return HTMLResponse(html, headers=SECURITY_HEADERS)

    return serve


async def home(request: Request) -> Response:
    return RedirectResponse(HOME, status_code=302)


def web_routes(dist: Path = FRONTEND_DIST) -> list[BaseRoute]:
    routes: list[BaseRoute] = [Route("/", home, methods=["GET", "HEAD"])]
    routes += [Route(path, _page(name, dist), methods=["GET", "HEAD"]) for path, name in PAGES.items()]
    return routes
