"""Long polling across processes: two `serve` and a `worker`, all polling (TELEGRAM_DELIVERY=polling)
on one database (PostgreSQL, and a SQLite file), against the fake Bot API. Exactly one process polls each bot at a time (Telegram
would answer the other's poll 409 "terminated by other getUpdates request": the fake never has to);
the process that polls a bot is killed with SIGKILL after it committed a batch and before it
confirmed it, another takes the bot over once the lease runs out, and every update is stored and
counted exactly once."""

from __future__ import annotations

import asyncio
import functools
import secrets
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.accounts.models import Plan
from app.accounts.service import AccountService
from app.analytics.models import AnalyticsChat
from app.db import Database
from app.gateways.models import EventKind, EventStatus, GatewayEvent, Lease
from app.gateways.polling import lease_name
from app.gateways.telegram import bot_id_of as telegram_bot_id
from tests.fakes.telegram import FakeTelegram
from tests.support.databases import drop_database, migrated_copy
from tests.support.eventually import START_SECONDS, eventually
from tests.support.serve_process import ServeProcess, WorkerProcess
from tests.support.telegram_updates import message_update

pytestmark = pytest.mark.timeout(3 * START_SECONDS + 300)  # a hang guard

PLUGINS = "{ plugins { id slug } }"
INSTALL = "mutation($id: ID!) { installPlugin(pluginId: $id) { id } }"
CONNECT = "mutation($token: String!) { connectTelegramBot(token: $token) { id delivery } }"
ATTEMPTS = 5  # tries at catching a poller between its commit and its confirmation (see below)
FAILURES = 4


@pytest.fixture
async def database(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    url = await migrated_copy(backend, tmp_path)
    db = Database(url)
    await db.open()
    try:
        yield db
    finally:
        await db.close()
        await drop_database(backend, url)


async def graphql(server: ServeProcess, api_token: str, query: str, **variables: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        response = await http.post(
            "/graphql", json={"query": query, "variables": variables}, headers={"Authorization": f"Bearer {api_token}"}
        )
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]


class Bot:
    def __init__(self, telegram: FakeTelegram, name: str, chat_id: int) -> None:
        self.token = f"{secrets.randbelow(10**9) + 1}:{secrets.token_urlsafe(30)}"
        self.chat_id = chat_id
        self.gateway_id = ""
        self.sent = 0
        self.telegram = telegram
        telegram.add_bot(self.token, name)

    async def send(self, count: int) -> None:
        """Telegram has `count` more messages for the bot, one after another."""
        for _ in range(count):
            self.sent += 1
            delivery = await self.telegram.deliver(self.token, message_update(self.sent, chat_id=self.chat_id))
            assert delivery.status == "pending"

    def all_confirmed(self) -> bool:
        return self.telegram.confirmed(self.token) == list(range(1, self.sent + 1))


async def holder_pid(db: Database, bot: Bot) -> int | None:
    with db.bound():
        lease = await Lease.get_or_none(name=lease_name(telegram_bot_id(bot.token), bot.gateway_id))
    return None if lease is None else int(lease.holder.split("-", 1)[0])


async def stored(db: Database, bot: Bot) -> list[int]:
    with db.bound():
        keys = await GatewayEvent.filter(gateway_id=bot.gateway_id, kind=EventKind.UPDATE).values_list("key", flat=True)
    return sorted(int(str(key)) for key in keys)


async def all_processed(db: Database) -> bool:
    with db.bound():
        return not await GatewayEvent.filter(status__in=[EventStatus.PENDING, EventStatus.PROCESSING]).exists()


async def received(db: Database, chat_id: int) -> int:
    with db.bound():
        chat = await AnalyticsChat.get_or_none(chat_id=chat_id)
    return 0 if chat is None else chat.received


@pytest.mark.slow
async def test_one_poller_per_bot_across_processes_and_a_killed_poller_is_taken_over_without_loss(
    database: Database, telegram: FakeTelegram
):
    with database.bound():
        _, api_token = await AccountService().create_user("fleet@example.com", Plan.PRO)
    env = {
        "DATABASE_URL": database.url,
        "TELEGRAM_API_URL": telegram.url,
        "TELEGRAM_DELIVERY": "polling",
        "TELEGRAM_POLL_TIMEOUT_SECONDS": "1",
        "SCHEDULER_ENABLED": "false",
        "INBOX_POLL_SECONDS": "0.2",
        "INBOX_LEASE_SECONDS": "5",  # an event the killed process had claimed comes back soon
        "ACCESS_LOG": "false",
    }
    servers = [ServeProcess(env), ServeProcess(env)]
    worker = WorkerProcess(env)
    processes: list[ServeProcess | WorkerProcess] = [*servers, worker]
    try:
        await asyncio.gather(*(server.start() for server in servers), worker.start())
        catalog = (await graphql(servers[0], api_token, PLUGINS))["plugins"]
        analytics = next(p["id"] for p in catalog if p["slug"] == "analytics")
        await graphql(servers[0], api_token, INSTALL, id=analytics)
        bots = [Bot(telegram, "fleet_one_bot", -101), Bot(telegram, "fleet_two_bot", -202)]
        for bot in bots:
            connected = (await graphql(servers[1], api_token, CONNECT, token=bot.token))["connectTelegramBot"]
            assert connected["delivery"] == "POLLING"
            bot.gateway_id = connected["id"]
        for token in [bot.token for bot in bots]:
            await eventually(functools.partial(polled, telegram, token), "the bot long-polled")

        await asyncio.gather(*(bot.send(20) for bot in bots))
        await eventually(lambda: all(bot.all_confirmed() for bot in bots), "the first updates confirmed")

        # The process polling bot 0 commits a batch; the getUpdates that would confirm it fails, and
        # the process is killed while it backs off. The failures go to whichever getUpdates comes
        # next, bot 1's too: a few in a row keep bot 0's poller backing off (1 s, 2 s, ...) long
        # enough to be caught; when it was not, its batch is confirmed and the arrangement tried again.
        target = bots[0]
        victim_pid = None
        for _ in range(ATTEMPTS):
            await eventually(lambda: telegram.polling(target.token).is_set(), "bot 0 long-polled")
            for _ in range(FAILURES):
                telegram.fail_next("getUpdates", 500)
            first = target.sent + 1
            await target.send(5)
            await eventually(functools.partial(_stored_through, database, target, first + 4), "bot 0's batch committed")
            if [u["update_id"] for u in telegram.bot(target.token).pending][:1] == [first]:
                victim_pid = await holder_pid(database, target)
                break
            await eventually(lambda: target.all_confirmed(), "bot 0's batch confirmed")
        assert victim_pid is not None, "no poller was caught between its commit and its confirmation"
        [victim] = [p for p in processes if p.process is not None and p.process.pid == victim_pid]
        assert victim.process is not None
        victim.process.send_signal(signal.SIGKILL)
        await victim.process.wait()
        assert [u["update_id"] for u in telegram.bot(target.token).pending][:1] == [first]  # still unconfirmed

        await asyncio.gather(*(bot.send(15) for bot in bots))  # meanwhile Telegram keeps them
        await eventually(lambda: all(bot.all_confirmed() for bot in bots), "every update confirmed", timeout=120)
        await eventually(lambda: all_processed(database), "every update processed", timeout=120)
        assert await holder_pid(database, target) not in (None, victim_pid)  # taken over

        for bot in bots:
            assert await stored(database, bot) == list(range(1, bot.sent + 1))  # each once
            assert await received(database, bot.chat_id) == bot.sent  # counted once
        conflicts = [a for a in telegram.arrivals if a.method.lower() == "getupdates" and a.status == 409]
        assert conflicts == [], conflicts  # never two polls of one bot at once (TERMINATED_BY_GET_UPDATES)
        per_bot = Counter(a.bot for a in telegram.arrivals if a.method.lower() == "getupdates")
        assert set(per_bot) == {"fleet_one_bot", "fleet_two_bot"}
    finally:
        logs = [await process.stop() for process in processes]
    for log in logs:
        assert "Traceback" not in log, log[-5000:]  # the killed process logged nothing of its death


def polled(telegram: Any, token: str) -> bool:
    return telegram.polling(token).is_set()


async def _stored_through(db: Database, bot: Bot, last: int) -> bool:
    return last in await stored(db, bot)
