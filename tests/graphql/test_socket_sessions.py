"""Open websockets end when their token stops working: revoked (through the API or the CLI),
expired, or its user deleted. Each closes with 4403 Forbidden, in whichever process holds it,
without waiting for a change of what it shows. Each test waits on the socket's close itself: how
fast is the design's (within a second), not a bound a test could hold on a loaded machine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from app.accounts import sessions
from app.accounts.models import ApiToken, User
from app.analytics.models import AnalyticsChat
from app.gateways.models import Gateway
from app.plugins.handlers.analytics import AnalyticsHandler
from app.plugins.models import StoredValue, UserPlugin
from app.user_deletion import delete_user
from tests.support.eventually import DEADLINE_SECONDS, eventually
from tests.support.live import LiveApp, TestUser
from tests.support.plugins import RecordingPlugin
from tests.support.redis_server import RedisServer, shared_redis_url
from tests.support.runtime import SECRET_HEADER, connect_bot, install, wait_until_processed
from tests.support.subscriptions import Subscription, subscribe
from tests.support.telegram_updates import message_update
from tests.test_cli import QUIET, one_error_line, run_cli

LIVE = "subscription { analyticsUpdated { totalMessages } }"
CREATE = "mutation($name: String!) { createApiToken(name: $name) { token apiToken { id } } }"
REVOKE = "mutation($id: ID!) { revokeApiToken(id: $id) }"
FORBIDDEN = (4403, "Forbidden")


@pytest.fixture
async def redis_url() -> str:
    return await shared_redis_url()


async def second_token(app: LiveApp, user: TestUser, name: str = "socket") -> tuple[str, str]:
    """A new token of the user's, and its id."""
    created = (await app.graphql(CREATE, {"name": name}, user=user))["createApiToken"]
    return created["token"], created["apiToken"]["id"]


async def analytics_user(app: LiveApp, email: str = "ada@example.com") -> TestUser:
    user = await app.create_user(email, "pro")
    await install(app, user, "analytics")
    return user


@contextlib.asynccontextmanager
async def live_socket(app: LiveApp, token: str) -> AsyncIterator[Subscription]:
    """An analyticsUpdated subscription, past its first summary."""
    async with subscribe(app.url, LIVE, token=token) as live:
        assert "totalMessages" in (await live.next())["analyticsUpdated"]
        yield live


async def closed(live: Subscription) -> tuple[tuple[int | None, str | None], list[dict[str, Any]]]:
    """Waits for the server to close the socket: its close code and reason, and any messages
    that came before the close (there must be none: nothing changed)."""
    messages = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            messages.append(await live.message(DEADLINE_SECONDS))
    return (live.ws.close_code, live.ws.close_reason), messages


async def without_rechecks(app: LiveApp) -> None:
    """Only a notice (or a timer) can end the app's sockets from now on: its periodic re-check
    waits an hour, once the round under way has passed."""
    open_sockets = app.platform.sockets
    open_sockets.recheck_seconds = 3600
    done = open_sockets.rechecks
    await eventually(lambda: open_sockets.rechecks > done, "the re-check round under way")


def listening(app: LiveApp) -> bool:
    """Whether the app's pub/sub is connected to Redis with the sessions channel subscribed."""
    broadcast = app.platform.live.broadcast
    return broadcast._backend.connected.is_set() and bool(broadcast._subscribers.get(sessions.CHANNEL))  # type: ignore[attr-defined]


async def two_processes(make_app: Any, redis_url: str) -> tuple[LiveApp, LiveApp]:
    """Two apps on one database and one Redis; the second re-checks nothing by itself."""
    first = await make_app(broadcast_url=redis_url)
    second = await make_app(broadcast_url=redis_url, inbox_concurrency=0)
    await without_rechecks(second)
    await eventually(lambda: listening(second), "the second app listening for ended sessions")
    return first, second


# --- revoked -----------------------------------------------------------------------------------


async def test_revoking_a_token_through_the_api_closes_its_open_socket_at_once(app):
    user = await analytics_user(app)
    token, token_id = await second_token(app, user)
    async with live_socket(app, token) as live:
        assert await app.graphql(REVOKE, {"id": token_id}, user=user) == {"revokeApiToken": True}
        close, messages = await closed(live)
    assert close == FORBIDDEN
    assert messages == []  # no figure changed, and no UNAUTHENTICATED error first: the socket ended
    await eventually(lambda: len(app.platform.sockets) == 0, "the socket forgotten")


async def test_a_revoke_through_the_api_of_one_process_closes_a_socket_open_in_another(make_app, redis_url):
    first, second = await two_processes(make_app, redis_url)
    user = await analytics_user(first)
    token, token_id = await second_token(first, user)
    other_token, _ = await second_token(first, user, "stays")
    async with live_socket(second, token) as live, live_socket(second, other_token) as stays:
        await first.graphql(REVOKE, {"id": token_id}, user=user)
        close, messages = await closed(live)
        assert close == FORBIDDEN and messages == []
        assert stays.ws.close_code is None  # the same user's other token keeps its socket
    await eventually(lambda: len(second.platform.sockets) == 0, "both sockets forgotten")


async def test_a_revoke_missed_by_the_pub_sub_closes_the_socket_at_the_periodic_recheck(app):
    """A token revoked behind the server's back (SQL): no notice, yet the re-check ends it."""
    user = await analytics_user(app)
    token, token_id = await second_token(app, user)
    async with live_socket(app, token) as live:
        with app.db():
            await ApiToken.filter(id=token_id).update(revoked_at=datetime.now(UTC))
        close, messages = await closed(live)
    assert close == FORBIDDEN and messages == []


async def test_a_revoke_made_while_redis_was_down_closes_the_socket_once_it_returns(make_app, tmp_path):
    """No notice could pass, and the periodic re-check is off: the resync after the outage checks
    every socket again."""
    redis = RedisServer(tmp_path)
    await redis.start()
    try:
        app = await make_app(broadcast_url=redis.url)
        await without_rechecks(app)
        await eventually(lambda: listening(app), "the app listening for ended sessions")
        user = await analytics_user(app)
        token, token_id = await second_token(app, user)
        async with live_socket(app, token) as live:
            await redis.stop()
            with app.db():
                await ApiToken.filter(id=token_id).update(revoked_at=datetime.now(UTC))
            await redis.start()
            close, messages = await closed(live)
        assert close == FORBIDDEN
        # The outage's resync may wake the stream first: then it ends UNAUTHENTICATED, never with figures.
        assert not [m for m in messages if m["type"] == "next" and m["payload"].get("data")], messages
    finally:
        await redis.stop()


async def test_the_cli_revoke_closes_a_socket_of_another_process_through_redis(make_app, redis_url, database_url):
    _, second = await two_processes(make_app, redis_url)
    user = await analytics_user(second)
    token, token_id = await second_token(second, user)
    async with live_socket(second, token) as live:
        code, out, err = await run_cli(
            "tokens", "revoke", token_id, database_url=database_url, env={"BROADCAST_URL": redis_url}
        )
        assert code == 0, err
        assert f"Revoked token {token_id}" in out
        close, messages = await closed(live)
    assert close == FORBIDDEN and messages == []


async def test_the_cli_revoke_on_memory_pubsub_closes_the_socket_too(app, database_url):
    """Without Redis the CLI has no process to tell: the server's re-check ends the socket."""
    user = await analytics_user(app)
    token, token_id = await second_token(app, user)
    async with live_socket(app, token) as live:
        code, _, err = await run_cli("tokens", "revoke", token_id, database_url=database_url)
        assert code == 0, err
        close, messages = await closed(live)
    assert close == FORBIDDEN and messages == []


# --- expired -----------------------------------------------------------------------------------


async def test_a_token_expiring_closes_its_open_socket(make_app):
    """Its own timer ends it: the re-check is off, and no notice is sent."""
    app = await make_app()
    await without_rechecks(app)
    user = await analytics_user(app)
    token, token_id = await second_token(app, user)
    with app.db():  # tokens expire in days: this one in a few seconds
        await ApiToken.filter(id=token_id).update(expires_at=datetime.now(UTC) + timedelta(seconds=3))
    async with live_socket(app, token) as live:
        close, messages = await closed(live)
    assert close == FORBIDDEN and messages == []
    with app.db():
        assert (await ApiToken.get(id=token_id)).revoked_at is None  # it expired: nothing else happened


async def test_a_token_made_expired_behind_the_servers_back_closes_its_socket(app):
    user = await analytics_user(app)
    token, token_id = await second_token(app, user)
    async with live_socket(app, token) as live:
        with app.db():
            await ApiToken.filter(id=token_id).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        close, messages = await closed(live)
    assert close == FORBIDDEN and messages == []


# --- users delete ------------------------------------------------------------------------------


async def user_rows(app: LiveApp, user_id: str) -> dict[str, int]:
    with app.db():
        return {
            "users": await User.filter(id=user_id).count(),
            "tokens": await ApiToken.filter(user_id=user_id).count(),
            "gateways": await Gateway.filter(owner_id=user_id).count(),
            "installs": await UserPlugin.filter(user_id=user_id).count(),
            "storage": await StoredValue.filter(install__user_id=user_id).count(),
            "analytics": await AnalyticsChat.filter(install__user_id=user_id).count(),
        }


async def user_with_everything(app: LiveApp, telegram: Any, email: str = "ada@example.com") -> tuple[TestUser, Any]:
    """A user with a bot, analytics that counted a message, and a second token."""
    user = await analytics_user(app, email)
    bot = await connect_bot(app, user, telegram)
    assert app.http is not None
    response = await app.http.post(
        bot.webhook_path, json=message_update(1, chat_id=-5), headers={SECRET_HEADER: bot.secret}
    )
    assert response.status_code == 200
    await wait_until_processed(app)
    await second_token(app, user, "spare")
    return user, bot


async def test_users_delete_yes_removes_everything_and_closes_the_sockets_in_every_process(
    make_app, redis_url, database_url, telegram
):
    first, second = await two_processes(make_app, redis_url)
    user, _ = await user_with_everything(first, telegram)
    other = await analytics_user(first, "grace@example.com")
    before = await user_rows(first, user.id)
    assert all(before[name] > 0 for name in ("users", "tokens", "gateways", "installs", "analytics")), before
    telegram.calls.clear()
    env = {"BROADCAST_URL": redis_url, "TELEGRAM_API_URL": telegram.url}
    async with live_socket(second, user.token) as live, live_socket(second, other.token) as stays:
        code, out, err = await run_cli("users", "delete", user.email, "--yes", database_url=database_url, env=env)
        assert code == 0, err
        assert out.strip().startswith(f"Deleted {user.email} with 1 plugin (analytics), 1 bot, 2 tokens"), out
        close, messages = await closed(live)
        assert close == FORBIDDEN and messages == []
        assert stays.ws.close_code is None  # another user's socket lives on
    assert await user_rows(first, user.id) == dict.fromkeys(before, 0)
    assert "deleteWebhook" in telegram.methods_called()
    assert (await first.graphql("{ me { email } }", user=other))["me"]["email"] == "grace@example.com"


async def test_deleting_a_user_runs_their_plugins_uninstall_hooks(make_app, telegram):
    recorder = RecordingPlugin()
    app = await make_app(handlers=[AnalyticsHandler(), recorder])
    user = await analytics_user(app)
    await connect_bot(app, user, telegram)
    await install(app, user, "recorder")
    async with live_socket(app, user.token) as live:
        with app.db():
            gone = await delete_user(user.email, app.platform.accounts, app.platform.plugins, app.platform.gateways)
        await app.platform.sockets.ended(gone.tokens, [gone.user_id])
        close, _ = await closed(live)
    assert close == FORBIDDEN
    assert recorder.hooks == ["on_install", "on_uninstall"]
    assert sorted(gone.plugins) == ["analytics", "recorder"] and gone.bots == 1
    assert (await user_rows(app, user.id))["users"] == 0


async def test_users_delete_without_yes_and_no_terminal_refuses_and_deletes_nothing(app, database_url):
    user = await analytics_user(app)
    before = await user_rows(app, user.id)
    code, out, err = await run_cli("users", "delete", user.email, database_url=database_url)
    assert code != 0 and out == ""
    assert one_error_line(err) == (
        f"error: users delete {user.email} asks for confirmation: run it in a terminal, or add --yes"
    )
    assert await user_rows(app, user.id) == before


async def run_cli_on_a_terminal(answer: str, *args: str, database_url: str) -> tuple[int, str, str]:
    """`python -m app ARGS` with a terminal for stdin, on which `answer` is typed."""
    main, terminal = pty.openpty()
    environ = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            *args,
            env={**environ, **QUIET, "DATABASE_URL": database_url},
            stdin=terminal,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        os.close(terminal)
        terminal = -1
        os.write(main, answer.encode() + b"\n")
        out, err = await asyncio.wait_for(process.communicate(), 90)
    finally:
        if terminal != -1:
            os.close(terminal)
        os.close(main)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_users_delete_asks_on_a_terminal_and_y_deletes(app, database_url):
    user = await analytics_user(app)
    async with live_socket(app, user.token) as live:
        code, out, err = await run_cli_on_a_terminal("y", "users", "delete", user.email, database_url=database_url)
        assert code == 0, err
        assert f"Delete {user.email}? [y/N]" in out
        assert "1 plugin (analytics)" in out and f"Deleted {user.email}" in out
        close, _ = await closed(live)  # memory:// in the server: its re-check ends the socket
    assert close == FORBIDDEN
    assert (await user_rows(app, user.id))["users"] == 0


async def test_users_delete_answered_no_deletes_nothing(app, database_url):
    user = await analytics_user(app)
    before = await user_rows(app, user.id)
    code, out, err = await run_cli_on_a_terminal("n", "users", "delete", user.email, database_url=database_url)
    assert code != 0 and f"Delete {user.email}? [y/N]" in out
    assert one_error_line(err) == "error: Not confirmed: nothing was deleted"
    assert await user_rows(app, user.id) == before


async def test_users_delete_of_an_unknown_email_is_one_line(app, database_url):
    code, _, err = await run_cli("users", "delete", "nobody@example.com", "--yes", database_url=database_url)
    assert code != 0
    assert one_error_line(err) == "error: No user with the email nobody@example.com"
