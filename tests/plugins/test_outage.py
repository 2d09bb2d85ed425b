"""A database outage under load: every acknowledged update is processed exactly once, in each
chat's order, the dispatcher recovers by itself, and /healthz tells the truth meanwhile."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from app.gateways import inbox
from app.gateways.models import EventKind, EventStatus, GatewayEvent
from app.plugins.contract import (
    EventType,
    PluginContext,
    PluginEvent,
    PluginHandler,
    TelegramMessageEvent,
)
from app.plugins.handlers.welcome import WelcomeHandler
from app.plugins.models import RunRecord
from tests.support.eventually import DEADLINE_SECONDS, eventually
from tests.support.outage import (
    HealthWatch,
    allow_connections,
    background_failures,
    database_locked,
    own_postgres_database,
    refuse_connections,
    short_busy_timeout,
    wait_for_health,
)
from tests.support.plugins import definition
from tests.support.runtime import SECRET_HEADER, connect_bot, deliver, install, stored, wait_until_processed
from tests.support.telegram_updates import message_update, new_members_update, user

CHATS = 100
UPDATES = 200  # two per chat before the outage


async def health_naming(http: httpx.AsyncClient, stalled: str) -> dict[str, Any] | None:
    """/healthz's body when it is 503 with `stalled` among the stalled loops, else None."""
    response = await http.get("/healthz", timeout=10)
    body = response.json()
    return body if response.status_code == 503 and stalled in body.get("stalled", []) else None


def greeting_update(update_id: int) -> dict:
    chat_id = -(1 + update_id % CHATS)
    return new_members_update(update_id, user(10_000 + update_id, f"u{update_id}"), chat_id=chat_id)


async def post(http: httpx.AsyncClient, bot, updates: list[dict], parallel: int = 32) -> dict[int, int]:
    """Posts the updates as Telegram would: many chats at once, each chat's updates one after the
    other, in order; the status each got, by update_id."""
    gate = asyncio.Semaphore(parallel)
    by_chat: dict[int, list[dict]] = {}
    for update in updates:
        by_chat.setdefault(update["message"]["chat"]["id"], []).append(update)
    statuses: dict[int, int] = {}

    async def chat(in_order: list[dict]) -> None:
        for update in in_order:
            async with gate:
                response = await http.post(bot.webhook_path, json=update, headers={SECRET_HEADER: bot.secret})
            statuses[update["update_id"]] = response.status_code

    await asyncio.gather(*(chat(in_order) for in_order in by_chat.values()))
    return statuses


async def wait_for_calls(telegram, method: str, count: int) -> None:
    await eventually(lambda: telegram.methods_called().count(method) >= count, f"{count} {method} calls")


async def wait_until_idle(dispatcher) -> None:
    await eventually(lambda: not dispatcher.in_flight, "no event held in memory")


@pytest.fixture
async def outage_database(backend):
    if backend != "postgres":
        pytest.skip("a SQLite file has no connections to refuse (the lock test below covers SQLite)")
    async with own_postgres_database() as url:
        yield url


@pytest.mark.slow
async def test_after_a_database_outage_every_acknowledged_update_is_processed_exactly_once(
    outage_database, make_app, telegram, caplog
):
    caplog.set_level(logging.WARNING)
    live = await make_app(
        handlers=[WelcomeHandler()],
        database_url=outage_database,
        inbox_concurrency=8,  # up to 64 events held in memory: the outage meets all of them
        inbox_lease_seconds=5,
        inbox_poll_seconds=0.2,
        gateway_cache_seconds=0,  # every webhook looks its secret up: the lookup meets the outage too
        heartbeat_grace_seconds=0.5,
    )
    owner = await live.create_user("outage@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    welcome = await install(live, owner, "welcome")
    telegram.delay("sendMessage", 0.3)  # runs are in the middle of a Bot API call when the database goes
    health = HealthWatch(live.http).start()
    try:
        statuses = await post(live.http, bot, [greeting_update(n) for n in range(1, UPDATES + 1)])
        assert set(statuses.values()) == {200}
        await wait_for_calls(telegram, "sendMessage", 20)

        await refuse_connections(outage_database)
        during = await post(live.http, bot, [greeting_update(n) for n in range(UPDATES + 1, UPDATES + 41)])
        down = await eventually(
            lambda: health_naming(live.http, "dispatcher"), "/healthz naming the database and the stalled dispatcher"
        )
        await allow_connections(outage_database)

        # Telegram is told to send again, never a 500.
        assert set(during.values()) <= {200, 503}
        assert 503 in during.values()
        assert down["database"] == "unavailable"
        statuses.update(during)

        await wait_until_processed(live)
        after = await post(live.http, bot, [greeting_update(n) for n in range(UPDATES + 41, UPDATES + 91)])
        assert set(after.values()) == {200}
        statuses.update(after)
        await wait_until_processed(live)
        await wait_until_processed(live)  # the greetings' own message_sent events
        await wait_until_idle(live.platform.dispatcher)
        await wait_for_health(live.http, 200)
    finally:
        await health.stop()

    acknowledged = sorted(n for n, status in statuses.items() if status == 200)
    with live.db():
        runs = await RunRecord.filter(install_id=welcome.id).values("event_key", "success", "error")
        updates = await GatewayEvent.filter(kind=EventKind.UPDATE).values("key", "status")
        open_events = await GatewayEvent.filter(status__in=[EventStatus.PENDING, EventStatus.PROCESSING]).count()
    # Exactly once: one recorded run per acknowledged update, and no other.
    assert sorted(int(r["event_key"].rsplit(":", 1)[1]) for r in runs) == acknowledged
    assert [r for r in runs if not r["success"]] == []
    assert sorted(int(e["key"]) for e in updates) == acknowledged
    assert {e["status"] for e in updates} == {EventStatus.DONE}
    assert open_events == 0

    # Every acknowledged member was greeted, each chat in the order its updates came (a greeting
    # sent just before the database went may be sent again: at-least-once toward Telegram).
    sent = [m["text"] for m in telegram.bot(bot.token).sent_messages]
    firsts = list(dict.fromkeys(sent))
    assert sorted(firsts) == sorted(f"Welcome, u{n}!" for n in acknowledged)
    by_chat: dict[int, list[int]] = {}
    for text in firsts:
        n = int(text.removeprefix("Welcome, u").removesuffix("!"))
        by_chat.setdefault(n % CHATS, []).append(n)
    assert all(order == sorted(order) for order in by_chat.values()), by_chat

    # /healthz said so while it lasted, and is fine now.
    assert 503 in health.statuses()
    assert (await live.http.get("/healthz")).status_code == 200
    # No background task died on the way.
    messages = [r.getMessage() for r in caplog.records]
    assert not background_failures(messages), messages


class ReadingPlugin(PluginHandler):
    """Holds the first run at `gate`; every run then reads its storage (the database) and notes its
    update: the order in which updates ran to the end."""

    events = frozenset({EventType.TELEGRAM_MESSAGE})

    def __init__(self) -> None:
        self.definition = definition("reader")  # type: ignore[misc]
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()
        self.finished: list[int] = []

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        assert isinstance(event, TelegramMessageEvent)
        if not self.gate.is_set():
            self.waiting.set()
            await self.gate.wait()
        await ctx.storage.get("anything")
        self.finished.append(event.update_id)


class HeldClaim:
    """The inbox's own claim, whose result can be held back after its statement ran: a claim that
    is under way (its answer on the wire, its routes being refreshed) while something else happens."""

    def __init__(self) -> None:
        self._claim = inbox.claim
        self._hold = False
        self.holding = asyncio.Event()
        self._released = asyncio.Event()

    def hold_next(self) -> None:
        """The next claim that takes events keeps them until `release`."""
        self._hold = True

    def release(self) -> None:
        self._released.set()

    async def __call__(self, limit: int, lease_seconds: float) -> list[inbox.ClaimedEvent]:
        claimed = await self._claim(limit, lease_seconds)
        if claimed and self._hold:
            self._hold = False
            self.holding.set()
            await self._released.wait()
        return claimed


async def test_a_chats_events_taken_by_a_claim_under_way_while_its_lane_let_go_run_after_the_let_go_ones(
    outage_database, make_app, telegram, monkeypatch
):
    plugin = ReadingPlugin()
    claim = HeldClaim()
    monkeypatch.setattr(inbox, "claim", claim)
    live = await make_app(
        handlers=[plugin],
        database_url=outage_database,
        inbox_lease_seconds=2,
        inbox_poll_seconds=0.2,
        heartbeat_grace_seconds=0.5,
    )
    owner = await live.create_user("let-go@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    await install(live, owner, "reader")
    dispatcher = live.platform.dispatcher

    assert (await deliver(live, bot, message_update(1, chat_id=-1))).status_code == 200
    await asyncio.wait_for(plugin.waiting.wait(), DEADLINE_SECONDS)
    claim.hold_next()
    assert (await deliver(live, bot, message_update(2, chat_id=-1))).status_code == 200
    await asyncio.wait_for(claim.holding.wait(), DEADLINE_SECONDS)  # update 2 claimed, not yet queued

    # Update 1's run meets the outage: its lane waits for the database until the lease runs out,
    # then lets go of the update (claimable again).
    await refuse_connections(outage_database)
    plugin.gate.set()
    await eventually(lambda: dispatcher.in_flight == 0, "the lane let go of update 1")
    await allow_connections(outage_database)
    claim.release()  # the claim under way comes back with update 2, taken before update 1 was claimable

    await wait_until_processed(live)
    assert plugin.finished == [1, 2]


class GatedPlugin(PluginHandler):
    """Holds every run until `gate` opens; remembers the order in which updates first ran."""

    events = frozenset({EventType.TELEGRAM_MESSAGE})

    def __init__(self) -> None:
        self.definition = definition("gated")  # type: ignore[misc]
        self.gate = asyncio.Event()
        self.started = asyncio.Event()
        self.runs = 0
        self.released = 0  # runs past the gate
        self.first_runs: dict[int, list[int]] = {}  # chat -> update ids

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        assert isinstance(event, TelegramMessageEvent)
        self.runs += 1
        self.started.set()
        await self.gate.wait()
        self.released += 1
        seen = self.first_runs.setdefault(event.message.chat.id, [])
        if event.update_id not in seen:
            seen.append(event.update_id)
        await ctx.storage.increment("seen")


async def test_runs_that_cannot_be_recorded_while_the_database_is_locked_are_recorded_once_after(
    make_app, telegram, database_url, caplog
):
    plugin = GatedPlugin()
    live = await make_app(handlers=[plugin], inbox_concurrency=4, heartbeat_grace_seconds=0.5)
    with live.db() as db:
        await short_busy_timeout(db)
    owner = await live.create_user("locked@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    installed = await install(live, owner, "gated")
    for n in range(1, 21):
        assert (await deliver(live, bot, message_update(n, chat_id=-(1 + n % 5)))).status_code == 200
    await asyncio.wait_for(plugin.started.wait(), 10)

    # The runs finish while nothing can be written: on SQLite their records and completions fail
    # as locked, on PostgreSQL completing and claiming wait on the locked inbox.
    async with database_locked(database_url, "gateway_events"):
        plugin.gate.set()
        body = await wait_for_health(live.http, 503)
        assert "dispatcher" in body["stalled"]
        await eventually(lambda: plugin.released == plugin.runs, "every run that started past the gate")

    await wait_until_processed(live)
    await wait_until_idle(live.platform.dispatcher)
    await wait_for_health(live.http, 200)
    assert await stored(live, installed.id, "seen") == 20
    with live.db():
        runs = await RunRecord.filter(install_id=installed.id).values_list("event_key", "success")
    assert sorted(int(key.rsplit(":", 1)[1]) for key, _ in runs) == list(range(1, 21))
    assert all(success for _, success in runs)
    for chat, order in plugin.first_runs.items():
        assert order == sorted(order), (chat, order)
    assert not background_failures(r.getMessage() for r in caplog.records)
