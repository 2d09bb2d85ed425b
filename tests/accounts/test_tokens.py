"""API tokens: checked on every authentication, revoked or expired at once, last use kept coarse."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from app.accounts.models import ApiToken, Plan
from app.accounts.service import AccountService
from app.accounts.tokens import MAX_VALID_TOKENS, TokenService, hash_token
from app.audit.models import AuditLog
from app.clock import utcnow
from app.errors import BadUserInput, NotFound
from tests.support.queries import counting_queries


@pytest.fixture
def tokens() -> TokenService:
    return TokenService()


async def new_user(email: str = "ada@example.com") -> tuple[str, str]:
    user, token = await AccountService().create_user(email, Plan.PRO)
    return user.id, token


def updates(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("UPDATE")]


async def test_a_token_authenticates_as_its_user_and_names_itself(db, tokens):
    user_id, token = await new_user()
    ctx = await tokens.authenticate(token)
    assert ctx is not None
    assert ctx.user_id == user_id and ctx.plan == Plan.PRO
    (row,) = await ApiToken.filter(user_id=user_id)
    assert ctx.token_id == row.id
    assert row.token_hash == hash_token(token) and row.name == "first token"


async def test_a_revoked_token_stops_working_at_once(db, tokens):
    user_id, token = await new_user()
    row, second = await tokens.create_token(user_id, "second", None, via="test")
    assert (await tokens.authenticate(second)) is not None
    await tokens.revoke_token(row.id, via="test")
    assert await tokens.authenticate(second) is None
    assert await tokens.authenticate(token) is not None


async def test_an_expired_token_stops_working(db, tokens):
    user_id, _ = await new_user()
    row, token = await tokens.create_token(user_id, "short-lived", 1, via="test")
    assert row.expires_at is not None
    assert abs(row.expires_at - (utcnow() + timedelta(days=1))) < timedelta(minutes=1)
    assert await tokens.authenticate(token) is not None
    await ApiToken.filter(id=row.id).update(expires_at=utcnow() - timedelta(seconds=1))
    assert await tokens.authenticate(token) is None


@pytest.mark.parametrize(
    "token",
    [
        "",
        "pb_",
        "pb_short",
        "Bearer pb_x",
        "pb_" + "a" * 101,
        "pb_\x00" + "a" * 40,
        "pb_\ud800" + "a" * 40,
        "pb_" + "é" * 43,
    ],
)
async def test_a_malformed_token_is_refused_without_a_query(db, tokens, token):
    with counting_queries() as statements:
        assert await tokens.authenticate(token) is None
    assert statements == []


async def test_last_use_is_written_on_first_use_then_at_most_once_a_minute(db, tokens):
    user_id, token = await new_user()
    (row,) = await ApiToken.filter(user_id=user_id)
    assert row.last_used_at is None

    with counting_queries() as statements:
        await tokens.authenticate(token)
    assert len(updates(statements)) == 1
    first = (await ApiToken.get(id=row.id)).last_used_at
    assert first is not None and abs(first - utcnow()) < timedelta(minutes=1)

    with counting_queries() as statements:
        for _ in range(5):
            assert await tokens.authenticate(token) is not None
    assert updates(statements) == []  # no write while the last one is under a minute old
    assert (await ApiToken.get(id=row.id)).last_used_at == first

    await ApiToken.filter(id=row.id).update(last_used_at=first - timedelta(seconds=61))
    with counting_queries() as statements:
        await tokens.authenticate(token)
    assert len(updates(statements)) == 1
    assert (await ApiToken.get(id=row.id)).last_used_at > first


async def test_concurrent_first_uses_all_authenticate(db, tokens):
    _, token = await new_user()
    results = await asyncio.gather(*(tokens.authenticate(token) for _ in range(10)))
    assert all(ctx is not None for ctx in results)


@pytest.mark.parametrize(
    ("name", "days", "path", "message"),
    [
        ("", None, "/name", "must be 1 to 64 characters"),
        ("   ", None, "/name", "must be 1 to 64 characters"),
        ("x" * 65, None, "/name", "must be 1 to 64 characters"),
        ("nul\x00", None, "/name", "contains a NUL character"),
        ("half \ud800", None, "/name", "contains an unpaired surrogate"),
        ("line\nbreak", None, "/name", "must not contain control characters (line breaks, tabs, escapes)"),
        ("ok", 0, "/expiresInDays", "must be between 1 and 3650 days (or null: never)"),
        ("ok", -5, "/expiresInDays", "must be between 1 and 3650 days (or null: never)"),
        ("ok", 3651, "/expiresInDays", "must be between 1 and 3650 days (or null: never)"),
    ],
)
async def test_create_token_refuses_a_bad_name_or_expiry_and_changes_nothing(db, tokens, name, days, path, message):
    user_id, _ = await new_user()
    with pytest.raises(BadUserInput) as raised:
        await tokens.create_token(user_id, name, days, via="test")
    assert [(e.path, e.message) for e in raised.value.errors] == [(path, message)]
    assert await ApiToken.filter(user_id=user_id).count() == 1
    assert await AuditLog.all().count() == 0


async def test_a_name_is_trimmed_and_may_be_any_printable_text(db, tokens):
    user_id, _ = await new_user()
    row, _ = await tokens.create_token(user_id, "  CI — déploiement 🚀  ", 3650, via="test")
    assert row.name == "CI — déploiement 🚀"


async def test_create_token_for_an_unknown_user_is_not_found(db, tokens):
    with pytest.raises(NotFound):
        await tokens.create_token("0123456789abcdef0123456789abcdef", "x", None, via="test")
    assert await ApiToken.all().count() == 0


async def test_a_user_holds_at_most_50_valid_tokens(db, tokens):
    user_id, _ = await new_user()
    made = [(await tokens.create_token(user_id, f"t{n}", None, via="test"))[0] for n in range(MAX_VALID_TOKENS - 1)]
    with pytest.raises(BadUserInput) as raised:
        await tokens.create_token(user_id, "one too many", None, via="test")
    assert "50 valid tokens" in raised.value.message
    await tokens.revoke_token(made[0].id, via="test")
    await tokens.create_token(user_id, "room again", None, via="test")
    await ApiToken.filter(id=made[1].id).update(expires_at=utcnow() - timedelta(days=1))
    await tokens.create_token(user_id, "an expired one does not count", None, via="test")


async def test_every_change_is_an_audit_event_and_no_event_holds_a_token(db, tokens):
    user_id, _ = await new_user()
    row, token = await tokens.create_token(user_id, "deploy", 30, via="api")
    await tokens.revoke_token(row.id, via="cli")
    events = await AuditLog.filter(actor_id=user_id).order_by("created_at", "id")
    assert [(e.action, e.target_type, e.target_id) for e in events] == [
        ("token.create", "api_token", row.id),
        ("token.revoke", "api_token", row.id),
    ]
    assert events[0].metadata == {"name": "deploy", "expiresAt": row.expires_at.isoformat(), "via": "api"}
    assert events[1].metadata == {"name": "deploy", "via": "cli"}
    assert all(token not in repr(e.metadata) and hash_token(token) not in repr(e.metadata) for e in events)


async def test_list_tokens_gives_the_valid_ones_or_all(db, tokens):
    user_id, _ = await new_user()
    revoked, _ = await tokens.create_token(user_id, "revoked", None, via="test")
    expired, _ = await tokens.create_token(user_id, "expired", None, via="test")
    await tokens.revoke_token(revoked.id, via="test")
    await ApiToken.filter(id=expired.id).update(expires_at=utcnow() - timedelta(seconds=1))
    assert [t.name for t in await tokens.list_tokens(user_id)] == ["first token"]
    assert sorted(t.name for t in await tokens.list_tokens(user_id, valid_only=False)) == [
        "expired",
        "first token",
        "revoked",
    ]


async def test_self_service_cannot_revoke_the_last_valid_token(db, tokens):
    user_id, token = await new_user()
    (first,) = await ApiToken.filter(user_id=user_id)
    expired, _ = await tokens.create_token(user_id, "expired", None, via="test")
    await ApiToken.filter(id=expired.id).update(expires_at=utcnow() - timedelta(seconds=1))
    with pytest.raises(BadUserInput) as raised:
        await tokens.revoke_token(first.id, via="api", owner_id=user_id, keep_last=True)
    assert raised.value.errors[0].path == "/id"
    assert "last valid token" in raised.value.errors[0].message
    assert await tokens.authenticate(token) is not None
    await tokens.revoke_token(
        expired.id, via="api", owner_id=user_id, keep_last=True
    )  # not valid: not the last valid one
    second, _ = await tokens.create_token(user_id, "second", None, via="test")
    await tokens.revoke_token(first.id, via="api", owner_id=user_id, keep_last=True)
    assert await tokens.authenticate(token) is None
    assert [t.id for t in await tokens.list_tokens(user_id)] == [second.id]


async def test_two_concurrent_revokes_of_the_last_two_tokens_leave_one(db, tokens):
    user_id, _ = await new_user()
    (first,) = await ApiToken.filter(user_id=user_id)
    second, _ = await tokens.create_token(user_id, "second", None, via="test")
    results = await asyncio.gather(
        tokens.revoke_token(first.id, via="api", owner_id=user_id, keep_last=True),
        tokens.revoke_token(second.id, via="api", owner_id=user_id, keep_last=True),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["BadUserInput", "Revoked"]
    assert len(await tokens.list_tokens(user_id)) == 1


async def test_self_service_sees_only_its_own_live_tokens(db, tokens):
    ada_id, _ = await new_user("ada@example.com")
    grace_id, _ = await new_user("grace@example.com")
    graces, grace_token = await tokens.create_token(grace_id, "grace's", None, via="test")
    with pytest.raises(NotFound):
        await tokens.revoke_token(graces.id, via="api", owner_id=ada_id, keep_last=True)
    assert await tokens.authenticate(grace_token) is not None
    await tokens.revoke_token(graces.id, via="api", owner_id=grace_id, keep_last=True)
    with pytest.raises(NotFound):  # revoked: unknown to self-service, so the answer is the same as for a stranger's
        await tokens.revoke_token(graces.id, via="api", owner_id=grace_id, keep_last=True)
    again = await tokens.revoke_token(graces.id, via="cli")  # the operator sees it, revoked already
    assert again.already
    assert await AuditLog.filter(action="token.revoke").count() == 1


@pytest.mark.parametrize("token_id", ["", "x", "0123456789ABCDEF0123456789ABCDEF", "a" * 33, "\x00" * 32])
async def test_revoking_an_id_we_never_hand_out_is_not_found_without_a_query(db, tokens, token_id):
    with counting_queries() as statements:
        with pytest.raises(NotFound):
            await tokens.revoke_token(token_id, via="cli")
    assert statements == []


async def test_still_valid_tells_the_tokens_that_work_now_and_records_their_use(db, tokens):
    """The check before each shared summary is sent (app/accounts/token_checks.py): a short read of
    the rows, judged as `authenticate` judges them."""
    user_id, _ = await new_user()
    lasting, _ = await tokens.create_token(user_id, "lasting", None, via="test")
    tomorrow, _ = await tokens.create_token(user_id, "until tomorrow", 1, via="test")
    revoked, _ = await tokens.create_token(user_id, "revoked", None, via="test")
    expired, _ = await tokens.create_token(user_id, "expired", 1, via="test")
    await tokens.revoke_token(revoked.id, via="test")
    await ApiToken.filter(id=expired.id).update(expires_at=utcnow() - timedelta(seconds=1))
    asked = [lasting.id, tomorrow.id, revoked.id, expired.id, "0123456789abcdef0123456789abcdef"]

    assert await tokens.still_valid(asked) == {lasting.id, tomorrow.id}
    used = {row.id: row.last_used_at for row in await ApiToken.filter(id__in=asked)}
    assert used[lasting.id] is not None and used[tomorrow.id] is not None
    assert used[revoked.id] is None and used[expired.id] is None
    with counting_queries() as statements:
        assert await tokens.still_valid(asked) == {lasting.id, tomorrow.id}
    assert updates(statements) == []  # used under a minute ago: not written again
