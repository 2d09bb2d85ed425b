"""Whether API tokens still work, asked by many sockets at once: what the process's token cache
verified within its bound (app/accounts/token_cache.py: a revocation reaches it at once, and no
later than that bound), else one query for the tokens asked about together (app/batched_loads.py),
each answer read after it was asked for.

A shared live summary (app/graphql/websocket.py) goes to sockets of several tokens: each socket
asks for its own token before it sends, as an execution of its own would have before each push.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence

from app.accounts.tokens import TokenService
from app.batched_loads import BatchedLoads


class TokenChecks:
    """Built by app/platform.py, reached as `platform.token_checks`."""

    def __init__(self, tokens: TokenService) -> None:
        self.tokens = tokens
        self._checks: BatchedLoads[str, bool] = BatchedLoads(self._check)

    async def valid(self, token_id: str) -> bool:
        """Whether the token authenticates now (not revoked, not expired, its user not deleted)."""
        return (await self.valid_each([token_id]))[token_id]

    async def valid_each(self, token_ids: Collection[str]) -> dict[str, bool]:
        """`valid` of each of these tokens; those the cache does not vouch for are read in the same
        batch as the checks asked for meanwhile."""
        asked = list(token_ids)
        vouched = await self.tokens.vouched(asked)
        unknown = [token_id for token_id in asked if token_id not in vouched]
        answers = dict.fromkeys(vouched, True)
        if unknown:
            read = await asyncio.gather(*(self._checks.load(token_id) for token_id in unknown))
            answers.update(zip(unknown, read, strict=True))
        return {token_id: answers[token_id] for token_id in asked}

    async def _check(self, token_ids: Sequence[str]) -> dict[str, bool]:
        valid = await self.tokens.still_valid(token_ids)
        return {token_id: token_id in valid for token_id in token_ids}
