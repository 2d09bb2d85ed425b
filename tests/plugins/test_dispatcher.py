"""The dispatcher: one chat's updates in the order Telegram sent them, a slow plugin holding only its
own chat, and old history pruned."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from app.gateways.models import EventStatus, GatewayEvent
from app.plugins.contract import (
    EventType,
    PluginContext,
    PluginEvent,
    PluginHandler,
    TelegramMessageEvent,
)
from app.plugins.models import RunRecord, ScheduleTick
from app.plugins.pruning import prune_history
from tests.support.eventually import DEADLINE_SECONDS, eventually
from tests.support.plugins import RecordingPlugin, definition
from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.telegram_updates import message_update


async def test_one_chats_updates_run_in_the_order_they_arrived(make_app, telegram):
    recorder = RecordingPlugin()
    live = await make_app(handlers=[recorder])
    owner = await live.create_user("order@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    await install(live, owner, "recorder")

    for n in range(1, 31):
        assert (
            await deliver(live, bot, message_update(n, text=f"m{n}", chat_id=-1 if n % 3 else -2))
        ).status_code == 200
    await wait_until_processed(live)

    texts_by_chat: dict[int, list[str]] = {}
    for event in recorder.seen:
        texts_by_chat.setdefault(event.message.chat.id, []).append(event.message.text)
    assert texts_by_chat[-1] == [f"m{n}" for n in range(1, 31) if n % 3]
    assert texts_by_chat[-2] == [f"m{n}" for n in range(1, 31) if not n % 3]


async def test_history_older_than_the_retention_is_pruned(make_app, telegram):
    live = await make_app(handlers=[RecordingPlugin()], inbox_concurrency=0)
    owner = await live.create_user("old@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    installed = await install(live, owner, "recorder")
    long_ago = datetime.now(UTC) - timedelta(days=3)
    with live.db():
        for key, status, received in [
            ("1", EventStatus.DONE, long_ago),
            ("2", EventStatus.FAILED, long_ago),
            ("3", EventStatus.PENDING, long_ago),  # never processed: kept whatever its age
            ("4", EventStatus.DONE, datetime.now(UTC)),
        ]:
            event = await GatewayEvent.create(
                gateway_id=bot.gateway_id, kind="update", key=key, payload={}, status=status
            )
            await GatewayEvent.filter(id=event.id).update(received_at=received)
        old_run = await RunRecord.create(install_id=installed.id, event_key="old", success=True, duration_ms=1)
        await RunRecord.filter(id=old_run.id).update(created_at=long_ago)
        await RunRecord.create(install_id=installed.id, event_key="new", success=True, duration_ms=1)
        tick = await ScheduleTick.create(plugin_slug="recorder", schedule="s", tick=1)
        await ScheduleTick.filter(id=tick.id).update(fired_at=long_ago)

        await prune_history(datetime.now(UTC) - timedelta(hours=48))

        assert sorted(await GatewayEvent.all().values_list("key", flat=True)) == ["3", "4"]
        assert await RunRecord.all().values_list("event_key", flat=True) == ["new"]
        assert await ScheduleTick.all().count() == 0


async def test_an_event_that_failed_on_our_side_is_retried_after_a_backoff_then_given_up(make_app, telegram):
    from app.gateways import inbox

    live = await make_app(handlers=[RecordingPlugin()], inbox_concurrency=0)
    owner = await live.create_user("retry@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    with live.db():
        await GatewayEvent.create(gateway_id=bot.gateway_id, kind="update", key="1", payload={})
        for attempt in range(1, inbox.MAX_ATTEMPTS + 1):
            [event] = await inbox.claim(10, lease_seconds=60)
            assert event.attempts == attempt
            await inbox.retry_later(event)
            assert await inbox.claim(10, lease_seconds=60) == []  # backing off
            await GatewayEvent.filter(id=event.id).update(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        assert (await GatewayEvent.get(id=event.id)).status == EventStatus.FAILED
        assert await inbox.claim(10, lease_seconds=60) == []


class ChatStaller(PluginHandler):
    """Hangs on a "hang" message in one chat until the plugin timeout cuts it off; records the rest."""

    events = frozenset({EventType.TELEGRAM_MESSAGE})

    def __init__(self, stalled_chat: int) -> None:
        self.definition = definition("staller")  # type: ignore[misc]
        self.stalled_chat = stalled_chat
        self.hanging = asyncio.Event()
        self.release = asyncio.Event()  # never set by the test that waits for the plugin timeout
        self.seen: list[tuple[int, str]] = []

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        assert isinstance(event, TelegramMessageEvent)
        chat, text = event.message.chat.id, event.message.text or ""
        if chat == self.stalled_chat and text == "hang":
            self.hanging.set()
            await self.release.wait()
        self.seen.append((chat, text))


async def test_a_slow_plugin_holds_only_its_own_chat(make_app, telegram):
    plugin = ChatStaller(stalled_chat=-1)
    # A timeout no slow machine reaches: the run ends when the test releases it.
    live = await make_app(handlers=[plugin], inbox_concurrency=2, plugin_timeout_seconds=600)
    owner = await live.create_user("slow@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    installed = await install(live, owner, "staller")

    assert (await deliver(live, bot, message_update(1, text="hang", chat_id=-1))).status_code == 200
    assert (await deliver(live, bot, message_update(2, text="after", chat_id=-1))).status_code == 200
    await asyncio.wait_for(plugin.hanging.wait(), DEADLINE_SECONDS)
    others = [(-(2 + n % 4), f"m{n}") for n in range(3, 23)]
    for n, (chat, text) in enumerate(others, start=3):
        assert (await deliver(live, bot, message_update(n, text=text, chat_id=chat))).status_code == 200

    # Every other chat is served while the hanging run holds its lane and one of the two slots.
    await eventually(lambda: sorted(s for s in plugin.seen if s[0] != -1) == sorted(others), "every other chat served")
    assert (-1, "after") not in plugin.seen  # its chat waits behind the hanging run, in order
    with live.db():
        assert not await RunRecord.exists(install_id=installed.id, event_key=f"update:{bot.gateway_id}:1")
    assert (await live.http.get("/healthz")).status_code == 200  # a run within its timeout is not a stall

    plugin.release.set()
    await wait_until_processed(live)
    assert plugin.seen[-2:] == [(-1, "hang"), (-1, "after")]
    with live.db():
        assert await RunRecord.filter(install_id=installed.id, success=True).count() == 22
    assert live.platform.dispatcher.in_flight == 0


async def test_a_hanging_run_is_cut_off_at_the_plugin_timeout_and_its_chat_goes_on(make_app, telegram):
    plugin = ChatStaller(stalled_chat=-1)
    live = await make_app(handlers=[plugin], inbox_concurrency=2, plugin_timeout_seconds=1)
    owner = await live.create_user("hung@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    installed = await install(live, owner, "staller")

    assert (await deliver(live, bot, message_update(1, text="hang", chat_id=-1))).status_code == 200
    assert (await deliver(live, bot, message_update(2, text="after", chat_id=-1))).status_code == 200
    await wait_until_processed(live)

    assert plugin.hanging.is_set() and plugin.seen == [(-1, "after")]
    with live.db():
        hung = await RunRecord.get(install_id=installed.id, event_key=f"update:{bot.gateway_id}:1")
        assert await RunRecord.filter(install_id=installed.id).count() == 2
    assert (hung.success, hung.error) == (False, "Timed out after 1 s")
    assert live.platform.dispatcher.in_flight == 0
