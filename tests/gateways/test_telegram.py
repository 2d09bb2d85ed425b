"""The Bot API client's errors: Telegram's refusals in its own words, failures to reach it named
by address and cause, and never the token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.errors import BadUserInput, GatewayUnreachable
from app.gateways.public_url import public_url_problem
from app.gateways.telegram import MalformedToken, TelegramApi, TokenRejected, WebhookOutcomeUnknown, check_token_format
from tests.fakes.telegram import FakeTelegram, unreachable_url

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SECRET_PART = TOKEN.split(":")[1]


@pytest.fixture
async def api(telegram: FakeTelegram) -> AsyncIterator[TelegramApi]:
    client = TelegramApi(telegram.url, timeout_seconds=1)
    yield client
    await client.close()


async def test_a_refusal_carries_telegrams_description_without_the_token(api, telegram):
    telegram.add_bot(TOKEN, "demo_bot")
    telegram.fail_next("setWebhook", status=400, description=f"Bad Request: token {TOKEN} is odd")
    with pytest.raises(BadUserInput) as caught:
        await api.set_webhook(TOKEN, "https://plugboard.example/hook", "secret", [])
    assert caught.value.message == "Telegram refused setWebhook: Bad Request: token [redacted] is odd"
    assert SECRET_PART not in caught.value.message


async def test_an_http_webhook_is_refused_with_advice_on_public_url(api, telegram):
    telegram.add_bot(TOKEN, "demo_bot")
    with pytest.raises(BadUserInput) as caught:
        await api.set_webhook(TOKEN, "http://127.0.0.1:8000/webhooks/telegram/x", "secret", [])
    assert caught.value.message == (
        "Telegram refused the webhook URL: Bad Request: bad webhook: An HTTPS URL must be provided for webhook. "
        "Set PUBLIC_URL to this server's public HTTPS address (port 443, 80, 88 or 8443)."
    )


async def test_a_rejected_token_is_said_without_naming_any_api_argument(api, telegram):
    # The client knows nothing of GraphQL: the gateway service points at its `token` argument.
    with pytest.raises(TokenRejected) as caught:
        await api.get_me(TOKEN)
    assert caught.value.code == "BAD_USER_INPUT"
    assert caught.value.message == "Telegram rejected the bot token: Unauthorized"
    assert caught.value.errors == []


def test_a_malformed_token_is_refused_before_any_call():
    with pytest.raises(MalformedToken) as caught:
        check_token_format("123:short")
    assert (caught.value.code, caught.value.message, caught.value.errors) == (
        "BAD_USER_INPUT",
        "That is not a Telegram bot token",
        [],
    )


async def test_a_timeout_is_said_in_words(api, telegram):
    telegram.add_bot(TOKEN, "demo_bot")
    telegram.delay("getMe", 3)
    with pytest.raises(GatewayUnreachable) as caught:
        await api.get_me(TOKEN)
    assert caught.value.message == f"The Telegram Bot API at {telegram.url} could not be reached: timed out"


async def test_a_set_webhook_without_an_answer_may_have_been_applied(api, telegram):
    telegram.add_bot(TOKEN, "demo_bot")
    telegram.delay("setWebhook", 3)
    with pytest.raises(WebhookOutcomeUnknown):
        await api.set_webhook(TOKEN, "https://plugboard.example/hook", "secret", [])


async def test_server_errors_and_flood_control_are_unreachable_with_what_telegram_said(api, telegram):
    telegram.add_bot(TOKEN, "demo_bot")
    telegram.fail_next("getMe", status=502, description="Bad Gateway")
    telegram.fail_next("getMe", retry_after=9)
    with pytest.raises(GatewayUnreachable) as first:
        await api.get_me(TOKEN)
    with pytest.raises(GatewayUnreachable) as second:
        await api.get_me(TOKEN)
    assert first.value.message == f"The Telegram Bot API at {telegram.url} failed: Bad Gateway"
    assert second.value.message == f"The Telegram Bot API at {telegram.url} asks to wait 9 s before trying again"


async def test_refused_connections_and_unknown_hosts_are_named_with_their_cause():
    address = unreachable_url()
    refused = TelegramApi(address)
    unknown = TelegramApi("https://user:password@no-such-host.invalid")
    try:
        with pytest.raises(GatewayUnreachable) as first:
            await refused.get_me(TOKEN)
        with pytest.raises(GatewayUnreachable) as second:
            await unknown.delete_webhook(TOKEN)
    finally:
        await refused.close()
        await unknown.close()
    assert first.value.message == f"The Telegram Bot API at {address} could not be reached: connection refused"
    assert second.value.message == (
        "The Telegram Bot API at https://no-such-host.invalid could not be reached: the host name could not be resolved"
    )


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        ("https://plugboard.example", None),
        ("https://plugboard.example:8443/base", None),
        ("http://127.0.0.1:8000", "is not HTTPS"),
        ("https://plugboard.example:8000", "uses port 8000"),
        ("https://127.0.0.1", "which Telegram cannot reach"),
        ("https://localhost", "which Telegram cannot reach"),
    ],
)
def test_public_url_problems(public_url, expected):
    problem = public_url_problem(public_url)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem and "Set PUBLIC_URL" in problem


def test_the_client_and_the_gateway_service_import_no_aiogram_until_they_call_telegram():
    # aiogram's types alone take about 165 MiB (aiogram issue #1513): a process that never calls
    # Telegram should not pay for them because it imported these modules.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import app.gateways.telegram, app.gateways.service, app.gateways.sendqueue, app.gateways.limits\n"
        "print(sorted(m for m in sys.modules if m == 'aiogram' or m.startswith('aiogram.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
