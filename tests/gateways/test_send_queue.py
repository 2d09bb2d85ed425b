"""The send queue: plugins' Bot API calls, through the gateway service, under Telegram's limits.

The fake Bot API holds sends to Telegram's limits (`enforce_limits`: a message that comes too soon
gets a 429) and records when each request arrived; the assertions are on those arrivals: their
order, and that each came no sooner than its turn, counted from before the first was reserved (a
busy machine only makes sends later; `on_their_turns`). `SLACK` covers converting the limits' clock
to ours, and lets the fake forgive a little jitter. The exact spacing of reservations is
tests/gateways/test_send_limits.py's. Where a test needs something done before a call's turn comes,
it waits for that turn's reservation and sets turns seconds apart, so a slow machine cannot reorder it."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiogram.types import Message

from app.errors import GatewayUnreachable
from app.gateways.models import SendLimit
from app.gateways.sendqueue import SendRateLimited
from app.gateways.telegram import TelegramRefused
from app.plugins.contract import (
    EventType,
    PluginContext,
    PluginEvent,
    PluginHandler,
    TelegramMessageEvent,
)
from app.plugins.models import RunOutcome, RunRecord
from tests.fakes.telegram import FakeTelegram, SendLimits, unreachable_url
from tests.support.eventually import eventually
from tests.support.live import LiveApp, TestUser
from tests.support.plugins import definition
from tests.support.redis_server import RedisServer
from tests.support.runtime import ConnectedBot, connect_bot, deliver, install, wait_until_processed
from tests.support.telegram_updates import message_update

SLACK = 0.5
# Where a test asserts that Telegram never had to say "too many", the queue sends at half Telegram's
# rate. A send that a busy machine makes late shortens the gap before the next one; at Telegram's own
# rate a stall of SLACK would bring the gap under its interval, at half its rate only a stall of a
# whole interval more.
HALF_RATE: dict[str, Any] = {"send_chat_per_second": 0.5, "send_group_per_minute": 10}
CHAT = 1001
GROUP = -1001


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A private Redis, started before the apps that use it and stopped after them."""
    server = RedisServer(tmp_path)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def owner(app: LiveApp) -> TestUser:
    return await app.create_user("owner@example.com", "business")


@pytest.fixture
async def bot(app: LiveApp, owner: TestUser, telegram: FakeTelegram) -> ConnectedBot:
    connected = await connect_bot(app, owner, telegram)
    telegram.enforce_limits(SendLimits(slack=SLACK))
    return connected


async def send(
    app: LiveApp,
    owner: TestUser,
    bot: ConnectedBot,
    chat_id: int = CHAT,
    deadline: float | None = None,
    text: str = "hi",
) -> Any:
    with app.db():
        return await app.platform.gateways.execute(
            owner.id, bot.gateway_id, "sendMessage", {"chat_id": chat_id, "text": text}, deadline=deadline
        )


def chat_key(telegram: FakeTelegram, bot: ConnectedBot, chat_id: int) -> str:
    return f"chat:{telegram.bot(bot.token).bot_id}:{chat_id}"


async def free_at(app: LiveApp, key: str) -> float | None:
    """The next free time the send limits keep for `key` (None: free)."""
    with app.db():
        row = await SendLimit.get_or_none(key=key)
    return None if row is None else row.free_at


async def moved_on(app: LiveApp, key: str, before: float | None) -> bool:
    after = await free_at(app, key)
    return after is not None and (before is None or after > before)


def now() -> float:
    return asyncio.get_running_loop().time()  # time.monotonic, the fake's clock too


def on_their_turns(arrivals: list[Any], started: float, interval: float) -> bool:
    """The k-th send arrived at least k intervals after `started`, a time before the first turn was
    reserved. A busy machine only ever makes a send later than its turn, so this holds however late
    any one is (the gap between two arrivals does not: a late one shortens the next gap); SLACK
    covers converting the limits' clock (the database's or Redis's) to ours."""
    return all(a.at - started >= k * interval - SLACK for k, a in enumerate(arrivals))


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]


async def test_a_burst_to_one_chat_goes_out_on_its_turns(make_app, owner, bot, telegram):
    app = await make_app(**HALF_RATE)
    started = now()
    results = await asyncio.gather(*(send(app, owner, bot, text=f"m{i}") for i in range(3)))
    assert all(isinstance(result, Message) for result in results)
    arrivals = telegram.sends(CHAT)
    assert [a.status for a in arrivals] == [200, 200, 200]  # Telegram never had to say "too many"
    assert on_their_turns(arrivals, started, 2)


async def test_a_group_gets_its_messages_on_their_turns(make_app, owner, bot, telegram):
    app = await make_app(**HALF_RATE)
    started = now()
    await asyncio.gather(send(app, owner, bot, GROUP), send(app, owner, bot, GROUP))
    arrivals = telegram.sends(GROUP)
    assert [a.status for a in arrivals] == [200, 200]
    assert on_their_turns(arrivals, started, 6)  # 10 a minute


async def test_other_chats_are_not_held_back_by_one_chats_wait(make_app, owner, bot, telegram):
    app = await make_app(send_chat_per_second=0.5)  # a turn every 2 s: time enough for the other chats' sends
    started = now()
    await send(app, owner, bot, 1)
    reserved = await free_at(app, chat_key(telegram, bot, 1))
    waiting = asyncio.create_task(send(app, owner, bot, 1))  # its turn is 2 s away
    await eventually(lambda: moved_on(app, chat_key(telegram, bot, 1), reserved), "the waiting call's turn reserved")
    await send(app, owner, bot, 2)
    await send(app, owner, bot, 3)
    await waiting
    assert [(a.chat_id, a.status) for a in telegram.sends()] == [("1", 200), ("2", 200), ("3", 200), ("1", 200)]
    assert on_their_turns(telegram.sends(1), started, 2)


async def test_a_429_makes_the_queue_wait_retry_after_then_send(app, owner, bot, telegram):
    telegram.flood(retry_after=1)
    result = await send(app, owner, bot)
    assert isinstance(result, Message) and result.text == "hi"
    refused, sent = telegram.sends(CHAT)
    assert (refused.status, sent.status) == (429, 200)
    assert sent.at - refused.at >= 1 - SLACK
    assert len(telegram.bot(bot.token).sent_messages) == 1


async def test_a_429_pauses_every_call_of_the_bot(app, owner, bot, telegram):
    telegram.flood(retry_after=2)
    first = asyncio.create_task(send(app, owner, bot, 1))
    limits = app.platform.gateways.sends.limits
    bot_id = telegram.bot(bot.token).bot_id
    with app.db():
        while await limits.paused_for(str(bot_id)) == 0:  # the 429 came back and paused the bot
            await asyncio.sleep(0.01)
    await asyncio.gather(first, send(app, owner, bot, 2))
    refused, *later = telegram.sends()
    assert refused.status == 429 and [a.status for a in later] == [200, 200]
    assert all(a.at - refused.at >= 2 - SLACK for a in later)  # chat 2 waited for chat 1's pause too


async def test_a_429_also_holds_the_calls_already_waiting_for_their_turn(make_app, owner, bot, telegram):
    app = await make_app(send_chat_per_second=0.5)  # a turn every 2 s: the 429 below comes well before it
    await send(app, owner, bot, 2)
    reserved = await free_at(app, chat_key(telegram, bot, 2))
    queued = asyncio.create_task(send(app, owner, bot, 2))  # its turn is 2 s away
    await eventually(lambda: moved_on(app, chat_key(telegram, bot, 2), reserved), "the queued call's turn reserved")
    telegram.flood(retry_after=3)
    await send(app, owner, bot, 1)  # 429 first: the bot pauses for 3 s, past the queued call's turn, then it is sent
    await queued
    refused = next(a for a in telegram.sends() if a.status == 429)
    queued_arrival = telegram.sends(2)[-1]
    assert queued_arrival.status == 200
    assert queued_arrival.at - refused.at >= 3 - SLACK  # it waited out the pause that came after it queued


async def test_a_5xx_is_retried_with_a_doubling_backoff(make_app, owner, bot, telegram):
    app = await make_app(send_retry_backoff_seconds=0.2)
    telegram.fail_next("sendMessage", status=502, description="Bad Gateway")
    telegram.fail_next("sendMessage", status=500, description="Internal Server Error")
    assert isinstance(await send(app, owner, bot), Message)
    arrivals = telegram.sends(CHAT)
    assert [a.status for a in arrivals] == [502, 500, 200]
    first, second = gaps([a.at for a in arrivals])
    assert first >= 0.2 and second >= 0.4


async def test_5xx_retries_are_bounded(make_app, owner, bot, telegram):
    app = await make_app(send_retry_backoff_seconds=0.05, send_retries=3)
    for _ in range(5):
        telegram.fail_next("sendMessage", status=502, description="Bad Gateway")
    with pytest.raises(GatewayUnreachable) as caught:
        await send(app, owner, bot)
    assert caught.value.message == f"The Telegram Bot API at {telegram.url} failed: Bad Gateway"
    assert [a.status for a in telegram.sends(CHAT)] == [502] * 4  # the call and three retries


async def test_a_refusal_is_not_retried_and_never_shows_the_token(app, owner, bot, telegram):
    telegram.fail_next("sendMessage", status=403, description=f"Forbidden: bot {bot.token} was blocked by the user")
    with pytest.raises(TelegramRefused) as caught:
        await send(app, owner, bot)
    assert caught.value.code == "BAD_USER_INPUT"
    assert caught.value.message == "Telegram refused sendMessage: Forbidden: bot [redacted] was blocked by the user"
    assert bot.token.split(":")[1] not in caught.value.message
    assert [a.status for a in telegram.sends(CHAT)] == [403]


async def test_network_failures_are_retried_then_reported(make_app, owner, bot, telegram, caplog):
    # Another process, whose Bot API address refuses connections, sends for the same gateway.
    down = await make_app(telegram_api_url=unreachable_url(), send_retry_backoff_seconds=0.05, send_retries=2)
    with caplog.at_level(logging.WARNING, logger="app.gateways.sendqueue"):
        with pytest.raises(GatewayUnreachable, match="could not be reached: connection refused"):
            await send(down, owner, bot)
    retries = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
    assert len(retries) == 2
    assert all(bot.token not in r.getMessage() for r in caplog.records)


async def test_a_wait_longer_than_the_run_has_left_fails_at_once_and_takes_no_slot(make_app, owner, bot, telegram):
    app = await make_app(send_chat_per_second=0.5)  # the next turn 2 s away: far beyond the 0.3 s left
    started = now()
    await send(app, owner, bot)
    reserved = await free_at(app, chat_key(telegram, bot, CHAT))
    loop = asyncio.get_running_loop()
    with pytest.raises(SendRateLimited) as caught:
        await send(app, owner, bot, deadline=loop.time() + 0.3)
    assert re.fullmatch(
        r"rate limited: @test_bot's call to chat 1001 would wait \d\.\d s for its turn, "
        r"more than the 0\.[0-3] s the run has left",
        caught.value.message,
    ), caught.value.message
    assert len(telegram.sends(CHAT)) == 1  # nothing was sent for it
    assert await free_at(app, chat_key(telegram, bot, CHAT)) == reserved  # and it held no slot
    await send(app, owner, bot)
    assert on_their_turns(telegram.sends(CHAT), started, 2)


async def test_a_cancelled_wait_gives_its_slot_back(make_app, owner, bot, telegram):
    app = await make_app(send_chat_per_second=0.5)  # the next turn 2 s away: cancelled well before it
    started = now()
    await send(app, owner, bot)
    reserved = await free_at(app, chat_key(telegram, bot, CHAT))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):  # as the executor's timeout cancels a plugin run
            await send(app, owner, bot)
    assert await free_at(app, chat_key(telegram, bot, CHAT)) == reserved  # the cancelled call's slot was given back
    await send(app, owner, bot)
    assert [a.status for a in telegram.sends(CHAT)] == [200, 200]
    assert on_their_turns(telegram.sends(CHAT), started, 2)


async def test_a_flood_wait_beyond_the_deadline_fails_at_once(app, owner, bot, telegram):
    telegram.flood(retry_after=30)
    loop = asyncio.get_running_loop()
    with pytest.raises(SendRateLimited, match=r"would wait \d+\.\d s for its turn \(Telegram asked the bot to wait\)"):
        await send(app, owner, bot, deadline=loop.time() + 5)
    assert [a.status for a in telegram.sends(CHAT)] == [429]


async def test_two_processes_share_one_bots_limits(make_app, owner, bot, telegram):
    one, other = await make_app(**HALF_RATE), await make_app(**HALF_RATE)  # two Platforms on one database
    started = now()
    await asyncio.gather(*(send(process, owner, bot, text=f"m{i}") for i, process in enumerate([one, other] * 2)))
    arrivals = telegram.sends(CHAT)
    assert [a.status for a in arrivals] == [200] * 4
    assert on_their_turns(arrivals, started, 2)


async def test_two_processes_share_one_bots_limits_through_redis(redis_server, make_app, owner, telegram):
    # The third group message's turn is 12 s away: longer than a run's default 10 s to wait.
    one = await make_app(broadcast_url=redis_server.url, plugin_timeout_seconds=20, **HALF_RATE)
    two = await make_app(broadcast_url=redis_server.url, plugin_timeout_seconds=20, **HALF_RATE)
    connected = await connect_bot(one, owner, telegram)
    telegram.enforce_limits(SendLimits(slack=SLACK))
    started = now()
    await asyncio.gather(*(send(process, owner, connected, GROUP) for process in (one, two, one)))
    with one.db():
        assert await SendLimit.all().count() == 0  # Redis kept the limits, not the database
    arrivals = telegram.sends(GROUP)
    assert [a.status for a in arrivals] == [200] * 3
    assert on_their_turns(arrivals, started, 6)


class ChattyPlugin(PluginHandler):
    """Answers every message with three messages to its chat."""

    definition = definition("chatty")
    events = frozenset({EventType.TELEGRAM_MESSAGE})

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        assert isinstance(event, TelegramMessageEvent)
        for i in range(3):
            await ctx.gateways.execute(
                event.gateway_id, "sendMessage", {"chat_id": event.message.chat.id, "text": f"reply {i}"}
            )


async def test_a_run_that_would_wait_past_its_timeout_fails_at_once_with_the_reason_in_its_history(make_app, telegram):
    # A turn every 2.5 s and runs of 4.9 s: the second reply's turn (2.5 s after the first) comes
    # within the run however long the first took to go out (up to 2.4 s), the third's (5 s) never does.
    app = await make_app(handlers=[ChattyPlugin()], send_chat_per_second=0.4, plugin_timeout_seconds=4.9)
    owner = await app.create_user("chatty@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    telegram.enforce_limits(SendLimits(slack=SLACK))
    installed = await install(app, owner, "chatty")

    await deliver(app, bot, message_update(1, chat_id=77))
    await wait_until_processed(app)

    with app.db():
        runs = await RunRecord.filter(install_id=installed.id).values_list("outcome", "error")
    [(outcome, error)] = runs
    assert outcome == RunOutcome.FAILED
    assert re.fullmatch(
        r"SendRateLimited: rate limited: @test_bot's call to chat 77 would wait \d\.\d s for its turn, "
        r"more than the \d\.\d s the run has left",
        error,
    ), error
    assert "Timed out" not in error  # it did not block until the timeout cut it off
    assert [m["text"] for m in telegram.bot(bot.token).sent_messages] == ["reply 0", "reply 1"]
    assert [a.status for a in telegram.sends(77)] == [200, 200]
