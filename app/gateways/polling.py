"""Long polling: each connected bot's updates fetched with getUpdates, for a deployment that
Telegram cannot post to (TELEGRAM_DELIVERY=polling, or `auto` without an HTTPS PUBLIC_URL).

Exactly one process of the deployment polls a bot at a time: the holder of the lease
`poll:{bot_id}` (app/gateways/leases.py, by the database's clock). Every process that runs
(`serve`, its `--workers`, an ingest-only `serve`, a `worker`) takes part: every few seconds each
renews the leases it holds, looks for connected bots whose token Telegram has not refused, and
takes the leases nobody holds. One that stops gives its leases back, so another takes over at
once; one that dies is taken over once its leases run out (LEASE_SECONDS). A poller whose lease
was not renewed in time stops before the lease can run out, so two processes never poll one bot
(Telegram would end one's poll with a 409).

A poller, on taking a bot, deletes its webhook (registration.apply, which records the delivery as
POLLING; drop_pending_updates is never set: Telegram keeps what was not fetched, so switching
loses nothing), then long-polls getUpdates with the allowed_updates its owner's running installs
need (asked again when they change, within a few seconds). Each update goes through the same
intake as a webhook's (app/gateways/intake.py): dedup on (gateway, update_id), group commit,
rejected_updates for what can never be stored. The offset that confirms an update to Telegram
moves past it only after its commit: a crash before then means Telegram hands it out again, and
the inbox stores it once.

Failures: the network and 5xx back off (doubling, capped) and try again; a 429 waits its
retry_after; a 409 (a webhook set elsewhere, or another program polling the same token) shows the
bot as POLLING_CONFLICT and is tried again with the backoff. The poller does not fight: it
deletes the webhook when it takes the bot, never in answer to a 409, so a webhook that another
deployment sets stays until its owner removes it (then polling resumes by itself and the bot is
ACTIVE again). A 401 makes the bot TOKEN_REJECTED (GatewayService.token_rejected), and polling
of it stops until its owner reconnects it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from app.db_errors import describe, is_unavailable
from app.errors import GatewayUnreachable, PlugboardError
from app.gateways import leases
from app.gateways.inbox_writer import InboxWriter, reject
from app.gateways.intake import NotAnUpdate, take_update
from app.gateways.models import Delivery, Gateway, GatewayStatus, GatewayType, token_place
from app.gateways.sealed import unreadable
from app.gateways.status import set_status
from app.gateways.telegram import (
    CALL_TIMEOUT_SECONDS,
    FloodControl,
    PollingConflict,
    TelegramApi,
    TelegramRefused,
    TokenRejected,
    UnreadableUpdates,
)
from app.ids import new_id
from app.inputs import is_int
from app.secrets_at_rest import SecretUnreadable, open_sealed
from app.supervision import Heartbeat, cancel, spawn, start_supervised

if TYPE_CHECKING:
    from app.gateways.registration import Registration
    from app.gateways.service import GatewayService

log = logging.getLogger(__name__)

LEASE_PREFIX = "poll:"
MAX_BATCH = 100  # getUpdates' largest limit
MISSED_BEATS = 3
QUIET_LOG_SECONDS = 30.0

WEBHOOK_CONFLICT = (
    "Telegram will not hand this bot's updates to this deployment: a webhook is set for the bot "
    "elsewhere (another deployment, or a program using the same token). This deployment does not "
    "delete it again, so as not to fight over the bot: stop the other deployment or delete its "
    "webhook, and polling here resumes by itself."
)
POLLER_CONFLICT = (
    "Another program is polling this bot with the same token (another deployment, or a script), "
    "and Telegram hands each update to one poller only. Stop the other one: polling here resumes "
    "by itself."
)
# A getUpdates answer Telegram writes with update_id first in each update: found without parsing.
_FIRST_UPDATE_ID = re.compile(
    rb'^\s*\{\s*"ok"\s*:\s*true\s*,\s*"result"\s*:\s*\[\s*\{\s*"update_id"\s*:\s*(-?\d{1,30})\s*[,}]'
)


@dataclass
class Timing:
    """A poller's rhythm. Each process renews its leases and looks for bots every
    `cycle_seconds`; a lease lasts `lease_seconds` (a dead process's bots are taken over within
    about that); failures back off from `first_backoff` doubling up to `max_backoff`. Storing a
    batch that takes longer than `store_seconds` counts as stuck (the inbox answers or fails well
    within it, even with the database gone)."""

    cycle_seconds: float = 3.0
    lease_seconds: float = 10.0
    first_backoff: float = 1.0
    max_backoff: float = 60.0
    store_seconds: float = 60.0


@dataclass(frozen=True)
class PolledBot:
    gateway_id: str
    owner_id: str
    bot_id: int | None
    token: str
    status: GatewayStatus
    reason: str | None
    delivery: Delivery

    @property
    def lease(self) -> str:
        """The lease of polling this bot: Telegram hands a bot's updates to one poller, whichever
        gateway the bot is connected through (a reconnect by another owner makes a new one)."""
        return lease_name(self.bot_id, self.gateway_id)


def lease_name(bot_id: int | None, gateway_id: str) -> str:
    return f"{LEASE_PREFIX}{bot_id}" if bot_id is not None else f"{LEASE_PREFIX}gateway-{gateway_id}"


class Backoff:
    def __init__(self, timing: Timing) -> None:
        self.timing = timing
        self.failures = 0

    def next(self) -> float:
        self.failures += 1
        doublings = min(self.failures - 1, 40)  # a conflict may last for days: 2**n stays a float
        return min(self.timing.first_backoff * 2**doublings, self.timing.max_backoff)

    def reset(self) -> None:
        self.failures = 0


def update_body(update: Any) -> bytes:
    """One update of a getUpdates answer as the JSON a webhook would have brought: the same value
    (keys in Telegram's order, every number and string as it was), compact. An unpaired surrogate
    cannot be UTF-8: the text keeps it as the escape Telegram sent, which the intake then finds."""
    try:
        return json.dumps(update, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(update, separators=(",", ":")).encode("ascii")


class BotPoller:
    """Polls one bot, while this process holds its lease."""

    def __init__(self, polling: Polling, bot: PolledBot) -> None:
        self.polling = polling
        self.gateway_id = bot.gateway_id
        self.token = bot.token
        self.bot = bot
        self.allowed_updates: list[str] = []
        self.offset: int | None = None
        self.due = float("inf")  # time.monotonic() by which the current step must have ended
        self._asked_changed = asyncio.Event()
        self._lease_end: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None

    # -- what the process's cycle tells it ---------------------------------------------------

    def start(self, allowed_updates: list[str], renewed_at: float) -> None:
        self.allowed_updates = allowed_updates
        self.task = spawn(self.run(), f"poll-{self.gateway_id}")
        self.renewed(renewed_at)

    def renewed(self, at: float) -> None:
        """The lease was renewed by a statement sent at `at` (time.monotonic()): it lasts at least
        lease_seconds from then, by any clock. Polling stops a cycle before that unless renewed again."""
        if self._lease_end is not None:
            self._lease_end.cancel()
        timing = self.polling.timing
        end = at + timing.lease_seconds - timing.cycle_seconds
        loop = asyncio.get_running_loop()
        self._lease_end = loop.call_at(loop.time() + (end - time.monotonic()), self._lease_ran_out)

    def _lease_ran_out(self) -> None:
        log.warning("polling of gateway %s stops: its lease could not be renewed in time", self.gateway_id)
        self.stop()

    def want(self, allowed_updates: list[str], bot: PolledBot) -> None:
        """What the bot's owner's installs need now; a poll in flight that asked for something else
        is ended and asked again."""
        self.bot = bot
        if allowed_updates != self.allowed_updates:
            self.allowed_updates = allowed_updates
            self._asked_changed.set()

    def stop(self) -> None:
        if self._lease_end is not None:
            self._lease_end.cancel()
            self._lease_end = None
        if self.task is not None:
            self.task.cancel()

    @property
    def done(self) -> bool:
        return self.task is None or self.task.done()

    def stuck(self, now: float) -> bool:
        return not self.done and now > self.due

    def _expect(self, seconds: float) -> None:
        self.due = time.monotonic() + seconds + self.polling.grace_seconds

    async def _sleep(self, seconds: float) -> None:
        self._expect(seconds)
        await asyncio.sleep(seconds)

    # -- polling -------------------------------------------------------------------------------

    async def run(self) -> None:
        if not await self._switch():
            return
        backoff, store_backoff = Backoff(self.polling.timing), Backoff(self.polling.timing)
        limit = MAX_BATCH
        while True:
            try:
                updates = await self._poll(limit)
            except TokenRejected:
                await self._token_rejected()
                return
            except PollingConflict as exc:
                await self._conflict(exc)
                await self._sleep(backoff.next())
                continue
            except FloodControl as exc:
                log.warning("gateway %s: %s", self.gateway_id, exc.message)
                await self._sleep(exc.retry_after)
                continue
            except UnreadableUpdates as exc:
                if limit > 1:  # one at a time, to find the one that cannot be read
                    log.warning("gateway %s: %s; fetching one update at a time", self.gateway_id, exc.message)
                    limit = 1
                    continue
                if not await self._reject_unreadable(exc.body):
                    log.warning("gateway %s: %s", self.gateway_id, exc.message)
                    await self._sleep(backoff.next())
                continue
            except (GatewayUnreachable, TelegramRefused) as exc:
                delay = backoff.next()
                log.warning("gateway %s: %s; polling again in %g s", self.gateway_id, exc.message, delay)
                await self._sleep(delay)
                continue
            if updates is None:  # the owner's installs changed: asked again at once
                continue
            backoff.reset()
            limit = MAX_BATCH
            await self._working()
            if not updates:
                continue
            if await self._store(updates):
                store_backoff.reset()
            else:  # fetched again after a pause that grows while the database stays away
                await self._sleep(store_backoff.next())

    async def _switch(self) -> bool:
        """Makes sure no webhook is set (once, as the bot is taken), and the bot is recorded as
        polled; whether to poll (False: Telegram refused the token)."""
        backoff = Backoff(self.polling.timing)
        while True:
            self._expect(2 * CALL_TIMEOUT_SECONDS + self.polling.timing.store_seconds)
            try:
                if self.bot.delivery != Delivery.POLLING:  # registered for webhooks until now: moved over
                    if await self.polling.registration.apply(self.gateway_id, force=True):
                        log.info("gateway %s moved to polling: its webhook is deleted", self.gateway_id)
                else:
                    await self.polling.api.delete_webhook(self.token)
                return True
            except TokenRejected:
                if self.bot.delivery == Delivery.POLLING:  # registration.apply told the token helper itself
                    await self._token_rejected()
                return False
            except Exception as exc:
                delay = backoff.next()
                reason = exc.message if isinstance(exc, PlugboardError) else describe(exc)
                log.warning(
                    "gateway %s: deleting its webhook failed: %s; trying again in %g s", self.gateway_id, reason, delay
                )
                await self._sleep(delay)

    async def _poll(self, limit: int) -> list[Any] | None:
        """One getUpdates; None when it was ended because the owner's installs changed."""
        self._asked_changed.clear()
        timeout = self.polling.poll_timeout
        self._expect(timeout + CALL_TIMEOUT_SECONDS)
        call = asyncio.ensure_future(
            self.polling.api.get_updates(self.token, self.offset, timeout, self.allowed_updates, limit)
        )
        changed = asyncio.ensure_future(self._asked_changed.wait())
        try:
            done, _ = await asyncio.wait((call, changed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            if not call.done():
                call.cancel()  # the updates it would have brought stay at Telegram: not confirmed
                await asyncio.gather(call, return_exceptions=True)
        if call in done:
            return call.result()
        return None

    async def _store(self, updates: list[Any]) -> bool:
        """Takes a batch into the inbox; the offset moves past every update up to the first that
        could not be stored now (those after it come again, and are found stored). Whether all were."""
        self._expect(self.polling.timing.store_seconds)
        batch = [(update["update_id"], update_body(update)) for update in updates if _has_id(update)]
        if len(batch) < len(updates):
            log.warning(
                "gateway %s: %d updates without an update_id skipped", self.gateway_id, len(updates) - len(batch)
            )
            if not batch:
                return False  # nothing to confirm them with: asked again after a pause
        outcomes = await asyncio.gather(*(self._take(body) for _, body in batch), return_exceptions=True)
        failed = [
            update_id
            for (update_id, _), outcome in zip(batch, outcomes, strict=True)
            if isinstance(outcome, BaseException)
        ]
        if failed:
            error = next(o for o in outcomes if isinstance(o, BaseException))
            self.offset = min(failed)
            self.polling.store_failed(self.gateway_id, len(failed), error)
            return False
        if batch:
            self.offset = max(update_id for update_id, _ in batch) + 1
        return True

    async def _take(self, body: bytes) -> None:
        polling = self.polling
        try:
            await take_update(polling.inbox, polling.handled_update_types, self.gateway_id, body)
        except NotAnUpdate as exc:
            update_id = json.loads(body)["update_id"]
            await reject(self.gateway_id, str(update_id), f"not an update Plugboard can read: {exc}", body)

    async def _reject_unreadable(self, body: bytes) -> bool:
        """An answer of one update that cannot be read (nested deeper than any update): kept in
        rejected_updates and confirmed, so that polling goes on. False when its update_id cannot
        be found either."""
        match = _FIRST_UPDATE_ID.match(body)
        if match is None:
            return False
        update_id = int(match.group(1))
        self._expect(self.polling.timing.store_seconds)
        try:
            await reject(
                self.gateway_id, str(update_id), "getUpdates answered with an update that cannot be read", body
            )
        except Exception as exc:
            self.polling.store_failed(self.gateway_id, 1, exc)
            return False
        self.offset = update_id + 1
        return True

    # -- status --------------------------------------------------------------------------------

    async def _working(self) -> None:
        """A poll worked: a bot shown as failing to deliver is ACTIVE again."""
        if self.bot.status not in (GatewayStatus.POLLING_CONFLICT, GatewayStatus.WEBHOOK_FAILING):
            return
        await self._set_status(GatewayStatus.ACTIVE, None)

    async def _conflict(self, exc: PollingConflict) -> None:
        reason = WEBHOOK_CONFLICT if exc.webhook_set else POLLER_CONFLICT
        if (self.bot.status, self.bot.reason) != (GatewayStatus.POLLING_CONFLICT, reason):
            log.warning("gateway %s: %s", self.gateway_id, exc.message)
            await self._set_status(GatewayStatus.POLLING_CONFLICT, reason)

    async def _set_status(self, status: GatewayStatus, reason: str | None) -> None:
        gateways = self.polling.gateways
        try:
            await set_status(
                self.gateway_id, status, reason, gateways_changed=gateways.gateways_changed, token=self.token
            )
        except Exception as exc:  # shown with the next poll's outcome
            log.warning(
                "gateway %s: its status could not be set to %s: %s", self.gateway_id, status.value, describe(exc)
            )
            return
        self.bot = replace(self.bot, status=status, reason=reason)

    async def _token_rejected(self) -> None:
        log.warning("gateway %s: Telegram refused the bot's token; polling of it stops", self.gateway_id)
        self._expect(self.polling.timing.store_seconds)
        try:
            await self.polling.gateways.token_rejected(self.gateway_id, self.token)
        except Exception as exc:  # the next cycle starts a poller again, which hears the 401 again
            log.warning("gateway %s: TOKEN_REJECTED could not be recorded: %s", self.gateway_id, describe(exc))


def _has_id(update: Any) -> bool:
    return isinstance(update, dict) and is_int(update.get("update_id"))


class Polling:
    """The pollers of one process, and the cycle that renews and takes their leases."""

    def __init__(
        self,
        api: TelegramApi,
        writer: InboxWriter,
        handled_update_types: frozenset[str],
        registration: Registration,
        gateways: GatewayService,
        poll_timeout: int,
        heartbeat_grace_seconds: float,
        timing: Timing | None = None,
    ) -> None:
        self.api = api
        self.inbox = writer
        self.handled_update_types = handled_update_types
        self.registration = registration
        self.gateways = gateways
        self.poll_timeout = poll_timeout
        self.grace_seconds = heartbeat_grace_seconds
        # Who holds a lease, as the leases table shows it: this process (its pid, for operators).
        self.holder = f"{os.getpid()}-{new_id()}"
        self.heartbeat = Heartbeat("telegram-polling", 0.0)
        self._wake = asyncio.Event()
        self.timing = timing or Timing()
        self.cycles = 0  # cycles that worked
        self.pollers: dict[str, BotPoller] = {}
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        self._logged_at = float("-inf")
        self._store_logged_at = float("-inf")

    @property
    def timing(self) -> Timing:
        return self._timing

    @timing.setter
    def timing(self, timing: Timing) -> None:
        """A new rhythm, from the next cycle (which starts at once)."""
        self._timing = timing
        self.heartbeat.stale_after = MISSED_BEATS * timing.cycle_seconds + self.grace_seconds
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        self.heartbeat.beat()
        self._task = start_supervised("telegram-polling", self._run)

    def wake(self) -> None:
        """Looks for bots to poll at once (one was connected), not at the next cycle."""
        self._wake.set()

    async def stop(self) -> None:
        """Stops polling and gives the leases back: another process takes the bots over at once."""
        if self._task is not None:
            await cancel([self._task])
            self._task = None
        pollers, self.pollers = list(self.pollers.values()), {}
        for poller in pollers:
            poller.stop()
        await cancel([p.task for p in pollers if p.task is not None])
        for poller in pollers:
            try:
                await leases.release(poller.bot.lease, self.holder)
            except Exception as exc:
                log.warning("polling leases not given back (they run out by themselves): %s", describe(exc))
                break

    # -- the cycle -----------------------------------------------------------------------------

    async def _run(self) -> None:
        log.info("polling: this process polls bots whose lease it holds (getUpdates, timeout %d s)", self.poll_timeout)
        while True:
            self._wake.clear()  # a wake during the cycle makes the next one start at once
            try:
                await self.cycle()
            except Exception as exc:
                self._cycle_failed(exc)
            else:
                self._cycle_worked()
            try:
                await asyncio.wait_for(self._wake.wait(), self.timing.cycle_seconds)
            except TimeoutError:
                pass

    async def cycle(self) -> None:
        """Renews the leases held, takes free ones of bots to poll, lets go of bots not to poll."""
        bots = await self._bots_to_poll()
        for name, poller in list(self.pollers.items()):
            bot = bots.get(name)
            if bot is None or (bot.gateway_id, bot.token) != (poller.gateway_id, poller.token) or poller.done:
                await self._let_go(poller, release=True)  # disconnected, refused, reconnected, or ended
        held = await leases.holders(LEASE_PREFIX)
        owners: dict[str, list[str]] = {}
        taken: dict[str, float] = {}
        for name, bot in bots.items():
            if held.get(name, self.holder) != self.holder:  # another process polls it
                if name in self.pollers:  # since this one's lease ran out
                    await self._let_go(self.pollers[name], release=False)
                continue
            sent = time.monotonic()
            if not await leases.take(name, self.holder, self.timing.lease_seconds):
                if name in self.pollers:
                    await self._let_go(self.pollers[name], release=False)
                continue
            taken[name] = sent
            if bot.owner_id not in owners:
                owners[bot.owner_id] = await self.registration.allowed_updates_for(bot.owner_id)
        for name, sent in taken.items():
            bot = bots[name]
            existing = self.pollers.get(name)
            if existing is None:
                poller = self.pollers[name] = BotPoller(self, bot)
                poller.start(owners[bot.owner_id], sent)
                log.info("polling gateway %s in this process", bot.gateway_id)
            else:
                existing.renewed(sent)
                existing.want(owners[bot.owner_id], bot)

    async def _bots_to_poll(self) -> dict[str, PolledBot]:
        """The connected bots whose token Telegram has not refused, by their lease's name."""
        rows = (
            await Gateway.filter(is_active=True, type=GatewayType.TELEGRAM_BOT)
            .exclude(status=GatewayStatus.TOKEN_REJECTED)
            .order_by("created_at")
            .values("id", "owner_id", "bot_id", "bot_token", "status", "status_reason", "delivery")
        )
        bots = []
        for row in rows:
            try:
                token = open_sealed(row["bot_token"], token_place(row["id"]))
            except SecretUnreadable as exc:
                await unreadable(row["id"], exc, gateways_changed=self.gateways.gateways_changed)
                continue  # not polled: the gateway shows why
            bots.append(
                PolledBot(
                    row["id"],
                    row["owner_id"],
                    row["bot_id"],
                    token,
                    GatewayStatus(row["status"]),
                    row["status_reason"],
                    Delivery(row["delivery"]),
                )
            )
        return {bot.lease: bot for bot in bots}  # a bot has one connected gateway (the newest, were there two)

    async def _let_go(self, poller: BotPoller, release: bool) -> None:
        name = poller.bot.lease
        if self.pollers.get(name) is poller:
            del self.pollers[name]
        poller.stop()
        if poller.task is not None:
            await cancel([poller.task])
        if release:
            await leases.release(name, self.holder)
        log.info("gateway %s is no longer polled by this process", poller.gateway_id)

    def _cycle_worked(self) -> None:
        now = time.monotonic()
        stuck = [p.gateway_id for p in self.pollers.values() if p.stuck(now)]
        if stuck:
            if now - self._logged_at >= QUIET_LOG_SECONDS:
                self._logged_at = now
                log.warning("polling is stuck for gateways %s", ", ".join(sorted(stuck)))
        else:
            self.heartbeat.beat()
        self.cycles += 1
        if self._failures:
            log.warning("polling's lease renewals work again, after %d failures", self._failures)
            self._failures, self._logged_at = 0, float("-inf")

    def _cycle_failed(self, exc: Exception) -> None:
        self._failures += 1
        now = time.monotonic()
        if now - self._logged_at < QUIET_LOG_SECONDS:
            return
        self._logged_at = now
        if is_unavailable(exc):
            log.warning(
                "polling's lease renewal failed (%d times), database unavailable: %s", self._failures, describe(exc)
            )
        else:
            log.error("polling's lease renewal failed (%d times)", self._failures, exc_info=exc)

    def store_failed(self, gateway_id: str, count: int, error: BaseException) -> None:
        """Updates not stored now: not confirmed to Telegram either, so fetched again after the backoff."""
        now = time.monotonic()
        if now - self._store_logged_at < QUIET_LOG_SECONDS:
            return
        self._store_logged_at = now
        log.warning(
            "gateway %s: %d polled updates not stored, fetched again later: %s", gateway_id, count, describe(error)
        )
