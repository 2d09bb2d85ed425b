"""Tokens this process has verified, kept for a few seconds so that a request with a token costs
about what one without does.

A cached token stops working in this process:
- at once on a sessions-ended notice over the pub/sub (app/accounts/sessions.py: a revocation or a
  user's deletion, from the API or the CLI, in any process), and on the pub/sub's resync after an
  outage (every token is forgotten, since a notice may have been missed);
- within `VERSION_SECONDS` when the auth version moved (app/accounts/auth_version.py): the notice
  was lost, or never sent (a CLI on memory://), or the change was a plan change;
- within `seconds` (TOKEN_CACHE_SECONDS) in any case, as each entry expires on its own: a token
  revoked in SQL behind every process's back;
- at its `expires_at`, which is checked at each use.

Besides tokens by their hash (a request's), it keeps which token ids were verified working (by a
request, or by a batch check of the sockets that share a live execution, app/accounts/token_checks.py):
a shared push asks for ids, never for tokens. They are forgotten, and expire, alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from app.accounts.context import ServiceContext

E = TypeVar("E")
VERSION_SECONDS = 1.0
MAX_ENTRIES = 10_000


@dataclass(slots=True)
class CachedToken:
    service: ServiceContext
    token_id: str
    last_used_at: datetime | None
    until: float  # by the cache's clock


@dataclass(slots=True)
class VerifiedToken:
    user_id: str
    expires_at: datetime | None
    until: float  # by the cache's clock


class TokenCache:
    """Verified tokens by their hash; `seconds` 0 keeps none."""

    def __init__(
        self,
        seconds: float,
        read_version: Callable[[], Awaitable[int]],
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self.clock = clock  # tests move it on
        self._read_version = read_version
        self._entries: dict[str, CachedToken] = {}
        self._working: dict[str, VerifiedToken] = {}  # by token id
        self._generation = 0  # raised by every forgetting: an answer read before one is not kept
        self._version: int | None = None
        self._version_due = 0.0
        self._version_check: asyncio.Task[int] | None = None
        self.notices = 0  # notices taken: tests wait for one

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, token_hash: str) -> CachedToken | None:
        """The token's entry while it may be trusted. Reads the auth version first when a check is
        due (raises what the database raises, as a token's own read would)."""
        if self.seconds <= 0:
            return None
        now = await self._checked_now()
        entry = self._entries.get(token_hash)
        if entry is not None and now >= entry.until:
            del self._entries[token_hash]
            return None
        return entry

    async def working(self, token_ids: Iterable[str], at: datetime) -> set[str]:
        """Those of `token_ids` verified working within the bound and not expired `at`. Reads the
        auth version first when a check is due, as `get` does."""
        if self.seconds <= 0 or not self._working:
            return set()
        now = await self._checked_now()
        found = set()
        for token_id in token_ids:
            known = self._working.get(token_id)
            if known is None:
                continue
            if now >= known.until:
                del self._working[token_id]
            elif known.expires_at is None or known.expires_at > at:
                found.add(token_id)
        return found

    async def _checked_now(self) -> float:
        now = self.clock()
        if now >= self._version_due:
            await self._check_version()
            now = self.clock()
        return now

    def generation(self) -> int:
        """Taken before reading a token from the database, and handed back to `put`."""
        return self._generation

    def put(self, token_hash: str, entry_of: Callable[[float], CachedToken], generation: int) -> None:
        """Keeps a token read at `generation`, unless something was forgotten since (its answer
        may predate a revocation)."""
        if not self._keeps(generation):
            return
        entry = _bounded_put(self._entries, token_hash, entry_of(self.clock() + self.seconds), self.max_entries)
        working = VerifiedToken(entry.service.user_id, entry.service.expires_at, entry.until)
        _bounded_put(self._working, entry.token_id, working, self.max_entries)

    def put_working(self, token_id: str, user_id: str, expires_at: datetime | None, generation: int) -> None:
        """Keeps that a token read at `generation` works (unless something was forgotten since)."""
        if self._keeps(generation):
            working = VerifiedToken(user_id, expires_at, self.clock() + self.seconds)
            _bounded_put(self._working, token_id, working, self.max_entries)

    def _keeps(self, generation: int) -> bool:
        """Whether an answer read at `generation` may be kept."""
        return self.seconds > 0 and generation == self._generation and self._version is not None

    def forget(self, token_ids: Iterable[str] = (), user_ids: Iterable[str] = ()) -> None:
        tokens, users = set(token_ids), set(user_ids)
        self._generation += 1
        for key, entry in list(self._entries.items()):
            if entry.token_id in tokens or entry.service.user_id in users:
                del self._entries[key]
        for token_id, working in list(self._working.items()):
            if token_id in tokens or working.user_id in users:
                del self._working[token_id]

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._working.clear()

    def noticed(self, token_ids: Iterable[str], user_ids: Iterable[str]) -> None:
        """A sessions-ended notice (from this process or another)."""
        self.forget(token_ids, user_ids)
        self.notices += 1

    async def _check_version(self) -> None:
        """One read of the version for every request that finds the check due meanwhile."""
        if self._version_check is None:
            self._version_check = asyncio.ensure_future(self._read_version())
            self._version_check.add_done_callback(self._version_read)
        await asyncio.shield(self._version_check)

    def _version_read(self, check: asyncio.Task[int]) -> None:
        self._version_check = None
        if check.cancelled() or check.exception() is not None:
            return  # the requests waiting on it raise it; the next request tries again
        version = check.result()
        if version != self._version:
            self.clear()
            self._version = version
        self._version_due = self.clock() + VERSION_SECONDS


def _bounded_put(entries: dict[str, E], key: str, value: E, max_entries: int) -> E:
    """Sets `entries[key]`, first dropping the oldest entry when a new key would pass `max_entries`."""
    if key not in entries and len(entries) >= max_entries:
        del entries[next(iter(entries))]
    entries[key] = value
    return value
