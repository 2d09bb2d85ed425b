"""Each process keeps the tokens it verified for a few seconds (TOKEN_CACHE_SECONDS), and a token
that stops working stops in every process: at once on the sessions' notice over the pub/sub, within
the auth version's check (a second) when the notice is lost, within the cache's own bound when
nothing announces it, and at its expiry always.

Time is moved rather than waited for: each cache's clock (`cache.clock`) and the platform's clock
are set by the tests; nothing here sleeps or bounds a duration."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from app.accounts.auth_version import raise_version, read_version
from app.accounts.context import ServiceContext
from app.accounts.models import ApiToken, AuthVersion, Plan
from app.accounts.service import AccountService
from app.accounts.token_cache import VERSION_SECONDS, CachedToken, TokenCache
from app.accounts.tokens import TokenService
from app.clock import utcnow
from tests.graphql.test_socket_sessions import analytics_user, listening, live_socket, second_token
from tests.support.eventually import eventually
from tests.support.live import LiveApp, TestUser
from tests.support.queries import counting_queries
from tests.support.redis_server import RedisServer, shared_redis_url
from tests.test_cli import run_cli

SECONDS = 5.0
ME = "{ me { id plan } }"
REVOKE = "mutation($id: ID!) { revokeApiToken(id: $id) }"


class Clock:
    """A monotonic clock the test moves on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def move(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens(clock: Clock) -> TokenService:
    service = TokenService(cache_seconds=SECONDS)
    service.cache.clock = clock
    return service


async def new_user(plan: Plan = Plan.PRO) -> tuple[str, str]:
    user, token = await AccountService().create_user("ada@example.com", plan)
    return user.id, token


# --- one process ---------------------------------------------------------------------------------


async def test_a_cached_token_is_answered_without_a_query(db, tokens):
    user_id, token = await new_user()
    first = await tokens.authenticate(token)
    with counting_queries() as statements:
        again = await tokens.authenticate(token)
    assert statements == []
    assert again == first and again is not None and again.user_id == user_id


async def test_the_auth_version_is_read_at_most_once_a_second_however_many_requests(db, tokens, clock):
    _, token = await new_user()
    await tokens.authenticate(token)
    clock.move(VERSION_SECONDS)
    with counting_queries() as statements:
        for _ in range(20):
            assert await tokens.authenticate(token) is not None
    assert len(statements) == 1 and "auth_versions" in statements[0]


async def test_a_revoke_in_this_process_stops_the_cached_token_at_once(db, tokens):
    user_id, token = await new_user()
    row, second = await tokens.create_token(user_id, "second", None, via="test")
    assert await tokens.authenticate(second) is not None
    await tokens.revoke_token(row.id, via="test")
    assert await tokens.authenticate(second) is None
    assert await tokens.authenticate(token) is not None


async def test_a_revoke_by_another_process_stops_the_cached_token_at_the_next_version_check(db, tokens, clock):
    """No notice reaches this cache: the revocation raised the auth version in its transaction."""
    user_id, token = await new_user()
    row, second = await tokens.create_token(user_id, "second", None, via="test")
    assert await tokens.authenticate(second) is not None
    await TokenService().revoke_token(row.id, via="cli")  # another process's service
    clock.move(VERSION_SECONDS)
    assert await tokens.authenticate(second) is None
    assert await tokens.authenticate(token) is not None


async def test_a_token_revoked_behind_every_process_expires_from_the_cache_within_its_bound(db, tokens, clock):
    """A revocation in SQL raises no version and sends no notice: the entry's own expiry ends it."""
    _, token = await new_user()
    assert await tokens.authenticate(token) is not None
    await ApiToken.all().update(revoked_at=utcnow())
    clock.move(SECONDS - 0.01)
    assert await tokens.authenticate(token) is not None  # trusted for up to TOKEN_CACHE_SECONDS
    clock.move(0.01)
    assert await tokens.authenticate(token) is None


async def test_a_cached_token_stops_at_its_expiry_without_a_query(db, tokens):
    user_id, _ = await new_user()
    row, token = await tokens.create_token(user_id, "short-lived", 1, via="test")
    assert await tokens.authenticate(token) is not None
    assert row.expires_at is not None
    tokens.clock = lambda: row.expires_at + timedelta(microseconds=1)
    with counting_queries() as statements:
        assert await tokens.authenticate(token) is None
    assert [s for s in statements if "auth_versions" in s] == []  # judged from the entry


async def test_a_plan_change_reaches_the_cached_context_at_the_next_version_check(db, tokens, clock):
    _, token = await new_user(Plan.FREE)
    assert (await tokens.authenticate(token)).plan == Plan.FREE
    await AccountService().set_plan("ada@example.com", Plan.BUSINESS, via="cli")
    clock.move(VERSION_SECONDS)
    assert (await tokens.authenticate(token)).plan == Plan.BUSINESS


async def test_last_use_stays_coarse_with_the_cache(db, tokens):
    _, token = await new_user()
    await tokens.authenticate(token)
    (first,) = await ApiToken.all().values_list("last_used_at", flat=True)
    with counting_queries() as statements:
        for _ in range(5):
            await tokens.authenticate(token)
    assert statements == []
    later = utcnow() + timedelta(seconds=61)
    tokens.clock = lambda: later
    with counting_queries() as statements:
        await tokens.authenticate(token)
        await tokens.authenticate(token)
    assert len([s for s in statements if s.lstrip().upper().startswith("UPDATE")]) == 1
    (written,) = await ApiToken.all().values_list("last_used_at", flat=True)
    assert written == later != first


async def test_the_database_gone_fails_a_cached_token_at_the_version_check_as_an_uncached_one(db, clock):
    """A cache never answers past a version check it could not make."""
    _, token = await new_user()

    async def gone() -> int:
        raise ConnectionError("database gone")

    tokens = TokenService(cache_seconds=SECONDS)
    tokens.cache = TokenCache(SECONDS, gone, clock=clock)
    with pytest.raises(ConnectionError):
        await tokens.authenticate(token)


async def test_the_auth_version_is_raised_by_each_change_that_ends_a_tokens_use(db):
    user_id, _ = await new_user(Plan.FREE)
    assert await read_version() == 0
    row, _ = await TokenService().create_token(user_id, "second", None, via="test")
    assert await read_version() == 0  # a new token ends nothing
    await TokenService().revoke_token(row.id, via="test")
    assert await read_version() == 1
    await TokenService().revoke_token(row.id, via="test")  # revoked already: nothing changed
    assert await read_version() == 1
    await AccountService().set_plan("ada@example.com", Plan.PRO, via="cli")
    assert await read_version() == 2
    await AccountService().set_plan("ada@example.com", Plan.PRO, via="cli")  # the same plan
    assert await read_version() == 2
    await raise_version(AuthVersion._meta.db)
    assert await AuthVersion.all().values_list("id", "version") == [(1, 3)]


# --- the cache itself ----------------------------------------------------------------------------


def entry(token_id: str, user_id: str = "u") -> Callable[[float], CachedToken]:
    return lambda until: CachedToken(ServiceContext(user_id=user_id, plan=Plan.FREE), token_id, None, until)


async def ready_cache(clock: Clock, max_entries: int = 100) -> TokenCache:
    async def version() -> int:
        return 0

    cache = TokenCache(SECONDS, version, max_entries=max_entries, clock=clock)
    assert await cache.get("nothing") is None  # the first version check
    return cache


async def test_an_answer_read_before_a_notice_is_not_kept(clock):
    cache = await ready_cache(clock)
    generation = cache.generation()  # a request starts reading the token's row...
    cache.noticed(["t1"], [])  # ...a revocation's notice arrives meanwhile
    cache.put("h1", entry("t1"), generation)
    assert await cache.get("h1") is None


async def test_a_notice_forgets_the_tokens_and_users_it_names_only(clock):
    cache = await ready_cache(clock)
    for key, token_id, user_id in [("h1", "t1", "u1"), ("h2", "t2", "u2"), ("h3", "t3", "u3")]:
        cache.put(key, entry(token_id, user_id), cache.generation())
    cache.noticed(["t1"], ["u2"])
    assert [await cache.get(k) is not None for k in ("h1", "h2", "h3")] == [False, False, True]


async def test_the_cache_holds_at_most_max_entries_dropping_the_oldest(clock):
    cache = await ready_cache(clock, max_entries=3)
    for n in range(5):
        cache.put(f"h{n}", entry(f"t{n}"), cache.generation())
    assert len(cache) == 3
    assert [await cache.get(f"h{n}") is not None for n in range(5)] == [False, False, True, True, True]


async def test_verified_token_ids_are_kept_and_forgotten_as_the_tokens_are(clock):
    """A shared push asks for token ids: the ids a request or a batch check verified are vouched for
    within the bound and before their expiry, and a notice or a version move forgets them too."""
    cache = await ready_cache(clock)
    now = utcnow()
    cache.put("h1", entry("t1", "u1"), cache.generation())  # a request's
    cache.put_working("t2", "u2", None, cache.generation())  # a batch check's
    cache.put_working("t3", "u3", now + timedelta(minutes=1), cache.generation())
    assert await cache.working(["t1", "t2", "t3", "t4"], now) == {"t1", "t2", "t3"}
    assert await cache.working(["t3"], now + timedelta(minutes=1)) == set()  # expired then

    cache.noticed(["t1"], ["u2"])
    assert await cache.working(["t1", "t2", "t3"], now) == {"t3"}

    generation = cache.generation()  # a batch check starts reading...
    cache.noticed(["t2"], [])  # ...a revocation's notice arrives meanwhile
    cache.put_working("t2", "u2", None, generation)
    assert await cache.working(["t2"], now) == set()

    clock.move(SECONDS)
    assert await cache.working(["t3"], now) == set()  # past the bound


async def test_a_version_move_forgets_the_verified_token_ids(clock):
    versions = iter([0, 1])

    async def version() -> int:
        return next(versions)

    cache = TokenCache(SECONDS, version, clock=clock)
    assert await cache.working(["t"], utcnow()) == set()
    assert await cache.get("nothing") is None  # the first version check
    cache.put_working("t", "u", None, cache.generation())
    assert await cache.working(["t"], utcnow()) == {"t"}
    clock.move(VERSION_SECONDS)
    assert await cache.working(["t"], utcnow()) == set()


async def test_a_cache_of_zero_seconds_keeps_nothing(clock):
    async def version() -> int:
        raise AssertionError("never read")

    cache = TokenCache(0, version, clock=clock)
    cache.put("h", entry("t"), cache.generation())
    assert await cache.get("h") is None and len(cache) == 0


# --- across processes ----------------------------------------------------------------------------


@pytest.fixture
async def redis_url() -> str:
    return await shared_redis_url()


async def cached_in(app: LiveApp, user: TestUser, token: str) -> None:
    """The app has verified the token and keeps it."""
    assert (await app.graphql(ME, user=as_user(user, token)))["me"]["id"] == user.id
    assert len(app.platform.tokens.cache) > 0


def as_user(user: TestUser, token: str) -> TestUser:
    return TestUser(id=user.id, email=user.email, token=token)


async def refused(app: LiveApp, user: TestUser, token: str) -> bool:
    error = await app.graphql_error(ME, user=as_user(user, token))
    return error["extensions"]["code"] == "UNAUTHENTICATED"


async def noticed_after(app: LiveApp, done: int) -> None:
    cache = app.platform.tokens.cache
    await eventually(lambda: cache.notices > done, "the sessions notice taken by the other process's cache")


def moved_on(app: LiveApp, seconds: float) -> None:
    """The app's cache clock, `seconds` ahead of the real one from now on."""
    app.platform.tokens.cache.clock = lambda: time.monotonic() + seconds


async def pair(make_app: Any, broadcast_url: str) -> tuple[LiveApp, LiveApp, TestUser]:
    first = await make_app(broadcast_url=broadcast_url)
    second = await make_app(broadcast_url=broadcast_url, inbox_concurrency=0)
    if broadcast_url.startswith("redis"):
        await eventually(lambda: listening(second), "the second app listening for ended sessions")
    return first, second, await first.create_user("ada@example.com", "pro")


async def test_a_revoke_through_the_api_of_one_process_stops_the_token_cached_by_another(make_app, redis_url):
    first, second, user = await pair(make_app, redis_url)
    token, token_id = await second_token(first, user)
    await cached_in(second, user, token)
    done = second.platform.tokens.cache.notices
    assert await first.graphql(REVOKE, {"id": token_id}, user=user) == {"revokeApiToken": True}
    await noticed_after(second, done)
    assert await refused(second, user, token)  # its next request, without a version check due
    assert (await second.graphql(ME, user=user))["me"]["id"] == user.id  # the user's other token works


async def test_a_revoke_while_redis_is_down_stops_the_cached_token_within_the_version_check(make_app, tmp_path):
    redis = RedisServer(tmp_path)
    await redis.start()
    try:
        first, second, user = await pair(make_app, redis.url)
        token, token_id = await second_token(first, user)
        await cached_in(second, user, token)
        await redis.stop()
        assert await first.graphql(REVOKE, {"id": token_id}, user=user) == {"revokeApiToken": True}
        moved_on(second, VERSION_SECONDS)
        assert await refused(second, user, token)
    finally:
        await redis.stop()


async def test_the_cli_revoke_stops_a_token_cached_by_a_server_through_redis(make_app, redis_url, database_url):
    _, second, user = await pair(make_app, redis_url)
    token, token_id = await second_token(second, user)
    await cached_in(second, user, token)
    done = second.platform.tokens.cache.notices
    code, out, err = await run_cli(
        "tokens", "revoke", token_id, database_url=database_url, env={"BROADCAST_URL": redis_url}
    )
    assert code == 0 and f"Revoked token {token_id}" in out, err
    await noticed_after(second, done)
    assert await refused(second, user, token)


async def test_the_sockets_recheck_makes_the_cache_forget_a_token_revoked_behind_its_back(app):
    """A revocation in SQL, found by the re-check of the open websockets: the cache forgets the
    token then, not at the end of its own bound (no clock is moved here)."""
    user = await analytics_user(app)
    token, token_id = await second_token(app, user)
    await cached_in(app, user, token)
    async with live_socket(app, token):
        with app.db():
            await ApiToken.filter(id=token_id).update(revoked_at=utcnow())
            await app.platform.sockets.recheck()
    assert await refused(app, user, token)


async def test_the_cli_revoke_on_memory_pubsub_stops_a_cached_token_within_the_version_check(app, database_url):
    """No process to tell: the auth version, raised in the revocation's transaction, does it."""
    user = await app.create_user("ada@example.com", "pro")
    token, token_id = await second_token(app, user)
    await cached_in(app, user, token)
    code, _, err = await run_cli("tokens", "revoke", token_id, database_url=database_url)
    assert code == 0, err
    moved_on(app, VERSION_SECONDS)
    assert await refused(app, user, token)


async def test_deleting_a_user_with_the_cli_stops_their_tokens_cached_by_a_server(make_app, redis_url, database_url):
    _, second, user = await pair(make_app, redis_url)
    await cached_in(second, user, user.token)
    done = second.platform.tokens.cache.notices
    code, _, err = await run_cli(
        "users", "delete", user.email, "--yes", database_url=database_url, env={"BROADCAST_URL": redis_url}
    )
    assert code == 0, err
    await noticed_after(second, done)
    assert await refused(second, user, user.token)
