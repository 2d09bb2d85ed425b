"""tortoise's asyncpg client, made safe for connections that die in the middle of a transaction.

tortoise's pooled transaction puts its connection in the task's context (a ContextVar) when it
begins and takes it out when it ends, but only once it has given the connection back to the pool:
- when `BEGIN` fails (the connection broke as it was taken), the connection is neither given back
  nor taken out of the context;
- when giving it back fails (asyncpg resets a connection on release, and a dead one raises), it is
  not taken out of the context either.
Either way the task keeps a transaction on a connection that is gone or back in the pool. Its next
`in_transaction()` nests a savepoint on it, and asyncpg refuses every statement of it ("cannot call
Connection.transaction(): connection has been released back to the pool"). A long-lived task (the
run recorder) never recovers: every commit of it fails, as if the database were down, for ever.

Here a transaction's connection leaves the task's context first, whatever happens, and is then
given back; one that fails its reset is terminated by asyncpg and never reused.

Used as the tortoise engine `app.postgres` (see app/db.py).
"""

from __future__ import annotations

import logging
from typing import Any

from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionalDBClient, TransactionContext, TransactionContextPooled
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError

log = logging.getLogger(__name__)


class ReleasingTransactionContext(TransactionContextPooled):
    async def __aenter__(self) -> TransactionalDBClient:
        await self.ensure_connection()
        pool = self.client._parent._pool
        assert pool is not None  # ensure_connection made it
        self.client._connection = await pool.acquire()
        self.token = get_connections().set(self.connection_name, self.client)
        try:
            await self.client.begin()
        except BaseException:
            await self._end()
            raise
        return self.client

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            if not self.client._finalized:
                if exc_type:
                    if exc_type is not TransactionManagementError:  # it already failed: no rollback
                        await self.client.rollback()
                else:
                    await self.client.commit()
        finally:
            await self._end()

    async def _end(self) -> None:
        """Out of the task's context first, then back to the pool."""
        get_connections().reset(self.token)
        pool = self.client._parent._pool
        if pool is None:  # closed meanwhile: its connections went with it
            return
        try:
            await pool.release(self.client._connection)
        except Exception as exc:  # asyncpg terminated it: a new one takes its place
            log.debug("a transaction's connection could not be reset and was closed: %s", type(exc).__name__)


class ReleasingAsyncpgClient(AsyncpgDBClient):
    def _in_transaction(self) -> TransactionContext:
        return ReleasingTransactionContext(TransactionWrapper(self), self._pool_init_lock)


client_class = ReleasingAsyncpgClient
