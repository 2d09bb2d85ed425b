"""`python -m app demo`: the product without Telegram.

It serves Plugboard with a loopback stand-in for the Bot API, creates a demo user on the pro plan,
connects a simulated bot and installs Channel Analytics (for a community in Delhi: its figures in
Asia/Kolkata's day) and Welcome Messages through the GraphQL API, fills in the community's past
(history.py), prints the address to open and the token to paste, then
keeps posting realistic updates through the real webhook route, with the secret header Telegram
would send, at the same pace as the past (pace.py). Unless told otherwise it uses a fresh
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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo

import httpx
import uvicorn
from starlette.types import ASGIApp

from app import serve
from app.accounts.models import Plan
from app.db import Database
from app.demo.botapi import BotApiStandIn, DemoBot
from app.demo.errors import DemoError
from app.demo.history import Readings, count_past, fill_in, fill_in_members, read
from app.demo.pace import DAY, Pace, Schedule
from app.demo.traffic import Traffic, chat_titles
from app.errors import BadUserInput
from app.logs import log_config
from app.secrets_at_rest import generate_key
from app.settings import Settings

if TYPE_CHECKING:
    from app.platform import Platform

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEMO_EMAIL = "demo@plugboard.local"
PLUGINS = ("analytics", "welcome")
COMMUNITY_TIMEZONE = "Asia/Kolkata"  # the demo's community is in Delhi (+5:30, no daylight saving)
CONFIGS: dict[str, dict[str, Any]] = {"analytics": {"timezone": COMMUNITY_TIMEZONE}}
STATUS_EVERY_SECONDS = 30.0


@dataclass(frozen=True)
class DemoOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    rate: float = 0.2  # things happening a second, averaged over a weekday (pace.py)
    history_days: int = 14  # days before today filled in, with today until now (0 for none)
    database_url: str | None = None  # None: a fresh SQLite database in a temporary directory
    seed: int | None = None


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the demo handles SIGINT and SIGTERM itself
        yield


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (port 0: a free one), or a DemoError saying what to change."""
    try:
        return serve.listen(host, port)
    except serve.CannotListen as exc:
        raise DemoError(str(exc)) from exc


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, sock: socket.socket, **config: Any) -> AsyncIterator[None]:
    """Serves `app` on `sock` in this event loop until the block ends."""
    server = _Server(
        uvicorn.Config(
            app,
            lifespan="on",
            log_config=None,
            access_log=False,
            timeout_keep_alive=serve.KEEP_ALIVE_SECONDS,
            **config,
        )
    )
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
    """Applies pending migrations. A database given with --database-url must exist (a misspelt name
    is an error, not a new database); the demo's own SQLite file is made in its temporary directory."""
    db = Database(url)
    await db.open()
    try:
        await db.migrate()
    finally:
        await db.close()


async def create_demo_user(platform: Platform) -> tuple[str, str]:
    """The demo user (pro plan) and its token; another address when a demo user exists already."""
    email = DEMO_EMAIL
    for _ in range(5):
        try:
            with platform.db.bound():
                user, token = await platform.accounts.create_user(email, Plan.PRO)
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
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=self.headers
        )
        body = response.json()
        for error in body.get("errors") or []:
            if error.get("extensions", {}).get("code") not in allow:
                raise DemoError(f"set-up failed: {error.get('message')}")
        return body.get("data")


@dataclass(frozen=True)
class Installs:
    """What the past is counted with: the analytics install, and how both plugins are set up."""

    analytics_id: str
    track_users: bool
    timezone: str  # the analytics install's: the community's day
    greeted_chats: frozenset[int]  # empty: Welcome greets in every chat

    def greets(self, chat_id: int) -> bool:
        return not self.greeted_chats or chat_id in self.greeted_chats

    def offset(self, at: float) -> int:
        """The zone's offset from UTC at Unix time `at`, in seconds: where the community's day starts."""
        offset = datetime.fromtimestamp(at, ZoneInfo(self.timezone)).utcoffset()
        return int(offset.total_seconds()) if offset else 0


async def set_up(api: Api, bot: DemoBot) -> Installs:
    await api(
        'mutation($token: String!) { connectTelegramBot(token: $token, name: "Demo bot") { id } }',
        {"token": bot.token},
    )
    catalog = {p["slug"]: p["id"] for p in (await api("{ plugins { id slug } }"))["plugins"]}
    for slug in PLUGINS:
        await api(
            "mutation($id: ID!, $config: JSON) { installPlugin(pluginId: $id, config: $config) { id } }",
            {"id": catalog[slug], "config": CONFIGS.get(slug)},
            allow=("ALREADY_INSTALLED",),
        )
    mine = {i["plugin"]["slug"]: i for i in (await api("{ myPlugins { id config plugin { slug } } }"))["myPlugins"]}
    return Installs(
        analytics_id=mine["analytics"]["id"],
        track_users=bool(mine["analytics"]["config"].get("trackUsers", True)),
        timezone=str(mine["analytics"]["config"].get("timezone") or "UTC"),
        greeted_chats=frozenset(mine["welcome"]["config"].get("chats") or ()),
    )


class Webhook:
    """Delivers updates the way Telegram does: POST to the registered URL with the secret header."""

    def __init__(self, http: httpx.AsyncClient, bot: DemoBot) -> None:
        self.http = http
        self.bot = bot
        self.delivered = 0
        self.filtered = 0

    async def deliver(self, update: dict[str, Any]) -> None:
        if not self.bot.webhook_url:
            raise DemoError("the bot has no webhook")
        if not self.bot.wants(update):  # Telegram never sends a kind the bot did not ask for
            self.filtered += 1
            return
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


def history_start(now: float, days: int, offset: int = 0) -> float:
    """Midnight `days` days before today's, in the zone `offset` seconds east of UTC."""
    return ((now + offset) // DAY - days) * DAY - offset


async def fill_in_the_past(db: Database, traffic: Traffic, schedule: Schedule, installs: Installs, now: float) -> None:
    """Counts the traffic of every moment before `now` into the analytics install."""
    readings: Readings = []
    sums = count_past(traffic, schedule.until(now), installs.track_users, installs.greets, readings)
    read(traffic, now, readings)  # today's, as the plugin read it when it started
    with db.bound():
        await fill_in(installs.analytics_id, sums, traffic.by_id)
        await fill_in_members(installs.analytics_id, readings)


class Live:
    """The traffic of the present: each thing is delivered when the clock reaches its moment."""

    def __init__(
        self,
        traffic: Traffic,
        schedule: Schedule,
        deliver: Callable[[dict[str, Any]], Awaitable[None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.traffic = traffic
        self.schedule = schedule
        self.deliver = deliver
        self.clock = clock

    async def open(self) -> None:
        """Delivers the opening newcomer, at the clock's time."""
        for update in self.traffic.updates(self.traffic.newcomer(), int(self.clock())):
            await self.deliver(update)

    async def step(self) -> float:
        """Delivers what is due by now; the seconds until the next thing is due."""
        for at in self.schedule.until(self.clock()):
            for update in self.traffic.next_updates(int(at)):
                await self.deliver(update)
        return max(0.0, self.schedule.next - self.clock())


async def live(present: Live, stop: asyncio.Event, status: Callable[[], str], out: TextIO) -> None:
    next_status = time.monotonic() + STATUS_EVERY_SECONDS
    await present.open()
    while not stop.is_set():
        wait = await present.step()
        if time.monotonic() >= next_status:
            next_status += STATUS_EVERY_SECONDS
            print(status(), file=out, flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(wait, STATUS_EVERY_SECONDS))


def status_line(traffic: Traffic, webhook: Webhook) -> str:
    made = ", ".join(f"{n} {kind}" for kind, n in sorted(traffic.counts.items()))
    filtered = f", {webhook.filtered} of kinds the bot did not ask for (not sent)" if webhook.filtered else ""
    return (
        f"{time.strftime('%H:%M:%S')}  {webhook.delivered} live updates delivered{filtered} "
        f"(all made so far: {made}); the bot sent {webhook.bot.sent} replies"
    )


def pace_line(pace: Pace, now: float, timezone: str) -> str:
    return (
        f"Now posting live updates at the same pace: about {pace.per_second(now):.2g} a second at this hour "
        f"(from {pace.quietest():.2g} at night to {pace.busiest():.2g} in the evening, {timezone} time)."
    )


def banner(url: str, email: str, token: str, bot: DemoBot) -> str:
    return "\n".join(
        [
            "",
            "Plugboard demo is running (no Telegram needed).",
            f"  Open:      {url}/",
            f"  GraphiQL:  {url}/graphql",
            f"  User:      {email} (pro plan)",
            f"  Bot:       @{bot.username}, simulated; its updates arrive through the real webhook",
            '  Paste this API token into the "API token" field:',
            "",
            f"  {token}",
            "",
            "Press Ctrl+C to stop.",
            "",
        ]
    )


async def run_demo(options: DemoOptions, settings: Settings | None = None, out: TextIO = sys.stdout) -> None:
    from app.main import create_app

    logging.config.dictConfig(log_config("WARNING"))
    rng = random.Random(options.seed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    bot_id = rng.randint(6_000_000_000, 6_999_999_999)
    bot = DemoBot(
        token=f"{bot_id}:{secrets.token_urlsafe(33)}",
        bot_id=bot_id,
        username="plugboard_demo_bot",
        first_name="Plugboard Demo",
    )
    stand_in = BotApiStandIn(bot, chat_titles())
    app_socket = listen(options.host, options.port)  # first: an address in use fails before anything is made
    with app_socket, demo_database(options.database_url) as database_url:
        await migrate(database_url)
        api_socket = listen("127.0.0.1", 0)
        port = app_socket.getsockname()[1]
        local = f"http://127.0.0.1:{port}"
        settings = settings or Settings.from_env()
        settings = replace(
            settings,
            database_url=database_url,
            # The demo's own database holds its bot's token: sealed with the given key, or one of its own.
            secret_keys=settings.secret_keys or (generate_key(),),
            telegram_api_url=f"http://127.0.0.1:{api_socket.getsockname()[1]}",
            public_url=local,  # the webhook address given to the stand-in: this machine
            telegram_delivery="webhook",  # the stand-in posts to plain HTTP on loopback, as Telegram would not
            access_log=False,
        )
        app = create_app(settings)
        async with serving(stand_in.app, api_socket), serving(app, app_socket, ws="websockets-sansio"):
            db = app.state.platform.db
            email, token = await create_demo_user(app.state.platform)
            async with httpx.AsyncClient(base_url=local, timeout=30) as http:
                installs = await set_up(Api(http, token), bot)
                traffic = Traffic(rng)
                stand_in.member_count = traffic.member_count  # the community's members, as Telegram counts them
                now = time.time()
                pace = Pace(options.rate, installs.offset(now))  # the community's day, as its figures show it
                schedule = Schedule(
                    pace, history_start(now, options.history_days, pace.offset) if options.history_days else now, rng
                )
                if options.history_days:
                    print(
                        f"Filling in {options.history_days} days of past activity and today's until now…",
                        file=out,
                        flush=True,
                    )
                    await fill_in_the_past(db, traffic, schedule, installs, now)
                    print(
                        f"Filled in {sum(traffic.counts.values()):,} things that happened "
                        f"({', '.join(f'{n:,} {kind}' for kind, n in sorted(traffic.counts.items()))}).",
                        file=out,
                        flush=True,
                    )
                print(banner(serve.shown_url(options.host, port), email, token, bot), file=out, flush=True)
                print(pace_line(pace, time.time(), installs.timezone), file=out, flush=True)
                webhook = Webhook(http, bot)
                present = Live(traffic, schedule, webhook.deliver)
                work = asyncio.create_task(live(present, stop, lambda: status_line(traffic, webhook), out))
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
                for task in (work, stopping):
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work  # raises what stopped the traffic, if it stopped by itself
    print("Demo stopped.", file=out, flush=True)
