"""POST /webhooks/telegram/{gatewayId}: who may post, what is kept, and that nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import json

import pydantic
import pytest

from app.gateways.models import Gateway, GatewayEvent
from app.ids import new_id
from app.plugins.contract import TelegramMessageEvent
from app.plugins.handlers.analytics import AnalyticsHandler
from app.telegram.updates import UPDATE_FIELDS
from tests.support.eventually import eventually
from tests.support.live import LiveApp
from tests.support.plugins import RecordingPlugin, StallingPlugin
from tests.support.runtime import (
    analytics_counts,
    connect_bot,
    deliver,
    install,
    messages_counted,
    reload,
    service_context,
    stored,
    wait_until_processed,
)
from tests.support.telegram_updates import (
    callback_update,
    channel_post_update,
    message_update,
    poll_update,
)


async def events_recorded(app: LiveApp) -> int:
    with app.db():
        return await GatewayEvent.all().count()


@pytest.fixture
async def recorder() -> RecordingPlugin:
    return RecordingPlugin()


@pytest.fixture
async def live(make_app, recorder: RecordingPlugin) -> LiveApp:
    return await make_app(handlers=[AnalyticsHandler(), recorder])


@pytest.fixture
async def owner(live: LiveApp):
    return await live.create_user("owner@example.com", "pro")


@pytest.fixture
async def bot(live: LiveApp, owner, telegram):
    return await connect_bot(live, owner, telegram)


async def test_a_wrong_secret_is_refused_and_nothing_is_recorded(live, bot):
    response = await deliver(live, bot, message_update(1), secret="not-the-secret")
    assert response.status_code == 401
    assert await events_recorded(live) == 0


async def test_a_missing_secret_is_refused(live, bot):
    assert live.http is not None
    response = await live.http.post(bot.webhook_path, json=message_update(1))
    assert response.status_code == 401
    assert await events_recorded(live) == 0


async def test_an_unknown_gateway_is_refused(live, bot):
    assert live.http is not None
    response = await live.http.post(
        f"/webhooks/telegram/{new_id()}",  # could be one of ours, but is not
        json=message_update(1),
        headers={"X-Telegram-Bot-Api-Secret-Token": bot.secret},
    )
    assert response.status_code == 401
    assert await events_recorded(live) == 0


async def test_an_inactive_gateway_is_refused(live, bot):
    with live.db():
        await Gateway.filter(id=bot.gateway_id).update(is_active=False)
    response = await deliver(live, bot, message_update(1))
    assert response.status_code == 401
    assert await events_recorded(live) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"message": {}}',
        b'{"update_id": "7"}',
        b'{"update_id": true, "message": {}}',
        b'{"update_id": 7, "message": {"text": 1}}',
    ],
    ids=["malformed", "array", "no-update-id", "string-update-id", "boolean-update-id", "invalid-message"],
)
async def test_a_body_that_is_not_an_update_is_a_bad_request(live, bot, body):
    assert live.http is not None
    response = await live.http.post(
        bot.webhook_path,
        content=body,
        headers={"X-Telegram-Bot-Api-Secret-Token": bot.secret, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert await events_recorded(live) == 0


async def test_an_oversized_body_is_refused(make_app, telegram):
    live = await make_app(handlers=[AnalyticsHandler()], webhook_max_body_bytes=2_000)
    owner = await live.create_user("big@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    response = await deliver(live, bot, message_update(1, text="x" * 5_000))
    assert response.status_code == 413
    assert await events_recorded(live) == 0


async def chunks(body: bytes, size: int = 1_000):
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_an_oversized_body_sent_without_a_length_is_refused(make_app, telegram):
    live = await make_app(handlers=[AnalyticsHandler()], webhook_max_body_bytes=2_000)
    owner = await live.create_user("big@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    assert live.http is not None
    body = json.dumps(message_update(1, text="x" * 5_000)).encode()
    response = await live.http.post(  # chunked: the size is found while reading
        bot.webhook_path, content=chunks(body), headers={"X-Telegram-Bot-Api-Secret-Token": bot.secret}
    )
    assert response.status_code == 413
    assert await events_recorded(live) == 0


async def test_a_body_sent_in_chunks_is_taken_whole(live, bot):
    assert live.http is not None
    body = json.dumps(message_update(1, text="y" * 3_000)).encode()
    response = await live.http.post(
        bot.webhook_path, content=chunks(body, 700), headers={"X-Telegram-Bot-Api-Secret-Token": bot.secret}
    )
    assert response.status_code == 200
    assert await events_recorded(live) == 1


def test_the_update_kinds_are_those_of_the_bot_api_as_aiogram_knows_it():
    from aiogram.types import Update  # only here: the webhook itself never imports aiogram's types

    assert UPDATE_FIELDS == frozenset(Update.model_fields) - {"update_id"}


async def test_an_update_no_plugin_handles_is_acknowledged_and_ignored(live, bot):
    # The bot did not ask for polls; Telegram still sends, for a short while, what it queued
    # under a registration that asked for more.
    response = await deliver(live, bot, poll_update(1), lenient=True)
    assert response.status_code == 200
    assert await events_recorded(live) == 0


async def test_a_message_reaches_the_owners_enabled_installs(live, owner, bot, recorder):
    analytics = await install(live, owner, "analytics")
    recorder_install = await install(live, owner, "recorder")

    response = await deliver(live, bot, message_update(1, chat_id=-5))
    assert response.status_code == 200
    await wait_until_processed(live)

    assert await messages_counted(live, analytics.id, -5) == 1
    assert (await analytics_counts(live, analytics.id, -5))["users"] == 1
    assert await stored(live, recorder_install.id, "seen:telegram.message") == 1
    refreshed = await reload(live, analytics)
    assert refreshed.run_count == 1
    assert refreshed.last_run_at is not None
    assert refreshed.last_error is None


async def test_channel_posts_and_callbacks_are_routed_as_their_events(live, owner, bot, recorder):
    recorder_install = await install(live, owner, "recorder")
    assert (await deliver(live, bot, channel_post_update(1))).status_code == 200
    assert (await deliver(live, bot, callback_update(2))).status_code == 200
    await wait_until_processed(live)
    assert await stored(live, recorder_install.id, "seen:telegram.message") == 1
    assert await stored(live, recorder_install.id, "seen:telegram.callback") == 1
    # Two chats run concurrently, so the order in which the plugin saw them is not fixed.
    messages = [e for e in recorder.seen if isinstance(e, TelegramMessageEvent)]
    assert len(messages) == 1 and messages[0].is_channel_post


async def test_a_redelivered_update_is_processed_once(live, owner, bot):
    analytics = await install(live, owner, "analytics")
    update = message_update(42, chat_id=-7)
    for _ in range(3):
        assert (await deliver(live, bot, update)).status_code == 200
    await wait_until_processed(live)
    assert (await deliver(live, bot, update)).status_code == 200  # after processing, too
    await wait_until_processed(live)

    assert await events_recorded(live) == 1
    assert await messages_counted(live, analytics.id, -7) == 1
    assert (await reload(live, analytics)).run_count == 1


async def test_concurrent_redeliveries_are_kept_once(live, owner, bot):
    analytics = await install(live, owner, "analytics")
    updates = [message_update(100 + n % 10, chat_id=-9) for n in range(40)]
    responses = await asyncio.gather(*(deliver(live, bot, u) for u in updates))
    assert {r.status_code for r in responses} == {200}
    await wait_until_processed(live)
    assert await events_recorded(live) == 10
    assert await messages_counted(live, analytics.id, -9) == 10


async def test_the_same_update_id_from_two_bots_is_two_updates(live, owner, telegram):
    analytics = await install(live, owner, "analytics")
    first = await connect_bot(live, owner, telegram, username="first_bot")
    second = await connect_bot(live, owner, telegram, username="second_bot")
    await deliver(live, first, message_update(1, chat_id=-11))
    await deliver(live, second, message_update(1, chat_id=-11))
    await wait_until_processed(live)
    assert await messages_counted(live, analytics.id, -11) == 2


async def test_disabled_installs_are_skipped(live, owner, bot, recorder):
    analytics = await install(live, owner, "analytics")
    recorder_install = await install(live, owner, "recorder")
    ctx = await service_context(live, owner)
    with live.db():
        await live.platform.plugins.toggle(ctx, recorder_install.plugin_id, False)

    await deliver(live, bot, message_update(1, chat_id=-3))
    await wait_until_processed(live)
    assert await messages_counted(live, analytics.id, -3) == 1
    assert recorder.seen == []
    assert (await reload(live, recorder_install)).run_count == 0


async def test_other_users_installs_never_see_the_update(live, owner, bot, recorder):
    stranger = await live.create_user("stranger@example.com", "pro")
    await install(live, stranger, "recorder")
    await deliver(live, bot, message_update(1))
    await wait_until_processed(live)
    assert recorder.seen == []


async def counted_once(live: LiveApp, install_id: str, chat_id: int) -> bool:
    return await messages_counted(live, install_id, chat_id) == 1


async def test_the_acknowledgement_does_not_wait_for_plugins(make_app, telegram):
    stalling = StallingPlugin(only_chat=-1)
    live = await make_app(handlers=[stalling, AnalyticsHandler()], plugin_timeout_seconds=30)
    owner = await live.create_user("slow@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    stalled = await install(live, owner, "stalling")
    analytics = await install(live, owner, "analytics")

    first = await deliver(live, bot, message_update(1, chat_id=-1))
    await asyncio.wait_for(stalling.started.wait(), 10)
    # The plugin is still running: later updates, in this chat and others, are acknowledged anyway.
    later = [await deliver(live, bot, message_update(n, chat_id=-n)) for n in range(2, 6)]
    assert first.status_code == 200
    assert {r.status_code for r in later} == {200}
    assert not stalling.release.is_set()
    # ...and processed: a stalled chat does not hold up the others.
    for n in range(2, 6):
        await eventually(lambda n=n: counted_once(live, analytics.id, -n), f"chat {-n} counted")

    stalling.release.set()
    await wait_until_processed(live)
    assert await stored(live, stalled.id, "finished") == 5  # every chat ran once released


async def test_an_update_of_a_disconnected_gateway_is_skipped(make_app, telegram):
    ingest_only = await make_app(handlers=[AnalyticsHandler()], inbox_concurrency=0)
    owner = await ingest_only.create_user("gone@example.com", "pro")
    bot = await connect_bot(ingest_only, owner, telegram)
    analytics = await install(ingest_only, owner, "analytics")
    assert (await deliver(ingest_only, bot, message_update(1, chat_id=-4))).status_code == 200
    with ingest_only.db():
        await Gateway.filter(id=bot.gateway_id).update(is_active=False)

    worker = await make_app(handlers=[AnalyticsHandler()])
    await wait_until_processed(worker)
    assert await messages_counted(worker, analytics.id, -4) is None
    assert (await reload(worker, analytics)).run_count == 0


async def test_an_update_aiogram_cannot_parse_is_failed_once_not_retried(live, owner, bot, recorder):
    await install(live, owner, "recorder")
    shaped_but_invalid = {"update_id": 9, "message": {"message_id": 1, "date": 0, "chat": {"id": -1}}}  # no chat type
    assert (await deliver(live, bot, shaped_but_invalid)).status_code == 200
    await wait_until_processed(live)
    with live.db():
        event = await GatewayEvent.get(key="9")
    assert event.status == "failed"
    assert event.attempts == 1
    assert recorder.seen == []


async def test_an_update_aiogram_refuses_only_where_no_light_field_is_read_is_processed_once(
    live, owner, bot, recorder
):
    """The light parse checks what routing and the built-in plugins read; aiogram's object is
    checked when a plugin asks for it, and refused then."""
    analytics = await install(live, owner, "analytics")
    await install(live, owner, "recorder")
    odd = message_update(10, chat_id=-3)
    odd["message"]["entities"] = "not a list"
    assert (await deliver(live, bot, odd)).status_code == 200
    await wait_until_processed(live)
    with live.db():
        event = await GatewayEvent.get(key="10")
    assert (event.status, event.attempts) == ("done", 1)
    assert await messages_counted(live, analytics.id, -3) == 1
    [seen] = recorder.seen
    assert isinstance(seen, TelegramMessageEvent) and seen.light.chat.id == -3
    with pytest.raises(pydantic.ValidationError):
        assert seen.message is None  # never reached: asking for it raises


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "body",
    [
        _nested(2_000),  # under the size limit, deeper than json.loads can recurse
        '{"update_id": 1, "message": %s}' % ('{"a":' * 2_000 + "1" + "}" * 2_000),
        '{"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}, "x": %s}}'
        % _nested(63),  # 65 levels in all, one past the limit
    ],
    ids=["2000-arrays", "2000-objects-in-a-message", "65-levels"],
)
async def test_json_nested_too_deep_is_a_bad_request(live, bot, body):
    assert live.http is not None
    response = await live.http.post(
        bot.webhook_path,
        content=body.encode(),
        headers={"X-Telegram-Bot-Api-Secret-Token": bot.secret, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json() == {"error": "the body is not a Telegram update"}
    assert await events_recorded(live) == 0


async def test_json_nested_within_the_limit_is_taken(live, bot):
    update = message_update(1)
    update["message"]["x"] = json.loads(_nested(62))  # 64 levels in all, the limit
    assert (await deliver(live, bot, update)).status_code == 200
    assert await events_recorded(live) == 1


@pytest.mark.parametrize(
    "gateway_id",
    [
        "0" * 40,
        "a" * 33,
        "a" * 31,
        "A" * 32,  # ours are lowercase
        "g" * 32,
        "%00" + "a" * 31,
        "%F0%9F%98%80" * 32,
        "x" * 5_000,
        "a" * 31 + "%0A",
    ],
    ids=["40-hex", "33-hex", "31-hex", "uppercase", "not-hex", "nul", "emoji", "5000-chars", "newline"],
)
async def test_a_gateway_id_that_cannot_be_ours_is_unauthorized(live, bot, gateway_id):
    assert live.http is not None
    response = await live.http.post(
        f"/webhooks/telegram/{gateway_id}",
        json=message_update(1),
        headers={"X-Telegram-Bot-Api-Secret-Token": bot.secret},
    )
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized"}
    assert await events_recorded(live) == 0


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/webhooks/telegram/", 404),  # no gateway id
        ("POST", "/webhooks/telegram/{id}/more", 404),
        ("POST", "/webhooks/telegram", 404),
        ("GET", "/webhooks/telegram/{id}", 405),
        ("PUT", "/webhooks/telegram/{id}", 405),
    ],
)
async def test_what_is_not_the_webhooks_route_is_answered_as_by_the_router(live, bot, method, path, status):
    """The webhook's POSTs go straight to it (app.main.WebhookFirst); anything else its route
    would not match is the router's to answer, as before."""
    assert live.http is not None
    response = await live.http.request(
        method,
        path.format(id=bot.gateway_id),
        json=message_update(1),
        headers={"X-Telegram-Bot-Api-Secret-Token": bot.secret},
    )
    assert response.status_code == status
    assert await events_recorded(live) == 0
