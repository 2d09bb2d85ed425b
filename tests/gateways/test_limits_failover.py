"""Send limits through a Redis outage (BROADCAST_URL=redis://…): while Redis cannot be reached, the
database keeps the limits, and Redis takes them back when it answers. A private redis-server is
stopped (nothing listens: connections are refused) or frozen (SIGSTOP: the port is open, nothing
answers) for real; two FailoverLimits stand for two processes."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.db import Database
from app.gateways.limits import DatabaseLimits, RedisLimits, Reservation, SendRates, bot_slot, slots_for
from app.gateways.limits_failover import DATABASE, REDIS, FailoverLimits
from app.gateways.models import SendLimit
from app.plugins.models import RunOutcome, RunRecord, UserPlugin
from tests.fakes.telegram import SendLimits
from tests.support.redis_server import RedisServer
from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.telegram_updates import new_members_update, user

RATES = SendRates()
BOT = 7_000_002
CHAT = 42
GROUP = -1002001
SLACK = 0.5  # the fake Bot API's: see tests/gateways/test_send_queue.py
EPSILON = 0.5  # how much of a pause a round trip may use up on a busy machine


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path)
    await server.start()
    yield server
    await server.stop()  # frozen or not


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await db.open()
    yield db
    await db.close()


@pytest.fixture
async def processes(redis_server: RedisServer, database: Database) -> AsyncIterator[list[FailoverLimits]]:
    """Two processes' send limits, on the same Redis and the same database (bound while the test runs);
    Redis is tried again only when the test says so."""
    made = [FailoverLimits(RedisLimits(redis_server.url), DatabaseLimits(), probe_every_seconds=3600) for _ in range(2)]
    with database.bound():
        yield made
    for limits in made:
        await limits.close()


@dataclass(frozen=True)
class Due:
    """When a reservation's send is due by this process's clock: between `earliest` and `latest`, as
    the store read its own clock somewhere within the round trip."""

    earliest: float
    latest: float


def spaced(first: Due, second: Due, interval: float) -> bool:
    """Whether the two sends can be `interval` apart: a send reserved at once would be due within
    a round trip of the first, whatever the machine's load."""
    return second.latest - first.earliest >= interval


async def _reserve(limits: FailoverLimits, chat: int = CHAT) -> tuple[Reservation, Due]:
    """A reservation, and when its send is due by this process's clock."""
    before = time.monotonic()
    reservation = await limits.reserve(str(BOT), slots_for(BOT, chat, RATES), None, bot_slot(BOT, RATES))
    return reservation, Due(before + reservation.wait, time.monotonic() + reservation.wait)


async def test_while_redis_is_away_the_database_keeps_the_limits_from_where_redis_left_them(
    processes, redis_server, caplog
):
    limits, _ = processes
    made = [await _reserve(limits) for _ in range(3)]  # due now, in 1 s, in 2 s
    assert [r.store for r, _ in made] == [REDIS] * 3
    assert await SendLimit.all().count() == 0

    await redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="app.gateways"):
        during = [await _reserve(limits) for _ in range(2)]

    assert [r.store for r, _ in during] == [DATABASE] * 2 and limits.store == DATABASE
    due = [at for _, at in made + during]
    assert all(spaced(a, b, RATES.chat.interval) for a, b in zip(due, due[1:]))  # not at once after Redis went
    assert await SendLimit.filter(key=f"chat:{BOT}:{CHAT}").exists()
    address = f"127.0.0.1:{redis_server.port}"
    assert any(address in r.getMessage() and "cannot be reached" in r.getMessage() for r in caplog.records)


async def test_when_redis_answers_again_it_holds_what_was_reserved_in_the_database_meanwhile(processes, redis_server):
    one, two = processes
    await redis_server.stop()
    reserved = [await _reserve(one) for _ in range(3)]  # the last one is due in 2 s
    await one.pause(str(BOT + 1), 30)  # Telegram asked another bot to wait
    assert [r.store for r, _ in reserved] == [DATABASE] * 3

    await redis_server.start()  # empty: it kept nothing
    assert await one.recover() and one.store == REDIS

    after, due = await _reserve(two)  # another process, that never saw the database's reservations
    assert after.store == REDIS
    assert spaced(reserved[-1][1], due, RATES.chat.interval)
    assert 30 - EPSILON <= await two.paused_for(str(BOT + 1)) <= 30


async def test_redis_is_tried_again_in_the_background_while_sends_come(redis_server, database):
    limits = FailoverLimits(RedisLimits(redis_server.url), DatabaseLimits(), probe_every_seconds=0)
    with database.bound():
        try:
            await redis_server.stop()
            first, _ = await _reserve(limits)
            assert first.store == DATABASE
            await redis_server.start()
            deadline = time.monotonic() + 30
            while (reservation := (await _reserve(limits, CHAT + 1))[0]).store != REDIS:  # each one starts a try
                assert time.monotonic() < deadline, "the limits never moved back to Redis"
            assert reservation.granted
        finally:
            await limits.close()


async def test_a_redis_that_stops_answering_is_left_for_the_database(processes, redis_server):
    limits, _ = processes
    redis_server.freeze()
    reservation, _ = await _reserve(limits)
    assert reservation.store == DATABASE and reservation.granted
    assert not await limits.recover()  # still frozen
    redis_server.thaw()
    assert await limits.recover()


async def test_a_reservation_given_back_goes_back_to_the_store_that_made_it(processes, redis_server):
    limits, _ = processes
    first, _ = await _reserve(limits)
    second, _ = await _reserve(limits)
    await redis_server.stop()
    await limits.give_back(second)  # Redis is away: its key runs out by itself
    in_database, _ = await _reserve(limits)
    taken, _ = await _reserve(limits)
    await limits.give_back(taken)
    again, _ = await _reserve(limits)
    assert in_database.store == taken.store == again.store == DATABASE
    assert again.held[0].after == taken.held[0].after  # the slot given back was taken again


async def test_a_greeting_for_a_join_while_redis_is_away_is_sent_once_within_the_limits(
    redis_server, make_app, telegram
):
    # One message a second in the group (its own limit set to 60 a minute), Telegram's 1 s per chat.
    app = await make_app(broadcast_url=redis_server.url, send_group_per_minute=60)
    owner = await app.create_user("owner@example.com", "business")
    bot = await connect_bot(app, owner, telegram)
    telegram.enforce_limits(SendLimits(slack=SLACK))
    installed = await install(app, owner, "welcome")
    limits = app.platform.gateways.sends.limits
    assert isinstance(limits, FailoverLimits)

    async def join(update_id: int, name: str) -> None:
        response = await deliver(app, bot, new_members_update(update_id, user(2000 + update_id, name), chat_id=GROUP))
        assert response.status_code == 200

    await join(1, "Ada")
    await wait_until_processed(app)
    assert limits.store == REDIS

    await redis_server.stop()
    await join(2, "Grace")
    await join(3, "Edsger")
    await wait_until_processed(app)
    assert limits.store == DATABASE

    await redis_server.start()
    with app.db():
        assert await limits.recover()
    await join(4, "Barbara")
    await wait_until_processed(app)
    assert limits.store == REDIS

    sent = Counter(m["text"] for m in telegram.bot(bot.token).sent_messages)
    assert sent == Counter(f"Welcome, {name}!" for name in ("Ada", "Grace", "Edsger", "Barbara"))  # each once
    arrivals = telegram.sends(GROUP)
    assert [a.status for a in arrivals] == [200] * 4  # Telegram never had to say "too many"
    assert all(b.at - a.at >= 1 - SLACK for a, b in zip(arrivals, arrivals[1:]))
    with app.db():
        runs = await RunRecord.filter(install_id=installed.id).values_list("outcome", "error")
        reason = (await UserPlugin.get(id=installed.id)).status_reason
    assert runs == [(RunOutcome.SUCCEEDED, None)] * 4
    assert reason is None or str(redis_server.port) not in reason
