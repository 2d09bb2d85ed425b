"""`python -m app demo`: the product without Telegram.

It serves Plugboard with a loopback stand-in for the Bot API, creates a demo user on the pro plan,
connects a simulated bot and installs Channel Analytics and Welcome Messages through the GraphQL API,
prints the address to open and the token to paste, then keeps posting realistic updates through the
real webhook route, with the secret header Telegram would send. Unless told otherwise it uses a fresh
SQLite database in a temporary directory, removed when the demo stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.config
import random
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any, TextIO

import httpx
import uvicorn
from starlette.types import ASGIApp

from app.accounts.models import Plan
from app.db import Database
from app.demo.botapi import BotApiStandIn, DemoBot
from app.demo.traffic import Traffic, chat_titles
from app.errors import BadUserInput
from app.logs import log_config
from app.settings import Settings

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEMO_EMAIL = "demo@plugboard.local"
PLUGINS = ("analytics", "welcome")
STATUS_EVERY_SECONDS = 30.0


class DemoError(Exception):
    """Something the person running the demo can fix (a port in use, …)."""


@dataclass(frozen=True)
class DemoOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    rate: float = 2.0  # things happening a second, on average
    history_days: int = 14  # days before today filled with past activity (0 for none)
    database_url: str | None = None  # None: a fresh SQLite database in a temporary directory
    seed: int | None = None


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the demo handles SIGINT and SIGTERM itself
        yield


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (port 0: a free one), or a DemoError saying what to change."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DemoError(f"cannot listen on {host}:{port} ({exc.strerror}); pass another --port") from None
    return sock


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, sock: socket.socket, **config: Any) -> AsyncIterator[None]:
    """Serves `app` on `sock` in this event loop until the block ends."""
    server = _Server(uvicorn.Config(app, lifespan="on", log_config=None, access_log=False, **config))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise DemoError("the server stopped while starting")
            await asyncio.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        await task


@contextlib.contextmanager
def demo_database(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    directory = tempfile.mkdtemp(prefix="plugboard-demo-")
    try:
        yield f"sqlite://{directory}/demo.sqlite3"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def migrate(url: str) -> None:
    db = Database(url)
    await db.open(create=True)
    try:
        await db.migrate()
    finally:
        await db.close()


async def create_demo_user(db: Database) -> tuple[str, str]:
    """The demo user (pro plan) and its token; another address when a demo user exists already."""
    from app.accounts.service import create_user

    email = DEMO_EMAIL
    for _ in range(5):
        try:
            with db.bound():
                user, token = await create_user(email, Plan.PRO)
            return user.email, token
        except BadUserInput:
            email = f"demo+{secrets.token_hex(3)}@plugboard.local"
    raise DemoError("could not create a demo user")


class Api:
    """The demo's own GraphQL client: it sets up through the public API, as a user would."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}

    async def __call__(self, query: str, variables: dict[str, Any] | None = None, allow: tuple[str, ...] = ()) -> Any:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=self.headers)
        body = response.json()
        for error in body.get("errors") or []:
            if error.get("extensions", {}).get("code") not in allow:
                raise DemoError(f"set-up failed: {error.get('message')}")
        return body.get("data")


async def set_up(api: Api, bot: DemoBot) -> None:
    await api(
        "mutation($token: String!) { connectTelegramBot(token: $token, name: \"Demo bot\") { id } }",
        {"token": bot.token},
    )
    catalog = {p["slug"]: p["id"] for p in (await api("{ plugins { id slug } }"))["plugins"]}
    for slug in PLUGINS:
        await api("mutation($id: ID!) { installPlugin(pluginId: $id) { id } }", {"id": catalog[slug]}, allow=("ALREADY_INSTALLED",))


class Webhook:
    """Delivers updates the way Telegram does: POST to the registered URL with the secret header."""

    def __init__(self, http: httpx.AsyncClient, bot: DemoBot) -> None:
        self.http = http
        self.bot = bot
        self.delivered = 0

    async def deliver(self, update: dict[str, Any]) -> None:
        if not self.bot.webhook_url:
            raise DemoError("the bot has no webhook")
        for attempt in range(5):  # Telegram retries until it gets a 2xx; so do we, briefly
            try:
                response = await self.http.post(
                    self.bot.webhook_url, json=update, headers={SECRET_HEADER: self.bot.secret_token or ""}
                )
                if response.status_code == 200:
                    self.delivered += 1
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2 * (attempt + 1))

    async def deliver_all(self, updates: list[dict[str, Any]], concurrency: int = 8) -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one(update: dict[str, Any]) -> None:
            async with gate:
                await self.deliver(update)

        await asyncio.gather(*(one(update) for update in updates))


async def backfill(traffic: Traffic, webhook: Webhook, days: int, rng: random.Random) -> None:
    """Past activity, oldest day first, growing towards today (dates are each message's own)."""
    today = int(time.time()) // 86400 * 86400
    for age in range(days, 0, -1):
        start = today - age * 86400
        weekend = time.gmtime(start).tm_wday >= 5
        size = int((40 + 50 * (days - age) / max(days, 1)) * (0.7 if weekend else 1.0) * rng.uniform(0.85, 1.15))
        await webhook.deliver_all(traffic.day(start, size))


async def live(traffic: Traffic, webhook: Webhook, rate: float, rng: random.Random, stop: asyncio.Event, out: TextIO) -> None:
    next_status = time.monotonic() + STATUS_EVERY_SECONDS
    while not stop.is_set():
        for update in traffic.next_updates(int(time.time())):
            await webhook.deliver(update)
        if time.monotonic() >= next_status:
            next_status += STATUS_EVERY_SECONDS
            print(status_line(traffic, webhook), file=out, flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rng.expovariate(rate))


def status_line(traffic: Traffic, webhook: Webhook) -> str:
    made = ", ".join(f"{n} {kind}" for kind, n in sorted(traffic.counts.items()))
    return f"{time.strftime('%H:%M:%S')}  {webhook.delivered} updates delivered ({made}); the bot sent {webhook.bot.sent} replies"


def banner(url: str, email: str, token: str, bot: DemoBot) -> str:
    return "\n".join([
        "",
        "Plugboard demo is running (no Telegram needed).",
        f"  Open:      {url}/",
        f"  GraphiQL:  {url}/graphql",
        f"  User:      {email} (pro plan)",
        f"  Bot:       @{bot.username}, simulated; its updates arrive through the real webhook",
        "  Paste this API token into the \"API token\" field:",
        "",
        f"  {token}",
        "",
        "Press Ctrl+C to stop.",
        "",
    ])


async def run_demo(options: DemoOptions, settings: Settings | None = None, out: TextIO = sys.stdout) -> None:
    from app.main import create_app

    logging.config.dictConfig(log_config("WARNING"))
    rng = random.Random(options.seed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    bot_id = rng.randint(6_000_000_000, 6_999_999_999)
    bot = DemoBot(token=f"{bot_id}:{secrets.token_urlsafe(33)}", bot_id=bot_id, username="plugboard_demo_bot", first_name="Plugboard Demo")
    stand_in = BotApiStandIn(bot, chat_titles())
    with demo_database(options.database_url) as database_url:
        await migrate(database_url)
        api_socket, app_socket = listen("127.0.0.1", 0), listen(options.host, options.port)
        port = app_socket.getsockname()[1]
        local = f"http://127.0.0.1:{port}"
        settings = replace(
            settings or Settings.from_env(),
            database_url=database_url,
            telegram_api_url=f"http://127.0.0.1:{api_socket.getsockname()[1]}",
            public_url=local,  # the webhook address given to the stand-in: this machine
            access_log=False,
        )
        app = create_app(settings)
        async with serving(stand_in.app, api_socket), serving(app, app_socket, ws="websockets-sansio"):
            email, token = await create_demo_user(app.state.platform.db)
            async with httpx.AsyncClient(base_url=local, timeout=30) as http:
                await set_up(Api(http, token), bot)
                shown = "127.0.0.1" if options.host in ("0.0.0.0", "::") else options.host
                print(banner(f"http://{shown}:{port}", email, token, bot), file=out, flush=True)
                traffic = Traffic(rng)
                webhook = Webhook(http, bot)
                work = asyncio.create_task(_traffic(traffic, webhook, options, rng, stop, out))
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
                for task in (work, stopping):
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work  # raises what stopped the traffic, if it stopped by itself
    print("Demo stopped.", file=out, flush=True)


async def _traffic(traffic: Traffic, webhook: Webhook, options: DemoOptions, rng: random.Random, stop: asyncio.Event, out: TextIO) -> None:
    if options.history_days > 0:
        print(f"Filling in {options.history_days} days of past activity…", file=out, flush=True)
        await backfill(traffic, webhook, options.history_days, rng)
        print(status_line(traffic, webhook), file=out, flush=True)
    print(f"Now posting live updates, about {options.rate:g} a second.", file=out, flush=True)
    await live(traffic, webhook, options.rate, rng, stop, out)
