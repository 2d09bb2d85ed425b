"""app/accounts/token_checks.py with app/graphql/websocket.py: sockets of several tokens of one user
share one live execution, and each socket's own token is checked before each summary it is sent:
by the process's token cache while it vouches for it, else read with the others in one query.
A revoked token's socket closes and gets nothing more, whichever socket's token started the
execution; the user's other tokens' sockets go on."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from websockets.exceptions import ConnectionClosed

from app.accounts.models import ApiToken
from tests.accounts.test_token_cache import Clock
from tests.analytics.test_live import CREATE_TOKEN, LIVE, REVOKE_TOKEN, analytics_owner, total
from tests.support.eventually import eventually
from tests.support.runtime import deliver
from tests.support.subscriptions import Subscription, subscribe
from tests.support.telegram_updates import message_update

FORBIDDEN = (4403, "Forbidden")


async def new_token(app: Any, owner: Any, name: str) -> dict[str, Any]:
    return (await app.graphql(CREATE_TOKEN, {"name": name}, user=owner))["createApiToken"]


async def messages_until_it_ends(live: Subscription) -> list[dict[str, Any]]:
    """Every message the socket gets until its operation or its connection ends."""
    seen: list[dict[str, Any]] = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            message = await live.message()
            seen.append(message)
            if message["type"] in ("error", "complete"):
                return seen
    return seen


def past_the_caches_bound(app: Any) -> Clock:
    """The process's token cache vouches for none of the tokens it verified so far: its clock is
    moved past their bound, and stays there (the test moves it on)."""
    cache = app.platform.tokens.cache
    clock = Clock()
    clock.now = cache.clock() + cache.seconds
    cache.clock = clock
    return clock


@contextlib.asynccontextmanager
async def no_periodic_recheck(app: Any) -> AsyncIterator[None]:
    """The sessions' periodic re-check put off for the test (after the one under way), so that only
    the check before each push can stop a token revoked behind the server's back."""
    sockets = app.platform.sockets
    sockets.recheck_seconds = 3600
    done = sockets.rechecks
    await eventually(lambda: sockets.rechecks > done, "the re-check under way finished")
    yield


async def test_a_revoked_tokens_socket_closes_while_the_other_tokens_sharing_its_execution_go_on(app, telegram):
    owner, bot = await analytics_owner(app, telegram)
    phone = await new_token(app, owner, "old phone")
    async with (
        subscribe(app.url, LIVE, token=phone["token"]) as revoked,  # first: the shared execution is its
        subscribe(app.url, LIVE, token=owner.token) as staying,
    ):
        assert total(await revoked.next()) == 0
        assert total(await staying.next()) == 0
        assert len(app.platform.live.shared) == 1  # one execution for both tokens
        await app.graphql(REVOKE_TOKEN, {"id": phone["apiToken"]["id"]}, user=owner)
        await revoked.ws.wait_closed()
        assert (revoked.ws.close_code, revoked.ws.close_reason) == FORBIDDEN
        await deliver(app, bot, message_update(1, chat_id=-1))
        await staying.until(lambda d: total(d) == 1)


async def test_a_token_revoked_behind_the_servers_back_is_sent_nothing_more(app, telegram):
    """Revoked in SQL, with no notice: once the token cache's bound is past, and before the sessions'
    re-check closes its socket, the check before each push stops what the shared execution sends
    it, and it gets its own error."""
    owner, bot = await analytics_owner(app, telegram)
    phone = await new_token(app, owner, "old phone")
    async with (
        no_periodic_recheck(app),
        subscribe(app.url, LIVE, token=phone["token"]) as revoked,
        subscribe(app.url, LIVE, token=owner.token) as staying,
    ):
        assert total(await revoked.next()) == 0
        assert total(await staying.next()) == 0
        with app.db():
            await ApiToken.filter(id=phone["apiToken"]["id"]).update(revoked_at=datetime.now(UTC))
        past_the_caches_bound(app)
        await deliver(app, bot, message_update(1, chat_id=-1))
        await staying.until(lambda d: total(d) == 1)
        seen = await messages_until_it_ends(revoked)
    data = [m["payload"].get("data") for m in seen if m["type"] == "next"]
    assert all(d is None for d in data), seen  # no figures after the revocation
    errors = [m["payload"] if m["type"] == "error" else m["payload"].get("errors") for m in seen if "payload" in m]
    codes = [e[0]["extensions"]["code"] for e in errors if e]
    assert codes == ["UNAUTHENTICATED"], seen


async def test_the_tokens_of_every_socket_sharing_an_execution_are_checked_together_before_each_push(app, telegram):
    """The cache vouches for tokens it verified within its bound: a push asks for no token. Past
    it, a push reads the tokens of all its sockets in one query, and the cache keeps the answer."""
    owner, bot = await analytics_owner(app, telegram)
    phone = await new_token(app, owner, "phone")
    tokens = app.platform.tokens
    asked: list[list[str]] = []
    still_valid = tokens.still_valid

    async def recorded(token_ids):
        asked.append(sorted(token_ids))
        return await still_valid(token_ids)

    tokens.still_valid = recorded
    async with (
        subscribe(app.url, LIVE, token=owner.token) as first,
        subscribe(app.url, LIVE, token=phone["token"]) as second,
        subscribe(app.url, LIVE, token=phone["token"]) as third,
    ):
        for live in (first, second, third):
            assert total(await live.next()) == 0
        clock = past_the_caches_bound(app)
        asked.clear()
        await deliver(app, bot, message_update(1, chat_id=-1))
        for live in (first, second, third):
            await live.until(lambda d: total(d) == 1)
        read_past_the_bound = list(asked)

        asked.clear()
        await deliver(app, bot, message_update(2, chat_id=-1))
        for live in (first, second, third):
            await live.until(lambda d: total(d) == 2)
        read_within_the_bound = list(asked)

        clock.move(app.platform.tokens.cache.seconds)
        await deliver(app, bot, message_update(3, chat_id=-1))
        for live in (first, second, third):
            await live.until(lambda d: total(d) == 3)
    with app.db():
        ids = sorted(await ApiToken.filter(user_id=owner.id).values_list("id", flat=True))
    # One query a push, with both tokens, each once (a second push of the same figures is not sent).
    assert read_past_the_bound and all(tokens_asked == ids for tokens_asked in read_past_the_bound), asked
    assert read_within_the_bound == []
    assert asked and all(tokens_asked == ids for tokens_asked in asked), asked
