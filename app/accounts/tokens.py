"""API tokens: made, checked, listed and revoked. Only a token's SHA-256 is stored; the token
itself is returned once, by `TokenService.create_token`, and never logged or shown again.

A verified token is kept for a few seconds by each process (app/accounts/token_cache.py, which says
how a revocation reaches every process's cache at once, and within a second should its notice be
lost); a websocket it opened closes at the revocation too (app/accounts/sessions.py). Its
`last_used_at` is written at most once a minute (a conditional UPDATE), never on every request.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from app.accounts.auth_version import raise_version, read_version
from app.accounts.context import ServiceContext
from app.accounts.models import TOKEN_NAME_MAX, ApiToken, Plan, User
from app.accounts.token_cache import CachedToken, TokenCache
from app.audit import writes as audit
from app.clock import utcnow
from app.errors import BadUserInput, FieldError, NotFound
from app.inputs import is_id, text_problem
from app.sql import datetime_value, placeholders
from app.sqlite import short_read

log = logging.getLogger(__name__)

TOKEN_PREFIX = "pb_"
# What `new_token` makes: the prefix and 43 URL-safe characters. Anything else is refused unread.
TOKEN_PATTERN = re.compile(r"pb_[A-Za-z0-9_-]{20,100}")
LAST_USED_GRANULARITY = timedelta(seconds=60)
MAX_EXPIRES_DAYS = 3650
# Valid tokens one user may hold at once: what a person or their scripts need, with room to spare.
MAX_VALID_TOKENS = 50
FIRST_TOKEN_NAME = "first token"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def valid_at(now: datetime) -> Q:
    """Tokens that authenticate at `now`: not revoked, not expired."""
    return Q(revoked_at=None) & (Q(expires_at=None) | Q(expires_at__gt=now))


@dataclass(frozen=True, slots=True)
class WorkingToken:
    id: str
    user_id: str
    expires_at: datetime | None
    last_used_at: datetime | None


async def working_tokens(token_ids: Sequence[str], now: datetime) -> list[WorkingToken]:
    """Which of these tokens (a few hundred at most) work at `now`: a short read by primary key,
    judged as `valid_at` judges."""
    conn = ApiToken._meta.db
    rows = await short_read(conn, _tokens_by_id_sql(conn, len(token_ids)), list(token_ids))
    working = []
    for token_id, user_id, expires_at, revoked_at, last_used_at in rows:
        expires = datetime_value(expires_at, "expires_at", ApiToken)
        if works_at(revoked_at, expires, now):
            working.append(
                WorkingToken(token_id, user_id, expires, datetime_value(last_used_at, "last_used_at", ApiToken))
            )
    return working


def _tokens_by_id_sql(conn: BaseDBAsyncClient, count: int) -> str:
    return (
        'SELECT "id", "user_id", "expires_at", "revoked_at", "last_used_at" FROM "api_tokens" '
        f'WHERE "id" IN ({", ".join(placeholders(conn, count))})'
    )


def works_at(revoked_at: object, expires_at: datetime | None, now: datetime) -> bool:
    """`valid_at`'s test, on a row already read: not revoked, not expired."""
    return revoked_at is None and (expires_at is None or expires_at > now)


def is_valid(token: ApiToken, now: datetime) -> bool:
    return works_at(token.revoked_at, token.expires_at, now)


def token_name(name: str, path: str = "/name") -> str:
    """A token's name, trimmed: 1 to 64 characters a database can store."""
    name = name.strip()
    problem = text_problem(name)
    if problem is None and not 1 <= len(name) <= TOKEN_NAME_MAX:
        problem = f"must be 1 to {TOKEN_NAME_MAX} characters"
    if problem is None and not name.isprintable():
        problem = "must not contain control characters (line breaks, tabs, escapes)"
    if problem:
        raise BadUserInput(f"Token name {problem}", [FieldError(path, problem)])
    return name


def expiry(now: datetime, days: int | None, path: str = "/expiresInDays") -> datetime | None:
    if days is None:
        return None
    if not 1 <= days <= MAX_EXPIRES_DAYS:
        message = f"must be between 1 and {MAX_EXPIRES_DAYS} days (or null: never)"
        raise BadUserInput(f"Expiry {message}", [FieldError(path, message)])
    return now + timedelta(days=days)


@dataclass(frozen=True)
class Revoked:
    token: ApiToken
    already: bool  # it was revoked before: nothing changed


class TokenService:
    """API tokens: made, checked, listed and revoked (built by app/platform.py, reached as
    `platform.tokens`). Everything that authenticates in a process goes through its one instance,
    and so through its cache of verified tokens (`cache_seconds` 0: none)."""

    def __init__(self, cache_seconds: float = 0.0, clock: Callable[[], datetime] = utcnow) -> None:
        self.cache = TokenCache(cache_seconds, read_version)
        self.clock = clock  # what expiry is judged by: the platform's clock

    async def authenticate(self, token: str) -> ServiceContext | None:
        """The service context for a valid API token, or None (unknown, revoked, expired, malformed)."""
        if TOKEN_PATTERN.fullmatch(token) is None:
            return None
        token_hash = hash_token(token)
        cached = await self.cache.get(token_hash)
        now = self.clock()
        if cached is not None and (cached.service.expires_at is None or cached.service.expires_at > now):
            if _stale(cached.last_used_at, now):
                cached.last_used_at = now
                await self._mark_used(cached.token_id, now)
            return cached.service
        generation = self.cache.generation()
        rows = await ApiToken.filter(valid_at(now), token_hash=token_hash).values(
            "id", "user_id", "user__plan", "last_used_at", "expires_at"
        )
        if not rows:
            return None
        row = rows[0]
        last_used_at = row["last_used_at"]
        if _stale(last_used_at, now):
            last_used_at = now
            await self._mark_used(row["id"], now)
        service = ServiceContext(
            user_id=row["user_id"], plan=Plan(row["user__plan"]), token_id=row["id"], expires_at=row["expires_at"]
        )
        self.cache.put(token_hash, lambda until: CachedToken(service, row["id"], last_used_at, until), generation)
        return service

    async def vouched(self, token_ids: Sequence[str]) -> set[str]:
        """Those of these tokens the cache has verified working within its bound (no query but the
        auth version's, when its check is due)."""
        return await self.cache.working(token_ids, self.clock())

    async def still_valid(self, token_ids: Sequence[str]) -> set[str]:
        """Which of these tokens still authenticate, read from the database (one query): the cache
        keeps the answer, their use is recorded as `authenticate` records it."""
        now = self.clock()
        generation = self.cache.generation()
        valid = set()
        for token in await working_tokens(token_ids, now):
            valid.add(token.id)
            if _stale(token.last_used_at, now):
                await self._mark_used(token.id, now)
            self.cache.put_working(token.id, token.user_id, token.expires_at, generation)
        if gone := set(token_ids) - valid:
            self.cache.forget(gone)  # what the database says now, the cache says too
        return valid

    async def _mark_used(self, token_id: str, now: datetime) -> None:
        """Sets last_used_at unless another request (in any process) did within the last minute.
        Bookkeeping only: a failure here never fails the request that authenticated."""
        stale = Q(last_used_at=None) | Q(last_used_at__lte=now - LAST_USED_GRANULARITY)
        try:
            await ApiToken.filter(stale, id=token_id).update(last_used_at=now)
        except Exception as exc:  # noqa: BLE001 - the request goes on; the next one tries again
            log.warning("could not record a token's last use (%s)", type(exc).__name__)

    async def create_token(
        self, user_id: str, name: str, expires_in_days: int | None, via: str
    ) -> tuple[ApiToken, str]:
        """A new token for the user; returns its row and the token, which is never available again."""
        name = token_name(name)
        now = utcnow()
        expires_at = expiry(now, expires_in_days)
        token = new_token()
        async with in_transaction():
            # The user's row locked: concurrent creations queue here, so the count holds.
            if await User.filter(id=user_id).select_for_update().first() is None:
                raise NotFound("No such user")
            if await ApiToken.filter(valid_at(now), user_id=user_id).count() >= MAX_VALID_TOKENS:
                message = f"already has {MAX_VALID_TOKENS} valid tokens, the most allowed: revoke one first"
                raise BadUserInput(f"The account {message}", [FieldError("/name", message)])
            row = await ApiToken.create(user_id=user_id, token_hash=hash_token(token), name=name, expires_at=expires_at)
            await audit.record_for(
                user_id,
                "token.create",
                "api_token",
                row.id,
                {"name": name, "expiresAt": _iso(expires_at), "via": via},
            )
        return row, token

    async def list_tokens(self, user_id: str, valid_only: bool = True) -> list[ApiToken]:
        """The user's tokens, newest first: the valid ones, or all of them (revoked and expired too)."""
        query = ApiToken.filter(user_id=user_id)
        if valid_only:
            query = query.filter(valid_at(utcnow()))
        return await query.order_by("-created_at", "-id")

    async def revoke_token(
        self, token_id: str, via: str, owner_id: str | None = None, keep_last: bool = False
    ) -> Revoked:
        """Revokes a token. With `owner_id`, only that user's token, and a revoked one is unknown (the
        self-service form); with `keep_last`, the owner's last valid token is refused."""
        if not is_id(token_id):
            raise NotFound("No such token")
        query = ApiToken.filter(id=token_id)
        if owner_id is not None:
            query = query.filter(user_id=owner_id, revoked_at=None)
        found = await query.first()
        if found is None:
            raise NotFound("No such token")
        async with in_transaction() as conn:
            await User.filter(id=found.user_id).select_for_update().first()
            token = await ApiToken.get_or_none(id=token_id)
            if token is None:
                raise NotFound("No such token")
            if token.revoked_at is not None:
                if owner_id is not None:
                    raise NotFound("No such token")
                return Revoked(token, already=True)
            now = utcnow()
            if keep_last and is_valid(token, now):
                others = await ApiToken.filter(valid_at(now), user_id=token.user_id).exclude(id=token.id).count()
                if others == 0:
                    message = "is your last valid token: create another one first, or you could not sign in again"
                    raise BadUserInput(f"This token {message}", [FieldError("/id", message)])
            token.revoked_at = now
            await token.save(update_fields=["revoked_at"])
            await raise_version(conn)
            await audit.record_for(
                token.user_id, "token.revoke", "api_token", token.id, {"name": token.name, "via": via}
            )
        self.cache.forget([token.id])
        return Revoked(token, already=False)


def _stale(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or last_used_at <= now - LAST_USED_GRANULARITY


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
