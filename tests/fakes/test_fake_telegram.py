"""The fake Telegram Bot API's own spec, driven through real aiogram over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, User, WebhookInfo
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.telegram import Delivery, FakeTelegram, unreachable_url
from tests.support.server import LiveServer
from tests.support.telegram_updates import (
    callback_update,
    chat_member,
    chat_member_update,
    message_update,
    poll_update,
)

pytestmark = pytest.mark.asyncio

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
OTHER_TOKEN = "987654321:BBHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
UPDATES = ["message", "callback_query", "chat_member"]


@pytest_asyncio.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest_asyncio.fixture
async def make_bot(tg: FakeTelegram) -> AsyncIterator[type[Bot]]:
    """aiogram Bots pointed at the fake the way the product builds them; their sessions are closed after."""
    bots: list[Bot] = []

    def make(token: str = TOKEN, base: str | None = None) -> Bot:
        bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(base or tg.url)))
        bots.append(bot)
        return bot

    yield make  # type: ignore[misc]
    await asyncio.gather(*(bot.session.close() for bot in bots))


class Receiver:
    """A webhook endpoint: records what arrives and answers `status` (after `hold` is set, when given)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str | None, dict]] = []  # (path, secret header, update)
        self.status = 200
        self.hold: asyncio.Event | None = None
        self.server = LiveServer(Starlette(routes=[Route("/{path:path}", self._endpoint, methods=["POST"])]))

    async def _endpoint(self, request: Request) -> Response:
        secret = request.headers.get("x-telegram-bot-api-secret-token")
        self.received.append((request.url.path, secret, await request.json()))
        if self.hold is not None:
            await self.hold.wait()
        return Response(status_code=self.status)

    @property
    def updates(self) -> list[dict]:
        return [update for _, _, update in self.received]


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    async with hook.server:
        yield hook
        if hook.hold is not None:
            hook.hold.set()


PUBLIC = "https://plugboard.example"
HOOK = f"{PUBLIC}/webhooks/telegram/7"


def reaction_update(update_id: int, chat_id: int = -100200) -> dict:
    return {
        "update_id": update_id,
        "message_reaction": {
            "chat": {"id": chat_id, "type": "supergroup", "title": "Test chat"},
            "message_id": 1,
            "date": int(time.time()),
            "old_reaction": [],
            "new_reaction": [{"type": "emoji", "emoji": "👍"}],
        },
    }


def joined_update(update_id: int) -> dict:
    return chat_member_update(update_id, chat_member("left"), chat_member("member"))


async def post(tg: FakeTelegram, token: str, method: str, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=tg.url) as client:
        return await client.post(f"/bot{token}/{method}", **kwargs)  # type: ignore[arg-type]


# -- getMe ------------------------------------------------------------------------------------


async def test_get_me_answers_the_bot_user(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "plugboard_demo_bot")
    me = await make_bot().get_me()
    assert isinstance(me, User)
    assert (me.id, me.is_bot, me.username, me.first_name) == (
        123456789,
        True,
        "plugboard_demo_bot",
        "plugboard_demo_bot",
    )
    assert me.can_join_groups is True
    assert tg.calls == [("plugboard_demo_bot", "getMe", {})]


async def test_bot_id_can_be_chosen(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot", bot_id=42)
    assert (await make_bot().get_me()).id == 42


async def test_an_unknown_token_is_unauthorized(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
        await make_bot(OTHER_TOKEN).get_me()
    response = await post(tg, OTHER_TOKEN, "getMe")
    assert response.status_code == 401
    assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert [call.bot for call in tg.calls] == ["987654321", "987654321"]  # the token's secret part is never recorded


async def test_an_unknown_method_is_not_found(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    with pytest.raises(TelegramNotFound):
        await make_bot().get_chat(chat_id=1)
    response = await post(tg, TOKEN, "getUpdatesPlease")
    assert response.status_code == 404
    assert response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_method_names_are_case_insensitive(tg: FakeTelegram) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    response = await post(tg, TOKEN, "getme")
    assert response.json()["result"]["username"] == "demo_bot"


# -- setWebhook / deleteWebhook ---------------------------------------------------------------


async def test_set_webhook_stores_url_secret_and_allowed_updates(tg: FakeTelegram, make_bot) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    assert (
        await make_bot().set_webhook(
            "https://plugboard.test/webhooks/telegram/g1", secret_token="s3cr3t_-X", allowed_updates=UPDATES
        )
        is True
    )
    assert bot.webhook_url == "https://plugboard.test/webhooks/telegram/g1"
    assert bot.secret_token == "s3cr3t_-X"
    assert bot.allowed_updates == UPDATES  # sent as a JSON string inside the form, stored parsed
    assert tg.calls[-1].params["allowed_updates"] == UPDATES


async def test_set_webhook_answers_like_telegram(tg: FakeTelegram) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    response = await post(tg, TOKEN, "setWebhook", data={"url": "https://plugboard.test/hook"})
    assert response.json() == {"ok": True, "result": True, "description": "Webhook was set"}


async def test_set_webhook_rejects_a_secret_with_unallowed_characters(tg: FakeTelegram, make_bot) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    api = make_bot()
    for secret in ["has space", "ünïcode"]:
        with pytest.raises(TelegramBadRequest, match="secret token contains unallowed characters"):
            await api.set_webhook("https://plugboard.test/hook", secret_token=secret)
    with pytest.raises(TelegramBadRequest, match="secret token is too long"):
        await api.set_webhook("https://plugboard.test/hook", secret_token="x" * 257)
    assert bot.webhook_url is None
    assert await api.set_webhook("https://plugboard.test/hook", secret_token="x" * 256) is True


@pytest.mark.parametrize(
    ("url", "description"),
    [
        ("http://plugboard.test/hook", "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"),
        ("http://127.0.0.1:8000/hook", "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"),
        (
            "https://plugboard.test:8000/hook",
            "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443",
        ),
    ],
)
async def test_set_webhook_refuses_what_telegram_refuses(
    tg: FakeTelegram, make_bot, url: str, description: str
) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    with pytest.raises(TelegramBadRequest) as caught:
        await make_bot().set_webhook(url, secret_token="abc")
    assert caught.value.message == description
    response = await post(tg, TOKEN, "setWebhook", data={"url": url})
    assert response.status_code == 400
    assert response.json() == {"ok": False, "error_code": 400, "description": description}
    assert bot.webhook_url is None


@pytest.mark.parametrize("port", [443, 80, 88, 8443])
async def test_set_webhook_takes_https_on_telegrams_ports(tg: FakeTelegram, make_bot, port: int) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    assert await make_bot().set_webhook(f"https://plugboard.test:{port}/hook") is True
    assert bot.webhook_url == f"https://plugboard.test:{port}/hook"


async def test_set_webhook_requires_a_url(tg: FakeTelegram) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    response = await post(tg, TOKEN, "setWebhook", data={"secret_token": "abc"})
    assert response.status_code == 400
    assert response.json()["description"].startswith("Bad Request")


async def test_delete_webhook_clears_it_but_keeps_allowed_updates(tg: FakeTelegram, make_bot) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    api = make_bot()
    await api.set_webhook("https://plugboard.test/hook", secret_token="abc", allowed_updates=UPDATES)
    assert await api.delete_webhook() is True
    assert (bot.webhook_url, bot.secret_token) == (None, None)
    assert bot.allowed_updates == UPDATES  # Telegram keeps them for getUpdates and the next webhook
    assert tg.methods_called() == ["setWebhook", "deleteWebhook"]


async def test_set_webhook_again_unchanged_is_already_set(tg: FakeTelegram) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    first = await post(tg, TOKEN, "setWebhook", data={"url": "https://plugboard.test/hook", "secret_token": "s"})
    again = await post(tg, TOKEN, "setWebhook", data={"url": "https://plugboard.test/hook", "secret_token": "s"})
    other = await post(tg, TOKEN, "setWebhook", data={"url": "https://plugboard.test/hook", "secret_token": "t"})
    assert [r.json()["description"] for r in (first, again, other)] == [
        "Webhook was set",
        "Webhook is already set",
        "Webhook was set",
    ]


async def test_delete_webhook_answers_like_telegram(tg: FakeTelegram) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    await post(tg, TOKEN, "setWebhook", data={"url": "https://plugboard.test/hook"})
    first = await post(tg, TOKEN, "deleteWebhook")
    again = await post(tg, TOKEN, "deleteWebhook")
    assert first.json() == {"ok": True, "result": True, "description": "Webhook was deleted"}
    assert again.json() == {"ok": True, "result": True, "description": "Webhook is already deleted"}


# -- sendMessage ------------------------------------------------------------------------------


async def test_send_message_returns_a_full_message(tg: FakeTelegram, make_bot) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    before = int(time.time())
    message = await make_bot().send_message(1001, "Welcome, <b>Linus</b>!", parse_mode="HTML")
    assert isinstance(message, Message)
    assert (message.message_id, message.text) == (1, "Welcome, <b>Linus</b>!")
    assert (message.chat.id, message.chat.type) == (1001, "private")
    assert message.from_user is not None and message.from_user.username == "demo_bot"
    assert message.date.timestamp() >= before
    [sent] = bot.sent_messages
    assert (sent["chat_id"], sent["text"], sent["parse_mode"]) == (1001, "Welcome, <b>Linus</b>!", "HTML")
    assert sent["message"]["message_id"] == 1


async def test_message_ids_count_per_chat(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    api = make_bot()
    ids = [
        (m.chat.id, m.message_id)
        for m in [
            await api.send_message(1, "a"),
            await api.send_message(1, "b"),
            await api.send_message(-100200, "c"),
            await api.send_message(1, "d"),
        ]
    ]
    assert ids == [(1, 1), (1, 2), (-100200, 1), (1, 3)]


async def test_negative_chat_ids_are_supergroups(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    message = await make_bot().send_message(-100200, "hi all")
    assert message.chat.type == "supergroup"


async def test_reply_markup_arrives_parsed(tg: FakeTelegram, make_bot) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Yes", callback_data="yes")]])
    await make_bot().send_message(1, "Sure?", reply_markup=keyboard)
    assert bot.sent_messages[0]["reply_markup"] == {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]}


async def test_send_message_needs_text(tg: FakeTelegram, make_bot) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await make_bot().send_message(1, "")
    assert bot.sent_messages == []


async def test_send_message_needs_a_chat(tg: FakeTelegram) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    response = await post(tg, TOKEN, "sendMessage", data={"text": "hi"})
    assert response.status_code == 400
    assert response.json()["description"] == "Bad Request: chat_id is empty"


async def test_json_and_multipart_bodies_are_accepted_too(tg: FakeTelegram) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    as_json = await post(
        tg, TOKEN, "sendMessage", json={"chat_id": 5, "text": "json", "reply_markup": {"inline_keyboard": []}}
    )
    as_multipart = await post(tg, TOKEN, "sendMessage", data={"chat_id": "5", "text": "multipart"}, files={"doc": b"x"})
    assert [r.json()["result"]["text"] for r in (as_json, as_multipart)] == ["json", "multipart"]
    assert [m["chat_id"] for m in bot.sent_messages] == [5, 5]
    assert bot.sent_messages[0]["reply_markup"] == {"inline_keyboard": []}


# -- failures ---------------------------------------------------------------------------------


async def test_fail_next_with_retry_after_is_flood_control(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    tg.fail_next("sendMessage", retry_after=7)
    api = make_bot()
    with pytest.raises(TelegramRetryAfter) as caught:
        await api.send_message(1, "hi")
    assert caught.value.retry_after == 7
    assert (await api.send_message(1, "hi")).message_id == 1  # only the next call fails


async def test_flood_control_body_is_telegrams(tg: FakeTelegram) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    tg.fail_next("getMe", retry_after=3)
    response = await post(tg, TOKEN, "getMe")
    assert response.status_code == 429
    assert response.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }


async def test_fail_next_with_a_status(tg: FakeTelegram, make_bot) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    tg.fail_next("setWebhook", status=502, description="Bad Gateway")
    with pytest.raises(TelegramServerError, match="Bad Gateway"):
        await make_bot().set_webhook("https://plugboard.test/hook")
    assert bot.webhook_url is None


async def test_failures_queue_up(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    tg.fail_next("getMe", status=500)
    tg.fail_next("getMe", status=403, description="Forbidden: bot was blocked by the user")
    api = make_bot()
    with pytest.raises(TelegramServerError):
        await api.get_me()
    with pytest.raises(Exception, match="bot was blocked"):
        await api.get_me()
    assert (await api.get_me()).username == "demo_bot"


async def test_delay_makes_a_method_slow(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    tg.delay("getMe", 0.5)
    api = make_bot()
    with pytest.raises(TelegramNetworkError, match="timeout"):
        await api.get_me(request_timeout=0.1)
    started = time.monotonic()
    await api.get_me()
    assert time.monotonic() - started >= 0.5
    await api.send_message(1, "not delayed")


async def test_an_unreachable_api_is_a_network_error(make_bot) -> None:
    with pytest.raises(TelegramNetworkError):
        await make_bot(base=unreachable_url()).get_me()


# -- bookkeeping ------------------------------------------------------------------------------


async def test_reset_forgets_bots_calls_and_failures(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    tg.fail_next("getMe", retry_after=1)
    tg.delay("getMe", 5)
    await post(tg, TOKEN, "sendMessage", data={"chat_id": "1", "text": "x"})
    tg.reset()
    assert (tg.bots, tg.calls) == ({}, [])
    api = make_bot()
    with pytest.raises(TelegramUnauthorizedError):
        await api.get_me()
    tg.add_bot(TOKEN, "demo_bot")
    assert (await api.get_me()).username == "demo_bot"  # neither failing nor slow any more


async def test_calls_record_parameters_as_sent(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    await make_bot().send_message(7, "hello", disable_notification=True)
    call = tg.calls[-1]
    assert (call.bot, call.method) == ("demo_bot", "sendMessage")
    assert {k: call.params[k] for k in ("chat_id", "text", "disable_notification")} == {
        "chat_id": "7",
        "text": "hello",
        "disable_notification": json.dumps(True),
    }


# -- flood control and send limits ------------------------------------------------------------


async def test_flood_answers_the_next_sends_with_retry_after(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    tg.flood(retry_after=2, times=2)
    api = make_bot()
    for _ in range(2):
        with pytest.raises(TelegramRetryAfter) as caught:
            await api.send_message(1, "hi")
        assert caught.value.retry_after == 2
    assert (await api.send_message(1, "hi")).message_id == 1
    assert [a.status for a in tg.sends(1)] == [429, 429, 200]


async def test_arrivals_record_time_chat_and_status_in_order(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    api = make_bot()
    before = time.monotonic()
    await api.send_message(5, "a")
    await api.send_message(-100, "b")
    await api.get_me()
    assert [(a.bot, a.method, a.chat_id, a.status) for a in tg.arrivals] == [
        ("demo_bot", "sendMessage", "5", 200),
        ("demo_bot", "sendMessage", "-100", 200),
        ("demo_bot", "getMe", None, 200),
    ]
    times = [a.at for a in tg.arrivals]
    assert before <= times[0] <= times[1] <= times[2] <= time.monotonic()
    assert [a.chat_id for a in tg.sends(-100)] == ["-100"]


async def test_enforced_limits_refuse_a_second_message_to_a_chat_within_a_second(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    tg.enforce_limits()
    api = make_bot()
    await api.send_message(1, "first")
    with pytest.raises(TelegramRetryAfter) as caught:
        await api.send_message(1, "too soon")
    assert caught.value.retry_after == 1
    await api.send_message(2, "another chat is not held back")
    await asyncio.sleep(1)
    await api.send_message(1, "a second later")
    assert [a.status for a in tg.sends(1)] == [200, 429, 200]
    assert [m["text"] for m in tg.bot(TOKEN).sent_messages] == [
        "first",
        "another chat is not held back",
        "a second later",
    ]


async def test_enforced_limits_hold_a_group_to_its_messages_a_minute(tg: FakeTelegram, make_bot) -> None:
    from tests.fakes.telegram import SendLimits

    tg.add_bot(TOKEN, "demo_bot")
    tg.enforce_limits(SendLimits(chat_seconds=0, group_per_minute=3))
    api = make_bot()
    for _ in range(3):
        await api.send_message(-100, "ok")
    with pytest.raises(TelegramRetryAfter) as caught:
        await api.send_message(-100, "a fourth within the minute")
    assert 59 <= caught.value.retry_after <= 60
    for _ in range(4):
        await api.send_message(7, "a private chat has no minute budget")


async def test_enforced_limits_hold_a_bot_to_its_messages_a_second(tg: FakeTelegram, make_bot) -> None:
    from tests.fakes.telegram import SendLimits

    tg.add_bot(TOKEN, "demo_bot")
    tg.add_bot(OTHER_TOKEN, "other_bot")
    tg.enforce_limits(SendLimits(chat_seconds=0, bot_per_second=2))
    api, other = make_bot(), make_bot(OTHER_TOKEN)
    await api.send_message(1, "a")
    await api.send_message(2, "b")
    with pytest.raises(TelegramRetryAfter) as caught:
        await api.send_message(3, "c")
    assert caught.value.retry_after == 1
    await other.send_message(3, "another bot has its own budget")


async def test_every_429_carries_retry_after(tg: FakeTelegram) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    tg.fail_next("getMe", status=429)
    response = await post(tg, TOKEN, "getMe")
    assert response.status_code == 429
    assert response.json()["parameters"] == {"retry_after": 1}
    assert response.json()["description"] == "Too Many Requests: retry after 1"


# -- allowed_updates: what a registration lets through ----------------------------------------


async def test_a_webhook_gets_only_the_types_its_registration_names(
    tg: FakeTelegram, make_bot, receiver: Receiver
) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    tg.route_webhooks(PUBLIC, receiver.server.url)
    await make_bot().set_webhook(HOOK, allowed_updates=["message", "chat_member"])
    deliveries = [
        await tg.deliver(TOKEN, message_update(1)),
        await tg.deliver(TOKEN, callback_update(2)),
        await tg.deliver(TOKEN, joined_update(3)),
        await tg.deliver(TOKEN, reaction_update(4)),
    ]
    assert [(d.update_id, d.status) for d in deliveries] == [
        (1, "delivered"),
        (2, "filtered"),
        (3, "delivered"),
        (4, "filtered"),
    ]
    assert [u["update_id"] for u in receiver.updates] == [1, 3]
    assert tg.bot(TOKEN).pending_update_count == 0


@pytest.mark.parametrize("allowed", [None, []])
async def test_without_allowed_updates_telegrams_default_applies(
    tg: FakeTelegram, make_bot, receiver: Receiver, allowed: list[str] | None
) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    tg.route_webhooks(PUBLIC, receiver.server.url)
    await make_bot().set_webhook(HOOK, allowed_updates=allowed)
    for update in [message_update(1), joined_update(2), reaction_update(3), callback_update(4), poll_update(5)]:
        await tg.deliver(TOKEN, update)
    assert [u["update_id"] for u in receiver.updates] == [1, 4, 5]  # no chat_member, no message_reaction
    assert [d.status for d in tg.bot(TOKEN).deliveries] == [
        "delivered",
        "filtered",
        "filtered",
        "delivered",
        "delivered",
    ]


async def test_getupdates_registers_allowed_updates_and_a_call_without_them_keeps_them(
    tg: FakeTelegram, make_bot
) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    api = make_bot()
    assert await api.get_updates(allowed_updates=["chat_member"]) == []
    assert await api.get_updates() == []  # "if not specified, the previous setting will be used"
    assert bot.allowed_updates == ["chat_member"]
    assert (await tg.deliver(TOKEN, message_update(1))).status == "filtered"
    assert (await tg.deliver(TOKEN, joined_update(2))).status == "pending"
    [update] = await api.get_updates()
    assert (update.update_id, update.chat_member is not None) == (2, True)
    await api.get_updates(allowed_updates=[])  # an empty list is the default again
    assert (await tg.deliver(TOKEN, message_update(3))).status == "pending"
    assert (await tg.deliver(TOKEN, joined_update(4))).status == "filtered"


async def test_allowed_updates_persist_across_set_webhook_and_delete_webhook(tg: FakeTelegram, make_bot) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    api = make_bot()
    await api.set_webhook(HOOK, allowed_updates=["message", "chat_member"])
    await api.set_webhook(f"{HOOK}/other")  # without allowed_updates: the previous setting stays
    assert bot.allowed_updates == ["message", "chat_member"]
    await api.delete_webhook()
    assert bot.allowed_updates == ["message", "chat_member"]
    assert (await tg.deliver(TOKEN, joined_update(1))).status == "pending"  # now for getUpdates
    assert (await tg.deliver(TOKEN, callback_update(2))).status == "filtered"


async def test_a_new_registration_does_not_refilter_queued_updates(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    api = make_bot()
    await tg.deliver(TOKEN, callback_update(1))  # queued under the default
    [update] = await api.get_updates(allowed_updates=["message"])  # Telegram: "unwanted updates may be received"
    assert update.callback_query is not None


async def test_deliver_needs_one_known_update_type(tg: FakeTelegram) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    with pytest.raises(ValueError, match="update types"):
        await tg.deliver(TOKEN, {"update_id": 1, "message": {}, "poll": {}})
    with pytest.raises(ValueError, match="update types"):
        await tg.deliver(TOKEN, {"update_id": 1, "mesage": {}})


async def test_update_ids_are_given_when_missing(tg: FakeTelegram) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    first = await tg.deliver(TOKEN, message_update(41))
    update = message_update(0)
    del update["update_id"]
    second = await tg.deliver(TOKEN, update)
    assert (first.update_id, second.update_id) == (41, 42)
    assert [u["update_id"] for u in tg.bot(TOKEN).pending] == [41, 42]


# -- webhook delivery -------------------------------------------------------------------------


async def test_delivery_posts_json_to_the_routed_webhook_with_the_secret(
    tg: FakeTelegram, make_bot, receiver: Receiver
) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    tg.route_webhooks("https://elsewhere.example", unreachable_url())
    tg.route_webhooks(PUBLIC, receiver.server.url)
    await make_bot().set_webhook(HOOK, secret_token="s3cr3t")
    update = message_update(10, text="hi there")
    delivery = await tg.deliver(TOKEN, update)
    assert delivery == Delivery(10, "delivered", 200, None)
    assert receiver.received == [("/webhooks/telegram/7", "s3cr3t", update)]
    assert (bot.delivered, bot.pending) == ([10], [])


async def test_no_secret_header_without_a_secret(tg: FakeTelegram, make_bot, receiver: Receiver) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    tg.route_webhooks(PUBLIC, receiver.server.url)
    await make_bot().set_webhook(HOOK)
    await tg.deliver(TOKEN, message_update(1))
    assert [secret for _, secret, _ in receiver.received] == [None]


async def test_the_longest_route_wins(tg: FakeTelegram, make_bot, receiver: Receiver) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    tg.route_webhooks(PUBLIC, unreachable_url())
    tg.route_webhooks(f"{PUBLIC}/webhooks", f"{receiver.server.url}/in")
    await make_bot().set_webhook(HOOK)
    assert (await tg.deliver(TOKEN, message_update(1))).status == "delivered"
    assert receiver.received[0][0] == "/in/telegram/7"


async def test_a_failed_delivery_stays_pending_with_telegrams_error_until_redelivered(
    tg: FakeTelegram, make_bot, receiver: Receiver
) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    tg.route_webhooks(PUBLIC, receiver.server.url)
    api = make_bot()
    await api.set_webhook(HOOK)
    receiver.status = 503
    before = int(time.time())
    failed = await tg.deliver(TOKEN, message_update(1))
    assert failed == Delivery(1, "failed", 503, "Wrong response from the webhook: 503 Service Unavailable")
    behind = await tg.deliver(TOKEN, message_update(2))  # the first is retried first, and fails again
    assert behind == Delivery(2, "pending", None, "Wrong response from the webhook: 503 Service Unavailable")
    info = await api.get_webhook_info()
    assert info.pending_update_count == 2
    assert info.last_error_message == "Wrong response from the webhook: 503 Service Unavailable"
    assert info.last_error_date is not None and info.last_error_date.timestamp() >= before
    receiver.status = 200
    assert [(d.update_id, d.status) for d in await tg.redeliver(TOKEN)] == [(1, "delivered"), (2, "delivered")]
    assert [u["update_id"] for u in receiver.updates] == [1, 1, 1, 2]  # in order, 2 never before 1
    assert bot.delivered == [1, 2]
    info = await api.get_webhook_info()
    assert info.pending_update_count == 0
    assert info.last_error_message == "Wrong response from the webhook: 503 Service Unavailable"  # Telegram keeps it
    assert await tg.redeliver(TOKEN) == []


async def test_a_refused_connection_is_telegrams_connection_refused(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    tg.route_webhooks(PUBLIC, unreachable_url())
    api = make_bot()
    await api.set_webhook(HOOK)
    assert await tg.deliver(TOKEN, message_update(1)) == Delivery(1, "failed", None, "Connection refused")
    info = await api.get_webhook_info()
    assert (info.pending_update_count, info.last_error_message) == (1, "Connection refused")


async def test_an_unrouted_webhook_host_does_not_resolve(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    await make_bot().set_webhook(HOOK)
    delivery = await tg.deliver(TOKEN, message_update(1))
    assert (delivery.status, delivery.error) == ("failed", "Failed to resolve host: Name or service not known")


async def test_a_webhook_that_does_not_answer_in_time_is_a_read_timeout(make_bot, receiver: Receiver) -> None:
    async with FakeTelegram(webhook_timeout=0.2) as tg:
        tg.add_bot(TOKEN, "demo_bot")
        tg.route_webhooks(PUBLIC, receiver.server.url)
        await make_bot(base=tg.url).set_webhook(HOOK)
        receiver.hold = asyncio.Event()
        delivery = await tg.deliver(TOKEN, message_update(1))
        assert (delivery.status, delivery.error) == ("failed", "Read timeout expired")
        assert tg.bot(TOKEN).pending_update_count == 1
        receiver.hold.set()


async def test_set_webhook_can_drop_pending_updates(tg: FakeTelegram, make_bot) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    api = make_bot()
    await tg.deliver(TOKEN, message_update(1))
    await tg.deliver(TOKEN, message_update(2))
    await api.set_webhook(HOOK)
    assert bot.pending_update_count == 2  # kept for the webhook
    await api.set_webhook(HOOK, drop_pending_updates=True)
    assert (bot.pending, bot.dropped) == ([], [1, 2])


async def test_delete_webhook_can_drop_pending_updates(tg: FakeTelegram, make_bot) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    api = make_bot()
    await api.set_webhook(HOOK)
    await tg.deliver(TOKEN, message_update(1))  # unrouted: pending
    await api.delete_webhook()
    assert [u["update_id"] for u in bot.pending] == [1]  # kept for getUpdates
    await api.delete_webhook(drop_pending_updates=True)
    assert (bot.pending, bot.dropped) == ([], [1])


async def test_reset_forgets_webhook_routes(tg: FakeTelegram, make_bot, receiver: Receiver) -> None:
    tg.route_webhooks(PUBLIC, receiver.server.url)
    tg.reset()
    tg.add_bot(TOKEN, "demo_bot")
    await make_bot().set_webhook(HOOK)
    assert (await tg.deliver(TOKEN, message_update(1))).status == "failed"
    assert receiver.received == []


# -- getWebhookInfo ---------------------------------------------------------------------------


async def test_webhook_info_without_a_webhook(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    response = await post(tg, TOKEN, "getWebhookInfo")
    assert response.json() == {
        "ok": True,
        "result": {"url": "", "has_custom_certificate": False, "pending_update_count": 0},
    }
    info = await make_bot().get_webhook_info()
    assert isinstance(info, WebhookInfo) and (info.url, info.pending_update_count) == ("", 0)


async def test_webhook_info_with_a_webhook(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    await make_bot().set_webhook(HOOK, secret_token="abc", allowed_updates=["chat_member", "message"])
    result = (await post(tg, TOKEN, "getWebhookInfo")).json()["result"]
    assert result == {
        "url": HOOK,
        "has_custom_certificate": False,
        "pending_update_count": 0,
        "max_connections": 40,
        "ip_address": "127.0.0.1",
        "allowed_updates": ["message", "chat_member"],  # in Telegram's order
    }
    assert "abc" not in json.dumps(result)


async def test_fail_webhook_arranges_an_unreachable_webhook(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    api = make_bot()
    await api.set_webhook(HOOK)
    before = int(time.time())
    tg.fail_webhook(TOKEN, "Connection timed out", pending=12)
    result = (await post(tg, TOKEN, "getWebhookInfo")).json()["result"]
    assert result["pending_update_count"] == 12
    assert result["last_error_message"] == "Connection timed out"
    assert result["last_error_date"] >= before
    await api.set_webhook(f"{HOOK}/new")  # a new webhook starts without errors; the updates wait on
    info = await api.get_webhook_info()
    assert (info.last_error_date, info.last_error_message, info.pending_update_count) == (None, None, 12)


# -- getUpdates -------------------------------------------------------------------------------


async def test_getupdates_is_a_conflict_while_a_webhook_is_set(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    api = make_bot()
    await api.set_webhook(HOOK)
    with pytest.raises(TelegramConflictError) as caught:
        await api.get_updates()
    assert caught.value.message == (
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
    )
    response = await post(tg, TOKEN, "getUpdates")
    assert response.status_code == 409 and response.json()["error_code"] == 409
    await api.delete_webhook()
    assert await api.get_updates() == []


async def test_getupdates_returns_pending_updates_in_order_and_offset_confirms(tg: FakeTelegram, make_bot) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    api = make_bot()
    for update_id in (5, 6, 7):
        await tg.deliver(TOKEN, message_update(update_id, text=f"m{update_id}"))
    updates = await api.get_updates()
    assert [(u.update_id, u.message.text) for u in updates] == [(5, "m5"), (6, "m6"), (7, "m7")]
    assert [u.update_id for u in await api.get_updates()] == [5, 6, 7]  # not confirmed yet
    assert [u.update_id for u in await api.get_updates(offset=6, limit=1)] == [6]
    assert tg.confirmed(TOKEN) == [5]
    assert await api.get_updates(offset=8) == []
    assert tg.confirmed(TOKEN) == [5, 6, 7]
    assert bot.pending_update_count == 0


async def test_a_negative_offset_keeps_only_the_last_updates(tg: FakeTelegram, make_bot) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    for update_id in (1, 2, 3):
        await tg.deliver(TOKEN, message_update(update_id))
    assert [u.update_id for u in await make_bot().get_updates(offset=-1)] == [3]
    assert (bot.dropped, [u["update_id"] for u in bot.pending]) == ([1, 2], [3])


async def test_a_long_poll_wakes_when_an_update_arrives(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    polling = asyncio.create_task(make_bot().get_updates(timeout=50))
    await tg.polling(TOKEN).wait()
    assert (await tg.deliver(TOKEN, message_update(1, text="wake up"))).status == "pending"
    [update] = await polling
    assert update.message.text == "wake up"
    assert not tg.polling(TOKEN).is_set()


async def test_a_long_poll_with_nothing_arriving_answers_empty(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    assert await make_bot().get_updates(timeout=1) == []


async def test_a_second_getupdates_ends_the_waiting_one_with_409(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    first_instance, second_instance = make_bot(), make_bot()
    first = asyncio.create_task(first_instance.get_updates(timeout=50))
    await tg.polling(TOKEN).wait()
    second = asyncio.create_task(second_instance.get_updates(timeout=50))
    with pytest.raises(TelegramConflictError) as caught:
        await first
    assert caught.value.message == (
        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
    )
    assert tg.polling(TOKEN).is_set()  # the second one waits now
    await tg.deliver(TOKEN, message_update(1))
    assert [u.update_id for u in await second] == [1]
    assert [a.status for a in tg.arrivals if a.method == "getUpdates"] == [409, 200]


async def test_set_webhook_ends_a_waiting_long_poll(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    api = make_bot()
    polling = asyncio.create_task(api.get_updates(timeout=50))
    await tg.polling(TOKEN).wait()
    await api.set_webhook(HOOK)
    with pytest.raises(TelegramConflictError, match="terminated by setWebhook request"):
        await polling


async def test_getupdates_fails_and_slows_like_every_method(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    api = make_bot()
    tg.fail_next("getUpdates", retry_after=2)
    with pytest.raises(TelegramRetryAfter) as caught:
        await api.get_updates()
    assert caught.value.retry_after == 2
    tg.delay("getUpdates", 0.5)
    with pytest.raises(TelegramNetworkError, match="timeout"):
        await api.get_updates(request_timeout=0.1)


async def test_arrivals_record_getupdates_and_getwebhookinfo(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    api = make_bot()
    await api.get_updates(offset=3, limit=5)
    await api.get_webhook_info()
    assert [(a.bot, a.method, a.status) for a in tg.arrivals] == [
        ("demo_bot", "getUpdates", 200),
        ("demo_bot", "getWebhookInfo", 200),
    ]
    assert {k: tg.calls[0].params[k] for k in ("offset", "limit")} == {"offset": "3", "limit": "5"}


# -- revoked and replaced tokens --------------------------------------------------------------


async def test_a_revoked_token_is_unauthorized_for_every_method(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    api = make_bot()
    await api.set_webhook(HOOK)
    tg.revoke(TOKEN)
    calls = [
        api.get_me(),
        api.get_updates(),
        api.get_webhook_info(),
        api.set_webhook(HOOK),
        api.delete_webhook(),
        api.send_message(1, "hi"),
    ]
    for call in calls:
        with pytest.raises(TelegramUnauthorizedError):
            await call
    for method in ("getMe", "getUpdates", "getWebhookInfo", "setWebhook", "deleteWebhook", "sendMessage"):
        response = await post(tg, TOKEN, method, data={"url": HOOK, "chat_id": "1", "text": "x"})
        assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_a_revoked_bot_gets_no_deliveries(tg: FakeTelegram, make_bot, receiver: Receiver) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    tg.route_webhooks(PUBLIC, receiver.server.url)
    await make_bot().set_webhook(HOOK)
    tg.revoke(TOKEN)
    delivery = await tg.deliver(TOKEN, message_update(1))
    assert (delivery.status, delivery.error) == ("pending", "Unauthorized")
    assert await tg.redeliver(TOKEN) == []
    assert receiver.received == []


async def test_revoking_ends_a_waiting_long_poll_with_401(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "demo_bot")
    polling = asyncio.create_task(make_bot().get_updates(timeout=50))
    await tg.polling(TOKEN).wait()
    tg.revoke(TOKEN)
    with pytest.raises(TelegramUnauthorizedError):
        await polling


async def test_replace_token_keeps_the_bot_under_the_new_token(tg: FakeTelegram, make_bot, receiver: Receiver) -> None:
    NEW_TOKEN = "123456789:ZZHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # noqa: N806
    bot = tg.add_bot(TOKEN, "demo_bot")
    tg.route_webhooks(PUBLIC, receiver.server.url)
    old, new = make_bot(), make_bot(NEW_TOKEN)
    await old.set_webhook(HOOK, secret_token="abc", allowed_updates=["message"])
    receiver.status = 500
    await tg.deliver(TOKEN, message_update(1))
    assert tg.replace_token(TOKEN, NEW_TOKEN) is bot
    with pytest.raises(TelegramUnauthorizedError):
        await old.get_me()
    me = await new.get_me()
    assert (me.id, me.username) == (123456789, "demo_bot")
    info = await new.get_webhook_info()
    assert (info.url, info.pending_update_count, info.allowed_updates) == (HOOK, 1, ["message"])
    receiver.status = 200
    assert [d.status for d in await tg.redeliver(NEW_TOKEN)] == ["delivered"]
    assert (await tg.deliver(NEW_TOKEN, message_update(2))).status == "delivered"
    assert [(secret, u["update_id"]) for _, secret, u in receiver.received] == [("abc", 1), ("abc", 1), ("abc", 2)]


async def test_member_counts_are_telegrams_with_its_refusals(tg, make_bot):
    tg.add_bot(TOKEN, "demo_bot")
    bot = make_bot()
    tg.set_members(TOKEN, -100111, 42)
    tg.set_members(TOKEN, -100222, 9, kind="channel")
    assert await bot.get_chat_member_count(-100111) == 42
    with pytest.raises(TelegramBadRequest, match="Bad Request: chat not found"):
        await bot.get_chat_member_count(-100333)  # the bot was never in it
    tg.kick_bot(TOKEN, -100111)
    with pytest.raises(TelegramForbiddenError, match="Forbidden: bot was kicked from the supergroup chat"):
        await bot.get_chat_member_count(-100111)
    tg.kick_bot(TOKEN, -100222)
    with pytest.raises(TelegramForbiddenError, match="Forbidden: bot was kicked from the channel chat"):
        await bot.get_chat_member_count(-100222)
    tg.set_members(TOKEN, -100111, 40)  # added back
    assert await bot.get_chat_member_count(-100111) == 40
    assert [a.status for a in tg.arrivals if a.method == "getChatMemberCount"] == [200, 400, 403, 403, 200]
