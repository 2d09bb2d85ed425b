"""Shared send limits: GCRA reservations that every process of a deployment sees, in the database
(SQLite and PostgreSQL) or in Redis. Two stores stand for two processes: each has its own
connection. Reservations are not slept on here; their waits are compared with Telegram's rules."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.db import Database
from app.gateways.limits import (
    _RESERVE,
    DatabaseLimits,
    LimitsUnavailable,
    Rate,
    RedisLimits,
    Reservation,
    SendLimits,
    SendRates,
    Slot,
    bot_slot,
    pause_key,
    plan,
    reservation_of,
    reserve_arguments,
    slots_for,
)
from app.gateways.models import SendLimit
from tests.support.hostile import scaled
from tests.support.redis_server import RedisServer, shared_redis_url

RATES = SendRates()  # Telegram's: 1 a second per chat, 20 a minute per group, 30 a second per bot
BOT = 7_000_001
CHAT = 42
GROUP = -1001234
TURN = bot_slot(BOT, RATES)
# How much of a wait (or a pause) a round trip may use up on a busy machine.
EPSILON = 0.5


# -- the rule itself ------------------------------------------------------------------------------


def test_a_free_chat_sends_at_once_and_moves_on_by_its_interval():
    slots = slots_for(BOT, CHAT, RATES)
    first = plan(100.0, 0.0, {}, slots, budget=None, turn=TURN)
    assert (first.granted, first.wait, first.turn_taken) == (True, 0.0, True)
    times = {held.key: held.after for held in first.held}
    assert times == {f"chat:{BOT}:{CHAT}": 101.0, f"bot:{BOT}": 100.0 + 1 / 30}
    second = plan(100.0, 0.0, times, slots, budget=None, turn=TURN)
    assert (second.wait, second.turn_taken) == (pytest.approx(1.0), False)
    assert [held.key for held in second.held] == [f"chat:{BOT}:{CHAT}"]  # the bot's turn is taken when it comes


def test_a_far_turn_does_not_hold_up_the_bots_other_chats():
    times = {f"chat:{BOT}:1": 105.0, f"bot:{BOT}": 100.0 + 1 / 30}
    far = plan(100.0, 0.0, times, slots_for(BOT, 1, RATES), budget=None, turn=TURN)
    assert (far.wait, far.turn_taken) == (5.0, False)
    times.update({held.key: held.after for held in far.held})
    other = plan(100.0, 0.0, times, slots_for(BOT, 2, RATES), budget=None, turn=TURN)
    assert (other.wait, other.turn_taken) == (pytest.approx(1 / 30), True)


def test_the_bots_turn_is_reserved_ahead_for_the_moment_the_chats_comes():
    turn = plan(100.0, 0.0, {f"bot:{BOT}": 100.05}, [], budget=None, turn=TURN, not_before=0.1)
    assert (turn.wait, turn.turn_taken) == (pytest.approx(0.1), True)
    paused = plan(100.0, 102.0, {}, [], budget=None, turn=TURN, not_before=0.1)
    assert (paused.wait, paused.paused, paused.turn_taken) == (2.0, 2.0, False)


def test_groups_and_channels_also_hold_a_minute_budget():
    assert [s.key for s in slots_for(BOT, GROUP, RATES)] == [f"chat:{BOT}:{GROUP}", f"group:{BOT}:{GROUP}"]
    assert [s.key for s in slots_for(BOT, "@channel", RATES)][1:] == [f"group:{BOT}:@channel"]
    assert [s.key for s in slots_for(BOT, CHAT, RATES)] == [f"chat:{BOT}:{CHAT}"]
    assert slots_for(BOT, None, RATES) == []  # answerCallbackQuery: no chat, the bot's turn only
    assert RATES.group.interval == 3.0  # 20 a minute, spread evenly


def test_a_long_chat_id_is_hashed_into_a_bounded_key():
    keys = [s.key for s in slots_for(BOT, "@" + "x" * 300, RATES)]
    assert all(len(key) <= 96 for key in keys)  # the send_limits.key column


def test_a_burst_allowance_lets_that_many_go_at_once():
    turn = bot_slot(BOT, SendRates(bot=Rate(1.0, burst=3)))
    times: dict[str, float] = {}
    waits = []
    for _ in range(4):
        reservation = plan(0.0, 0.0, times, [], budget=None, turn=turn)
        waits.append(reservation.wait)
        times = {held.key: held.after for held in reservation.held}
    assert waits == [0.0, 0.0, 0.0, 1.0]


def test_a_wait_beyond_the_budget_reserves_nothing():
    reservation = plan(10.0, 0.0, {f"chat:{BOT}:{CHAT}": 12.0}, slots_for(BOT, CHAT, RATES), budget=1.5, turn=TURN)
    assert (reservation.granted, reservation.wait, reservation.held) == (False, 2.0, ())


def test_a_pause_holds_every_key_of_the_bot():
    reservation = plan(10.0, 15.0, {}, slots_for(BOT, CHAT, RATES), budget=None, turn=TURN)
    assert (reservation.wait, reservation.paused, reservation.turn_taken) == (5.0, 5.0, False)


# -- the stores, as two processes see them --------------------------------------------------------

StoreFactory = Callable[[], Awaitable[SendLimits]]


class OwnConnection:
    """DatabaseLimits on a database connection of its own, as in another process."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.limits = DatabaseLimits()

    async def reserve(
        self, scope: str, slots: Sequence[Slot], budget: float | None, turn: Slot | None = None, not_before: float = 0.0
    ) -> Reservation:
        with self.db.bound():
            return await self.limits.reserve(scope, slots, budget, turn, not_before)

    async def give_back(self, reservation: Reservation) -> None:
        with self.db.bound():
            await self.limits.give_back(reservation)

    async def pause(self, scope: str, seconds: float) -> None:
        with self.db.bound():
            await self.limits.pause(scope, seconds)

    async def paused_for(self, scope: str) -> float:
        with self.db.bound():
            return await self.limits.paused_for(scope)

    async def close(self) -> None:
        return None


# -- the Redis script is the same rule ------------------------------------------------------------

TIMES = st.floats(-5, 5).map(lambda offset: round(offset, 6))
BOT_IDS = itertools.count(8_000_000)


@st.composite
def reservation_cases(draw: st.DrawFn) -> dict:
    now = round(draw(st.floats(1_000_000, 1_001_000)), 6)
    bot = next(BOT_IDS)
    slots = slots_for(bot, draw(st.sampled_from([CHAT, GROUP, "@channel", None])), RATES)
    turn = draw(st.sampled_from([None, bot_slot(bot, RATES)]))
    keys = [slot.key for slot in [*slots, *([turn] if turn else [])]]
    current = {key: float(f"{now + offset:.6f}") for key in keys if (offset := draw(st.none() | TIMES)) is not None}
    pause = draw(st.none() | TIMES)
    return {
        "now": now,
        "scope": str(bot),
        "pause_until": 0.0 if pause is None else float(f"{now + pause:.6f}"),
        "current": current,
        "slots": slots,
        "turn": turn,
        "budget": draw(st.none() | st.floats(0, 3)),
        "not_before": draw(st.sampled_from([0.0, 0.1, 1.5])),
    }


def as_text(reservation: Reservation) -> tuple:
    """What the script stores and answers, to the microsecond."""
    return (
        reservation.granted,
        reservation.turn_taken,
        f"{reservation.wait:.6f}",
        f"{reservation.paused:.6f}",
        [(held.key, f"{held.before:.6f}", f"{held.after:.6f}") for held in reservation.held],
    )


async def reserve_in_redis(url: str, case: dict) -> Reservation:
    """_RESERVE run at `case`'s time, on `case`'s stored times (removed again after)."""
    from redis import asyncio as aioredis

    from app.gateways.limits import REDIS_PREFIX

    client = aioredis.Redis.from_url(url)
    stored = {REDIS_PREFIX + key: f"{time:.6f}" for key, time in case["current"].items()}
    if case["pause_until"]:
        stored[REDIS_PREFIX + pause_key(case["scope"])] = f"{case['pause_until']:.6f}"
    keys, args = reserve_arguments(
        case["scope"], case["slots"], case["budget"], case["turn"], case["not_before"], now=case["now"]
    )
    try:
        if stored:
            await client.mset(stored)
        return reservation_of(await client.register_script(_RESERVE)(keys=keys, args=args), case["slots"], case["turn"])
    finally:
        await client.delete(*keys)
        await client.aclose()


REDIS_URL: list[str] = []


@settings(max_examples=scaled(60), deadline=None)
@given(case=reservation_cases())
def test_the_redis_script_reserves_exactly_as_plan_does(case: dict) -> None:
    if not REDIS_URL:
        REDIS_URL.append(asyncio.run(shared_redis_url()))
    expected = plan(
        case["now"],
        case["pause_until"],
        case["current"],
        case["slots"],
        case["budget"],
        case["turn"],
        case["not_before"],
    )
    assert as_text(asyncio.run(reserve_in_redis(REDIS_URL[0], case))) == as_text(expected)


@pytest.fixture(params=["database", "redis"])
async def stores(
    request: pytest.FixtureRequest, backend: str, database_url: str, tmp_path: Path
) -> AsyncIterator[StoreFactory]:
    """Makes stores that share their limits as separate processes would: each with its own
    database connection (SQLite or PostgreSQL, bound while the test runs) or its own Redis client."""
    if request.param == "redis" and backend != "sqlite":
        pytest.skip("the Redis store does not depend on the database: it runs once, with the SQLite set")
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "database":

            async def make() -> SendLimits:
                db = Database(database_url)
                await db.open()
                stack.push_async_callback(db.close)
                return OwnConnection(db)

        else:
            server = RedisServer(tmp_path)
            await server.start()
            stack.push_async_callback(server.stop)

            async def make() -> SendLimits:
                limits = RedisLimits(server.url)
                stack.push_async_callback(limits.close)
                return limits

        yield make


async def _reserve(limits: SendLimits, chat: int | str | None = CHAT, budget: float | None = None) -> Reservation:
    return await limits.reserve(str(BOT), slots_for(BOT, chat, RATES), budget, TURN)


def _slots(*reservations: Reservation) -> list[float]:
    """When each reservation's send is due by the store's clock, in seconds after the first's: the
    first key it moved, less that key's interval (exact, whatever the round trips took)."""
    intervals = {"chat": RATES.chat.interval, "group": RATES.group.interval, "bot": RATES.bot.interval}
    due = [r.held[0].after - intervals[r.held[0].key.split(":")[0]] for r in reservations]
    return [at - due[0] for at in due]


async def test_one_chats_sends_from_two_processes_are_a_second_apart(stores):
    one, two = await stores(), await stores()
    made = [await _reserve(limits) for limits in (one, two, one, two)]
    assert all(r.granted for r in made)
    assert _slots(*made) == pytest.approx([0, 1, 2, 3], abs=1e-5)


async def test_concurrent_reservations_never_share_a_slot(stores):
    one, two = await stores(), await stores()
    reservations = await asyncio.gather(*(_reserve(limits) for limits in [one, two] * 5))
    due = sorted(_slots(*reservations))
    assert len(due) == 10
    assert [b - a for a, b in zip(due, due[1:])] == pytest.approx([1.0] * 9, abs=1e-5)


async def test_other_chats_of_the_bot_wait_only_for_the_bots_rate(stores):
    limits = await stores()
    made = [await _reserve(limits, chat) for chat in (1, 2, 3)]
    assert all(r.turn_taken and r.wait <= 3 * RATES.bot.interval + 1e-3 for r in made)  # no chat's second
    bot_times = [held.after for r in made for held in r.held if held.key.startswith("bot:")]
    assert all(b - a >= RATES.bot.interval - 1e-5 for a, b in zip(bot_times, bot_times[1:]))


async def test_a_far_turn_in_one_chat_holds_up_no_other_chat(stores):
    one, two = await stores(), await stores()
    first = await _reserve(one)
    far = await _reserve(two)
    assert far.turn_taken is False and _slots(first, far) == pytest.approx([0, 1], abs=1e-5)
    other = await _reserve(one, 2)
    assert other.turn_taken and other.wait <= RATES.bot.interval + 1e-3  # not chat 1's second


async def test_the_bots_turn_reserved_ahead_tells_of_a_pause(stores):
    limits = await stores()
    ahead = await limits.reserve(str(BOT), [], None, TURN, not_before=0.1)
    assert (ahead.wait, ahead.paused, ahead.turn_taken) == (pytest.approx(0.1, abs=1e-5), 0.0, True)
    await limits.pause(str(BOT), 2)
    paused = await limits.reserve(str(BOT), [], None, TURN, not_before=0.1)
    assert 2 - EPSILON <= paused.paused <= 2 and paused.wait == pytest.approx(paused.paused, abs=1e-5)
    assert not paused.turn_taken and paused.held == ()


async def test_a_group_gets_one_message_every_three_seconds(stores):
    limits = await stores()
    made = [await _reserve(limits, GROUP) for _ in range(3)]
    assert _slots(*made) == pytest.approx([0, 3, 6], abs=1e-5)


async def test_a_reservation_over_budget_takes_no_slot(stores):
    limits = await stores()
    first = await _reserve(limits)
    refused = await _reserve(limits, budget=0.5)
    assert not refused.granted and 1 - EPSILON <= refused.wait <= 1 and refused.held == ()
    after = await _reserve(limits)
    assert _slots(first, after) == pytest.approx([0, 1], abs=1e-5)  # not 2: the refused one holds nothing


async def test_giving_back_the_last_reservation_frees_its_slot(stores):
    one, two = await stores(), await stores()
    first = await _reserve(one)
    second = await _reserve(two)
    await two.give_back(second)
    third = await _reserve(one)
    assert _slots(first, second, third) == pytest.approx([0, 1, 1], abs=1e-5)


async def test_giving_back_a_reservation_with_later_ones_on_top_changes_nothing(stores):
    limits = await stores()
    first = await _reserve(limits)
    second = await _reserve(limits)
    await _reserve(limits)  # due at 2
    await limits.give_back(second)  # too late to reuse: the one at 2 was planned after it
    fourth = await _reserve(limits)
    assert _slots(first, fourth) == pytest.approx([0, 3], abs=1e-5)


async def test_a_pause_holds_the_whole_bot_in_every_process(stores):
    one, two = await stores(), await stores()
    await one.pause(str(BOT), 2)
    await one.pause(str(BOT), 1)  # a shorter pause never shortens a longer one
    assert 2 - EPSILON <= await two.paused_for(str(BOT)) <= 2
    assert 2 - EPSILON <= (await _reserve(two, 99)).wait <= 2
    other_bot = await two.reserve(str(BOT + 1), slots_for(BOT + 1, CHAT, RATES), None, bot_slot(BOT + 1, RATES))
    assert other_bot.wait == 0


async def test_old_rows_are_pruned(database_url):
    db = Database(database_url)
    await db.open()
    try:
        with db.bound():
            limits = DatabaseLimits()
            await SendLimit.create(key="chat:1:1", free_at=time.time() - 3600)
            await _reserve(limits)
            await limits.prune()
            assert sorted(await SendLimit.all().values_list("key", flat=True)) == [f"bot:{BOT}", f"chat:{BOT}:{CHAT}"]
    finally:
        await db.close()


async def test_redis_out_of_reach_is_told_to_the_operator_and_never_named_to_users(tmp_path, caplog):
    server = RedisServer(tmp_path)  # never started: nothing listens on its port
    limits = RedisLimits(server.url.replace("redis://", "redis://:hunter2@"))
    try:
        with caplog.at_level(logging.WARNING, logger="app.gateways.limits"):
            with pytest.raises(LimitsUnavailable) as caught:
                await _reserve(limits)
    finally:
        await limits.close()
    assert caught.value.message == "Our rate-limit store cannot be reached"  # a run's error may carry it
    logged = [record.getMessage() for record in caplog.records]
    assert f"the send limits at redis://:***@127.0.0.1:{server.port}/0 cannot be reached: ConnectionError" in logged
    assert not any("hunter2" in line for line in logged)


def test_send_settings_are_read_and_checked():
    from app.settings import SettingError, Settings

    settings = Settings.from_env(
        {"SEND_CHAT_PER_SECOND": "2", "SEND_GROUP_PER_MINUTE": "30", "SEND_BOT_PER_SECOND": "25", "SEND_RETRIES": "0"}
    )
    rates = SendRates.of(settings)
    assert (rates.chat.interval, rates.group.interval, rates.bot.interval) == (0.5, 2.0, 0.04)
    assert settings.send_retries == 0
    assert SendRates.of(Settings()) == RATES  # the defaults are Telegram's
    with pytest.raises(SettingError, match=r"SEND_GROUP_PER_MINUTE='0' is not valid: expected a number above 0"):
        Settings.from_env({"SEND_GROUP_PER_MINUTE": "0"})
    with pytest.raises(SettingError, match=r"SEND_RETRIES='11' is not valid: expected a whole number \(0 to 10\)"):
        Settings.from_env({"SEND_RETRIES": "11"})
