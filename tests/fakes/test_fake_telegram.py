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
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, User

from tests.fakes.telegram import FakeTelegram, unreachable_url

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


async def post(tg: FakeTelegram, token: str, method: str, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=tg.url) as client:
        return await client.post(f"/bot{token}/{method}", **kwargs)  # type: ignore[arg-type]


# -- getMe ------------------------------------------------------------------------------------


async def test_get_me_answers_the_bot_user(tg: FakeTelegram, make_bot) -> None:
    tg.add_bot(TOKEN, "plugboard_demo_bot")
    me = await make_bot().get_me()
    assert isinstance(me, User)
    assert (me.id, me.is_bot, me.username, me.first_name) == (123456789, True, "plugboard_demo_bot", "plugboard_demo_bot")
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
    assert await make_bot().set_webhook("https://plugboard.test/webhooks/telegram/g1", secret_token="s3cr3t_-X", allowed_updates=UPDATES) is True
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
    for secret in ["has space", "x" * 257, "ünïcode"]:
        with pytest.raises(TelegramBadRequest, match="secret token contains unallowed characters"):
            await api.set_webhook("https://plugboard.test/hook", secret_token=secret)
    assert bot.webhook_url is None
    assert await api.set_webhook("https://plugboard.test/hook", secret_token="x" * 256) is True


@pytest.mark.parametrize(
    ("url", "description"),
    [
        ("http://plugboard.test/hook", "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"),
        ("http://127.0.0.1:8000/hook", "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"),
        ("https://plugboard.test:8000/hook", "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"),
    ],
)
async def test_set_webhook_refuses_what_telegram_refuses(tg: FakeTelegram, make_bot, url: str, description: str) -> None:
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


async def test_delete_webhook_clears_it(tg: FakeTelegram, make_bot) -> None:
    bot = tg.add_bot(TOKEN, "demo_bot")
    api = make_bot()
    await api.set_webhook("https://plugboard.test/hook", secret_token="abc", allowed_updates=UPDATES)
    assert await api.delete_webhook() is True
    assert (bot.webhook_url, bot.secret_token, bot.allowed_updates) == (None, None, None)
    assert tg.methods_called() == ["setWebhook", "deleteWebhook"]


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
    ids = [(m.chat.id, m.message_id) for m in [
        await api.send_message(1, "a"),
        await api.send_message(1, "b"),
        await api.send_message(-100200, "c"),
        await api.send_message(1, "d"),
    ]]
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
    as_json = await post(tg, TOKEN, "sendMessage", json={"chat_id": 5, "text": "json", "reply_markup": {"inline_keyboard": []}})
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
    assert [m["text"] for m in tg.bot(TOKEN).sent_messages] == ["first", "another chat is not held back", "a second later"]


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
