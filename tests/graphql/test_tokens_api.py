"""Self-service API tokens over GraphQL: myTokens, createApiToken, revokeApiToken."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from websockets.asyncio.client import connect

from app.accounts.models import ApiToken
from tests.support.eventually import eventually
from tests.support.live import LiveApp, TestUser
from tests.support.subscriptions import PROTOCOL, ws_url

MY_TOKENS = "{ myTokens { id name createdAt lastUsedAt expiresAt isCurrent } }"
CREATE = (
    "mutation($name: String!, $days: Int) { createApiToken(name: $name, expiresInDays: $days) "
    "{ token apiToken { id name createdAt lastUsedAt expiresAt isCurrent } } }"
)
REVOKE = "mutation($id: ID!) { revokeApiToken(id: $id) }"
ME = "{ me { id email } }"


async def create(app: LiveApp, user: TestUser, name: str, days: int | None = None) -> tuple[str, dict]:
    created = (await app.graphql(CREATE, {"name": name, "days": days}, user=user))["createApiToken"]
    return created["token"], created["apiToken"]


def as_user(user: TestUser, token: str) -> TestUser:
    return TestUser(id=user.id, email=user.email, token=token)


async def token_state(app: LiveApp) -> list[tuple]:
    """What a call may change about tokens (last use aside: any authenticated call may write it)."""
    with app.db():
        return sorted(await ApiToken.all().values_list("id", "user_id", "name", "expires_at", "revoked_at"))


async def audit_count(app: LiveApp, user: TestUser) -> int:
    return len((await app.graphql("{ auditLog(limit: 500) { id } }", user=user))["auditLog"])


async def test_my_tokens_lists_the_callers_valid_tokens_and_marks_the_current_one(app, user):
    (only,) = (await app.graphql(MY_TOKENS, user=user))["myTokens"]
    assert only["name"] == "first token" and only["isCurrent"] is True
    assert only["expiresAt"] is None
    assert only["lastUsedAt"] is not None  # this very request used it

    token, made = await create(app, user, "ci", 30)
    listed = (await app.graphql(MY_TOKENS, user=user))["myTokens"]
    assert [t["id"] for t in listed] == [made["id"], only["id"]]  # newest first
    assert [t["isCurrent"] for t in listed] == [False, True]
    listed = (await app.graphql(MY_TOKENS, user=as_user(user, token)))["myTokens"]
    assert [t["isCurrent"] for t in listed] == [True, False]


async def test_create_api_token_returns_the_token_once_and_it_signs_in(app, user):
    token, made = await create(app, user, "  laptop  ", 7)
    assert token.startswith("pb_") and token != user.token
    assert made["name"] == "laptop" and made["isCurrent"] is False and made["lastUsedAt"] is None
    expires = datetime.fromisoformat(made["expiresAt"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=5)
    assert (await app.graphql(ME, user=as_user(user, token)))["me"]["email"] == user.email
    # Never again: no field of any type holds a token or its hash.
    fields = await app.graphql('{ __type(name: "ApiToken") { fields { name } } }')
    assert {f["name"] for f in fields["__type"]["fields"]} == {
        "id",
        "name",
        "createdAt",
        "lastUsedAt",
        "expiresAt",
        "isCurrent",
    }
    with app.db():
        stored = await ApiToken.get(id=made["id"])
    assert token not in json.dumps(await app.graphql_response(MY_TOKENS, user=user))
    assert stored.token_hash != token


@pytest.mark.parametrize(
    ("variables", "path"),
    [
        ({"name": ""}, "/name"),
        ({"name": "x" * 65}, "/name"),
        ({"name": "tab\there"}, "/name"),
        ({"name": "nul\u0000"}, "/name"),
        ({"name": "ok", "days": 0}, "/expiresInDays"),
        ({"name": "ok", "days": -1}, "/expiresInDays"),
        ({"name": "ok", "days": 3651}, "/expiresInDays"),
    ],
)
async def test_create_api_token_refuses_bad_input_and_changes_nothing(app, user, variables, path):
    before = await token_state(app)
    error = await app.graphql_error(CREATE, variables, user=user)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"][0]["path"] == path
    assert await token_state(app) == before
    assert await audit_count(app, user) == 0


async def test_revoking_a_token_stops_it_at_once_and_leaves_the_others(app, user):
    token, made = await create(app, user, "old laptop")
    assert await app.graphql(REVOKE, {"id": made["id"]}, user=user) == {"revokeApiToken": True}
    error = await app.graphql_error(ME, user=as_user(user, token))
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert [t["name"] for t in (await app.graphql(MY_TOKENS, user=user))["myTokens"]] == ["first token"]
    again = await app.graphql_error(REVOKE, {"id": made["id"]}, user=user)
    assert again["extensions"]["code"] == "NOT_FOUND"


async def test_a_user_can_revoke_the_token_in_use_when_another_is_valid(app, user):
    other, _ = await create(app, user, "spare")
    (current,) = [t for t in (await app.graphql(MY_TOKENS, user=user))["myTokens"] if t["isCurrent"]]
    assert (await app.graphql(REVOKE, {"id": current["id"]}, user=user))["revokeApiToken"] is True
    assert (await app.graphql_error(ME, user=user))["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await app.graphql(ME, user=as_user(user, other)))["me"]["id"] == user.id


async def test_the_last_valid_token_cannot_be_revoked_through_the_api(app, user):
    token, made = await create(app, user, "expiring")
    with app.db():
        await ApiToken.filter(id=made["id"]).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    (current,) = (await app.graphql(MY_TOKENS, user=user))["myTokens"]
    before = await token_state(app)
    error = await app.graphql_error(REVOKE, {"id": current["id"]}, user=user)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"][0]["path"] == "/id"
    assert "last valid token" in error["message"]
    assert await token_state(app) == before
    assert (await app.graphql(ME, user=user))["me"]["id"] == user.id
    assert (await app.graphql_error(ME, user=as_user(user, token)))["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "token_id", ["nope", "0123456789abcdef0123456789abcdef", "", "x" * 10_000, "'; DROP TABLE api_tokens; --"]
)
async def test_revoking_an_unknown_or_someone_elses_token_is_not_found_and_changes_nothing(app, user, token_id):
    other = await app.create_user("other@example.com", "free")
    (theirs,) = (await app.graphql(MY_TOKENS, user=other))["myTokens"]
    before = await token_state(app)
    for target in (token_id, theirs["id"]):
        error = await app.graphql_error(REVOKE, {"id": target}, user=user)
        assert error["extensions"]["code"] == "NOT_FOUND"
    assert await token_state(app) == before
    assert (await app.graphql(ME, user=other))["me"]["id"] == other.id


@pytest.mark.parametrize(
    ("query", "variables"),
    [(MY_TOKENS, None), (CREATE, {"name": "x"}), (REVOKE, {"id": "0123456789abcdef0123456789abcdef"})],
)
async def test_token_fields_need_a_signed_in_caller(app, user, query, variables):
    before = await token_state(app)
    error = await app.graphql_error(query, variables)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert await token_state(app) == before


async def test_every_token_change_is_in_the_audit_log_without_the_token(app, user):
    token, made = await create(app, user, "deploy", 90)
    await app.graphql(REVOKE, {"id": made["id"]}, user=user)
    events = (await app.graphql("{ auditLog { action targetType targetId metadata } }", user=user))["auditLog"]
    assert [(e["action"], e["targetType"], e["targetId"]) for e in events] == [
        ("token.revoke", "api_token", made["id"]),
        ("token.create", "api_token", made["id"]),
    ]
    assert events[1]["metadata"]["via"] == "api" and events[1]["metadata"]["name"] == "deploy"
    assert token not in json.dumps(events)


async def test_a_token_is_never_logged(app, user, caplog):
    caplog.set_level(logging.DEBUG)
    token, _ = await create(app, user, "secret-keeper")
    await app.graphql(ME, user=as_user(user, token))
    await app.graphql_error(
        'mutation { createApiToken(name: "x", expiresInDays: 0) { token } }', user=as_user(user, token)
    )
    assert caplog.records, "the server logged nothing: the check would prove nothing"
    assert all(token not in record.getMessage() for record in caplog.records)
    assert token not in caplog.text


async def test_an_expired_token_stops_at_once(app, user):
    """At its expiry, though the process verified it a moment before and keeps it."""
    token, made = await create(app, user, "short", 1)
    assert (await app.graphql(ME, user=as_user(user, token)))["me"]["id"] == user.id
    expires_at = datetime.fromisoformat(made["expiresAt"])
    app.platform.clock = lambda: expires_at + timedelta(microseconds=1)
    assert (await app.graphql_error(ME, user=as_user(user, token)))["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await app.http.get("/analytics.csv", headers={"Authorization": f"Bearer {token}"})).status_code == 401


async def test_a_revoke_in_one_process_stops_the_token_in_another_with_no_pubsub_between_them(app, user, database_url):
    """Each on its own memory:// pub/sub, so no notice passes: the other process's token cache
    reads the auth version the revocation raised (within a second; tests/accounts/test_token_cache.py
    has the rest)."""
    from tests.support.serve_process import ServeProcess

    token, made = await create(app, user, "shared")
    env = {"DATABASE_URL": database_url, "SCHEDULER_ENABLED": "false", "PUBLIC_URL": "https://plugboard.example"}
    async with ServeProcess(env) as other:
        async with httpx_client(other.url) as http:

            async def code() -> str | None:
                answer = await http.post("/graphql", json={"query": ME}, headers={"Authorization": f"Bearer {token}"})
                errors = answer.json().get("errors")
                return errors[0]["extensions"]["code"] if errors else None

            assert await code() is None
            await app.graphql(REVOKE, {"id": made["id"]}, user=user)

            async def refused() -> bool:
                return await code() == "UNAUTHENTICATED"

            await eventually(refused, "the token refused by the other process")


def httpx_client(base_url: str):
    import httpx

    return httpx.AsyncClient(base_url=base_url, timeout=30)


async def test_an_open_websocket_ends_when_its_token_is_revoked(app, user):
    """Between operations too: the socket closes (4403 Forbidden) rather than answer the next one
    UNAUTHENTICATED (tests/graphql/test_socket_sessions.py has the rest: expiry, processes, the CLI)."""
    token, made = await create(app, user, "socket")
    async with connect(ws_url(app.url), subprotocols=[PROTOCOL]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": ME}}))
        message = json.loads(await asyncio.wait_for(ws.recv(), 60))
        assert message["type"] == "next" and message["payload"]["data"]["me"]["id"] == user.id, message
        assert json.loads(await asyncio.wait_for(ws.recv(), 60))["type"] == "complete"
        await app.graphql(REVOKE, {"id": made["id"]}, user=user)
        await asyncio.wait_for(ws.wait_closed(), 60)
    assert (ws.close_code, ws.close_reason) == (4403, "Forbidden")
