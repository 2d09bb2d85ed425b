"""Bot API calls made without aiogram (getChatMemberCount): through the gateway service and its
send queue like any other call, against the fake Bot API over real HTTP, with Telegram's answers
becoming the same errors as aiogram's calls do."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.errors import BadUserInput, GatewayUnreachable
from app.gateways.models import Gateway, GatewayEvent, GatewayStatus
from app.gateways.telegram import TelegramRefused, TokenRejected
from tests.fakes.telegram import FakeTelegram
from tests.support.live import LiveApp, TestUser
from tests.support.runtime import ConnectedBot, connect_bot

GROUP = -1001
SLACK = 0.5


@pytest.fixture
async def owner(app: LiveApp) -> TestUser:
    return await app.create_user("owner@example.com", "business")


@pytest.fixture
async def bot(app: LiveApp, owner: TestUser, telegram: FakeTelegram) -> ConnectedBot:
    connected = await connect_bot(app, owner, telegram)
    telegram.set_members(connected.token, GROUP, 321)
    return connected


async def count(app: LiveApp, owner: TestUser, bot: ConnectedBot, params: dict[str, Any] | None = None) -> Any:
    with app.db():
        return await app.platform.gateways.execute(
            owner.id, bot.gateway_id, "getChatMemberCount", {"chat_id": GROUP} if params is None else params
        )


def reads(telegram: FakeTelegram) -> list:
    return [a for a in telegram.arrivals if a.method == "getChatMemberCount"]


async def test_a_count_is_read_and_sends_no_message(app, owner, bot, telegram):
    assert await count(app, owner, bot) == 321
    assert [(a.chat_id, a.status) for a in reads(telegram)] == [(GROUP, 200)]
    with app.db():
        assert await GatewayEvent.all().count() == 0  # no message_sent event: nothing was sent


async def test_reads_of_one_group_wait_their_turns(make_app, owner, bot, telegram):
    app = await make_app(send_group_per_minute=10)  # a group's turn every 6 s
    started = asyncio.get_running_loop().time()
    assert await asyncio.gather(count(app, owner, bot), count(app, owner, bot)) == [321, 321]
    first, second = reads(telegram)
    assert second.at - started >= 6 - SLACK  # the second waited for its turn


async def test_a_429_makes_the_read_wait_then_go_again(app, owner, bot, telegram):
    telegram.flood(retry_after=1, method="getChatMemberCount")
    assert await count(app, owner, bot) == 321
    refused, answered = reads(telegram)
    assert (refused.status, answered.status) == (429, 200)
    assert answered.at - refused.at >= 1 - SLACK


async def test_a_5xx_is_retried(make_app, owner, bot, telegram):
    app = await make_app(send_retry_backoff_seconds=0.05)
    telegram.fail_next("getChatMemberCount", status=502, description="Bad Gateway")
    assert await count(app, owner, bot) == 321
    assert [a.status for a in reads(telegram)] == [502, 200]


async def test_a_kicked_bot_is_refused_with_telegrams_words_once(app, owner, bot, telegram):
    telegram.kick_bot(bot.token, GROUP)
    with pytest.raises(TelegramRefused) as caught:
        await count(app, owner, bot)
    refusal = caught.value
    assert refusal.code == "BAD_USER_INPUT"
    assert (refusal.error_code, refusal.description) == (403, "Forbidden: bot was kicked from the supergroup chat")
    assert refusal.message == "Telegram refused getChatMemberCount: Forbidden: bot was kicked from the supergroup chat"
    assert [a.status for a in reads(telegram)] == [403]  # never retried

    with pytest.raises(TelegramRefused) as caught:
        await count(app, owner, bot, {"chat_id": -1009})
    assert (caught.value.error_code, caught.value.description) == (400, "Bad Request: chat not found")


async def test_a_description_never_shows_the_token(app, owner, bot, telegram):
    telegram.fail_next("getChatMemberCount", status=400, description=f"Bad Request: token {bot.token} odd")
    with pytest.raises(TelegramRefused) as caught:
        await count(app, owner, bot)
    assert bot.token.split(":")[1] not in caught.value.message
    assert caught.value.description == "Bad Request: token [redacted] odd"


async def test_a_revoked_token_makes_the_bot_token_rejected(app, owner, bot, telegram):
    telegram.revoke(bot.token)
    with pytest.raises(TokenRejected):
        await count(app, owner, bot)
    with app.db():
        assert (await Gateway.get(id=bot.gateway_id)).status == GatewayStatus.TOKEN_REJECTED


async def test_an_unreachable_api_is_said_in_words(make_app, owner, bot, telegram):
    from tests.fakes.telegram import unreachable_url

    down = await make_app(telegram_api_url=unreachable_url(), send_retries=0)
    with pytest.raises(GatewayUnreachable, match="could not be reached: connection refused"):
        await count(down, owner, bot)


@pytest.mark.parametrize(
    "params",
    [{}, {"chat_id": "x"}, {"chat_id": 1.5}, {"chat_id": True}, {"chat_id": 2**63}, {"chat_id": 1, "limit": 2}],
)
async def test_bad_parameters_are_refused_before_telegram_is_asked(app, owner, bot, telegram, params):
    with pytest.raises(BadUserInput, match="Bad parameters for getChatMemberCount"):
        await count(app, owner, bot, params)
    assert reads(telegram) == []
