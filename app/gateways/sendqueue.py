"""The per-bot send queue: every Bot API call a plugin makes waits its turn under Telegram's limits.

A call reserves its time with the shared limits (app/gateways/limits.py), sleeps until then and is
made. A 429 pauses the whole bot for its `retry_after`, in every process, and the call queues again
behind the pause. A 5xx or a network failure is retried a few times after a doubling backoff; any
other refusal is final. A call never waits past its deadline (the plugin run's timeout): when the
wait it would need is longer than what is left, it fails at once with `SendRateLimited`. A wait
that is cancelled (the run timed out) gives its reservation back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from app.errors import ErrorCode, GatewayUnreachable, PlugboardError
from app.gateways.limits import Reservation, SendLimits, SendRates, Slot, bot_slot, slots_for
from app.gateways.limits_failover import create_limits
from app.gateways.telegram import FloodControl
from app.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

# 429s one call accepts before it gives up (its deadline usually comes first).
MAX_FLOOD_RETRIES = 5
# How long before its chat's turn a waiting call reserves its bot's turn (and so learns whether a
# 429 paused the bot meanwhile): time enough for that reservation not to delay the send.
TURN_LEAD = 0.1
# How long cleanup after a cancellation (giving a reservation back) may take.
CLEANUP_SECONDS = 2.0


class SendRateLimited(PlugboardError):
    """A call that would wait for its turn longer than its run has left."""

    code = ErrorCode.RATE_LIMITED


def _describe(target: str, chat_id: int | str | None) -> str:
    return f"{target}'s call to chat {chat_id}" if chat_id is not None else f"{target}'s call"


class SendQueue:
    def __init__(
        self,
        limits: SendLimits,
        rates: SendRates,
        *,
        retries: int,
        backoff_seconds: float,
        max_wait_seconds: float,
    ) -> None:
        self.limits = limits
        self.rates = rates
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        # The longest a call without a deadline may wait: a plugin run's whole timeout.
        self.max_wait_seconds = max_wait_seconds

    @classmethod
    def of(cls, settings: Settings) -> SendQueue:
        """The queue SETTINGS describe: shared through Redis when BROADCAST_URL is redis:// (through the
        database while Redis cannot be reached), else through the database."""
        return cls(
            create_limits(settings),
            SendRates.of(settings),
            retries=settings.send_retries,
            backoff_seconds=settings.send_retry_backoff_seconds,
            max_wait_seconds=settings.plugin_timeout_seconds,
        )

    async def send(
        self,
        bot_id: int,
        chat_id: int | str | None,
        call: Callable[[], Awaitable[T]],
        *,
        deadline: float | None = None,
        target: str = "the bot",
    ) -> T:
        """Makes `call` in its turn: `bot_id`'s, to `chat_id` (None: a call not aimed at a chat).
        `deadline` is a time of the running loop's clock; `target` names the bot in errors."""
        scope, slots, turn = str(bot_id), slots_for(bot_id, chat_id, self.rates), bot_slot(bot_id, self.rates)
        failures = floods = 0
        while True:
            await self._turn(
                scope, slots, turn, deadline, functools.partial(self._too_long, target, chat_id, floods=floods)
            )
            try:
                return await call()
            except FloodControl as exc:
                floods += 1
                log.warning("%s: Telegram asked to wait %s s (429)", _describe(target, chat_id), exc.retry_after)
                await self._cleanup(self.limits.pause(scope, exc.retry_after))
                if floods > MAX_FLOOD_RETRIES:
                    raise
            except GatewayUnreachable as exc:
                failures += 1
                delay = self.backoff_seconds * 2 ** (failures - 1)
                if failures > self.retries or delay > self._left(deadline):
                    raise
                log.warning("%s failed, trying again in %g s: %s", _describe(target, chat_id), delay, exc.message)
                await asyncio.sleep(delay)

    def _left(self, deadline: float | None) -> float:
        if deadline is None:
            return self.max_wait_seconds
        return max(0.0, deadline - asyncio.get_running_loop().time())

    def _too_long(
        self, target: str, chat_id: int | str | None, wait: float, left: float, floods: int
    ) -> SendRateLimited:
        why = " (Telegram asked the bot to wait)" if floods else ""
        return SendRateLimited(
            f"rate limited: {_describe(target, chat_id)} would wait {wait:.1f} s for its turn{why}, "
            f"more than the {left:.1f} s the run has left"
        )

    async def _turn(
        self,
        scope: str,
        slots: list[Slot],
        turn: Slot,
        deadline: float | None,
        too_long: Callable[[float, float], SendRateLimited],
    ) -> None:
        """Returns at the reserved moment, when the call may be made; its reservations are then used.

        The chat's turn first, with the bot's when the chat is free now. Otherwise the bot's own turn
        is reserved just before the chat's comes, for that moment: the same look tells whether a
        429 has paused the bot past it meanwhile, and then the call queues again, behind the pause."""
        loop = asyncio.get_running_loop()
        while True:
            left = self._left(deadline)
            first = await self._reserve(scope, slots, left, turn)
            if not first.granted:
                raise too_long(first.wait, left)
            if first.turn_taken:
                await self._sleep(first.wait, first)
                return
            due = loop.time() + first.wait
            await self._sleep(first.wait - TURN_LEAD, first)
            left = self._left(deadline)
            try:
                second = await self._reserve(scope, [], left, turn, not_before=max(0.0, due - loop.time()))
            except BaseException:
                await self._cleanup(self.limits.give_back(first))
                raise
            if not second.granted:
                await self._cleanup(self.limits.give_back(first))
                raise too_long(second.wait, left)
            if not second.turn_taken:  # a 429 paused the bot past this turn since it was reserved
                await self._cleanup(self.limits.give_back(first))
                continue
            await self._sleep(second.wait, second, first)
            return

    async def _sleep(self, seconds: float, *reservations: Reservation) -> None:
        """Sleeps; a cancelled sleep gives the reservations back."""
        if seconds <= 0:
            return
        try:
            await asyncio.sleep(seconds)
        except BaseException:
            for reservation in reservations:
                await self._cleanup(self.limits.give_back(reservation))
            raise

    async def _reserve(
        self, scope: str, slots: list[Slot], budget: float, turn: Slot, not_before: float = 0.0
    ) -> Reservation:
        """A reservation that a cancellation cannot leak: one made while the caller was being
        cancelled is given back before the cancellation goes on."""
        task = asyncio.ensure_future(self.limits.reserve(scope, slots, budget, turn, not_before))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLEANUP_SECONDS):
                    reservation = await task
                    await self.limits.give_back(reservation)
            task.add_done_callback(_consume)
            raise

    async def _cleanup(self, operation: Awaitable[None]) -> None:
        """Runs a short bookkeeping step to its end even when the caller is being cancelled; its
        failure is logged, never raised over the call's own outcome."""
        task = asyncio.ensure_future(operation)
        task.add_done_callback(_consume)
        try:
            async with asyncio.timeout(CLEANUP_SECONDS):
                await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLEANUP_SECONDS):
                    await task
            raise
        except Exception as exc:
            log.warning("send limits bookkeeping failed: %s", type(exc).__name__)

    async def close(self) -> None:
        await self.limits.close()


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
