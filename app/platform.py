"""The running parts of one Plugboard instance, wired together, started and stopped as one."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime

from app import secrets_at_rest
from app.accounts.service import AccountService
from app.accounts.sessions import OpenSockets
from app.accounts.token_checks import TokenChecks
from app.accounts.tokens import TokenService
from app.analytics.live_summaries import LiveSummaries
from app.analytics.service import AnalyticsService
from app.audit.service import AuditService
from app.clock import utcnow
from app.db import Database
from app.gateways.inbox_writer import InboxWriter
from app.gateways.models import Delivery
from app.gateways.monitor import GatewayMonitor
from app.gateways.polling import Polling
from app.gateways.registration import Registration
from app.gateways.secrets import GatewaySecrets
from app.gateways.sendqueue import SendQueue
from app.gateways.service import GatewayService
from app.gateways.telegram import TelegramApi
from app.live import LiveUpdates
from app.live_slots import SubscriptionSlots
from app.outbound import OutboundHttp
from app.plugins import gateway_needs
from app.plugins.breaker import Breaker
from app.plugins.catalog import CatalogService
from app.plugins.contract import PluginHandler
from app.plugins.dispatcher import Dispatcher
from app.plugins.executor import Executor
from app.plugins.handlers import BUILTIN_HANDLERS
from app.plugins.registry import PluginRegistry, needed_update_types
from app.plugins.router import EventRouter
from app.plugins.routing import RoutingCache
from app.plugins.run_groups import recording_groups
from app.plugins.run_history import RunHistory
from app.plugins.runs import RunRecorder
from app.plugins.scheduler import Scheduler
from app.plugins.service import PluginService
from app.plugins.steps import StepRunner
from app.pubsub import create_broadcast
from app.settings import Settings
from app.supervision import Heartbeat, cancel, start_supervised

log = logging.getLogger(__name__)

INBOX_CHANNEL = "plugboard:inbox"  # "events were stored": wakes the dispatchers of other processes


class Platform:
    def __init__(self, settings: Settings, handlers: Iterable[PluginHandler] | None = None) -> None:
        self.settings = settings
        if settings.secret_keys:  # else the keyring installed already (python -m app, tests)
            secrets_at_rest.configure(settings.secret_keys)
        self.clock: Callable[[], datetime] = utcnow  # tests set it to fix "today"
        self.db = Database(settings.database_url)
        self.live = LiveUpdates(create_broadcast(settings.broadcast_url))
        # Live subscriptions per user, and the reads their summaries may run at once (app/live_slots.py).
        self.subscriptions = SubscriptionSlots.of(settings.max_subscriptions_per_user, settings.broadcast_url)
        self.summary_reads = asyncio.Semaphore(settings.subscription_read_concurrency)
        # The one instance this process authenticates with (its cache hears the sessions' notices), and
        # websockets signed in with a token, closed when it is revoked or expires (app/accounts/sessions.py).
        self.tokens = TokenService(settings.token_cache_seconds, clock=lambda: self.clock())
        self.sockets = OpenSockets(self.live.broadcast, self.tokens.cache)
        self.registry = PluginRegistry(handlers if handlers is not None else [h() for h in BUILTIN_HANDLERS])
        self.update_types = needed_update_types(self.registry)
        self.telegram = TelegramApi(settings.telegram_api_url)
        self.inbox = InboxWriter()
        if self.shares_pubsub:  # tell the workers of other processes that events are stored
            self.inbox.on_commit.append(lambda: self.live.notify(INBOX_CHANNEL))
        self._tasks: list[asyncio.Task[None]] = []
        self.gateway_secrets = GatewaySecrets(settings.gateway_cache_seconds)
        # What each bot asks Telegram for, and how: the one place that decides and applies it.
        self.registration = Registration(
            self.telegram,
            settings,
            update_types_for=functools.partial(gateway_needs.update_types_for, self.registry),
        )
        self.gateways = GatewayService(
            self.telegram,
            self.inbox,
            SendQueue.of(settings),
            self.gateway_secrets,
            self.registration,
            gateways_changed=gateway_needs.gateways_changed,
        )
        self.monitor = GatewayMonitor(
            self.gateways, self.registration, settings.gateway_health_seconds, settings.heartbeat_grace_seconds
        )
        # Long polling (app/gateways/polling.py), when the deployment polls: in every process, one per bot.
        self.polling = Polling(
            self.telegram,
            self.inbox,
            frozenset(self.update_types),
            self.registration,
            self.gateways,
            settings.telegram_poll_timeout_seconds,
            settings.heartbeat_grace_seconds,
        )
        self.executor = Executor(
            self.registry,
            self.gateways,
            settings.plugin_timeout_seconds,
            notify=self.live.notify,
            http=OutboundHttp(settings.outbound_policy()),
            clock=lambda: self.clock(),  # read at each call: tests set the platform's clock
        )
        self.router = EventRouter(self.registry, self.executor, RoutingCache())
        breaker = Breaker(
            settings.breaker_failures, settings.breaker_backoff_seconds, settings.breaker_max_backoff_seconds
        )
        self.runs = RunRecorder(breaker, notify=self.executor.announce)
        self.accounts = AccountService()
        self.catalog = CatalogService(self.registry)
        self.audit = AuditService()
        self.analytics = AnalyticsService(clock=lambda: self.clock())
        # Live summaries, each read once per change for every socket that shows it (app/analytics/live_summaries.py).
        self.live_summaries = LiveSummaries(self.analytics, self.live, self.summary_reads)
        # Whether the tokens of sockets about to be sent a shared summary still work, many in one query.
        self.token_checks = TokenChecks(self.tokens)
        self.plugins = PluginService(settings, self.executor, installs_changed=self.registration.follow)
        self.run_history = RunHistory(settings, self.executor, self.runs)
        self.steps = StepRunner(settings, self.executor, self.runs, self.gateways.sends.limits)
        self.dispatcher = Dispatcher(
            self.router,
            self.inbox,
            recording_groups(self.runs),
            concurrency=settings.inbox_concurrency,
            lease_seconds=settings.inbox_lease_seconds,
            poll_seconds=settings.inbox_poll_seconds,
            retention_hours=settings.inbox_retention_hours,
            run_history_days=settings.run_history_days,
            database_answers=self.db.ping,
            run_timeout_seconds=settings.plugin_timeout_seconds,
            heartbeat_grace_seconds=settings.heartbeat_grace_seconds,
        )
        self.scheduler = Scheduler(
            self.registry,
            self.router,
            self.runs,
            settings.scheduler_tick_seconds,
            run_timeout_seconds=settings.plugin_timeout_seconds,
            heartbeat_grace_seconds=settings.heartbeat_grace_seconds,
        )

    def today(self) -> date:
        """Today's UTC date, by the platform's clock."""
        return self.clock().astimezone(UTC).date()

    async def start(self) -> None:
        await self.db.open()
        await self.live.start()  # never waits for Redis: it connects, and reconnects, by itself
        if self.subscriptions.shared is not None:
            self._tasks.append(start_supervised("subscription-slots", self.subscriptions.renew_forever))
        with self.db.bound():  # background tasks inherit the database context
            self._tasks.append(start_supervised("sessions-ended", self.sockets.listen_forever))
            self._tasks.append(start_supervised("sessions-recheck", self.sockets.recheck_forever))
            # A catalog upgrade may change what bots must ask Telegram for (a plugin's events, installs
            # sent to NEEDS_CONFIG): the monitor's start-up round, below, repairs their registrations.
            await self.catalog.sync()
            self.inbox.start()
            if self.settings.inbox_concurrency > 0:
                self.dispatcher.start()
                if self.shares_pubsub:
                    self._tasks.append(start_supervised("inbox-wake", self._wake_on_stored_events))
            if self.settings.scheduler_enabled:
                self.scheduler.start()
            if self.settings.inbox_concurrency > 0:  # a worker (it calls Telegram already); the lease makes it one
                await self.monitor.start()
            if self.registration.delivery == Delivery.POLLING:  # ingest: every process, leases make it one per bot
                self.polling.start()

    def heartbeats(self) -> list[Heartbeat]:
        """The heartbeats of the background loops this process runs (none it does not run)."""
        loops = (self.dispatcher, self.scheduler, self.monitor, self.polling)
        return [loop.heartbeat for loop in loops if loop.running]

    @property
    def shares_pubsub(self) -> bool:
        """Whether live notices reach other processes (Redis), not just this one (memory://)."""
        return not self.settings.broadcast_url.startswith("memory")

    async def _wake_on_stored_events(self) -> None:
        """Events another process stored are claimed at once, not at the next poll."""
        async with self.live.watch(INBOX_CHANNEL) as changes:
            while True:
                await changes.wait()
                self.dispatcher.wake()

    async def stop(self) -> None:
        await cancel(self._tasks)
        self._tasks = []
        with self.db.bound():
            await self.monitor.stop()
            await self.polling.stop()  # before the inbox: its pollers store into it
            await self.scheduler.stop()
            await self.dispatcher.stop()
            await self.inbox.stop()
        await self.live.stop()
        await self.subscriptions.close()
        await self.gateways.close()  # the Bot API sessions, and Redis for the send limits
        await self.db.close()
