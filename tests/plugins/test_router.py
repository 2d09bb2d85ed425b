"""Many installs on one event (app/plugins/router.py): they run in the lane's task while none
suspends, and each keeps its own timeout, failure, context and exactly-once record.

The first tests run the router on a stand-in routing cache, with no database, so that the installs'
order is the test's; the last ones go through the webhook, the dispatcher and the recorder."""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import replace
from typing import Any

import pytest

from app.accounts.models import Plan
from app.gateways.inbox_writer import InboxUnavailable
from app.gateways.models import GatewayType
from app.plugins.contract import (
    EventType,
    PluginContext,
    PluginEvent,
    PluginHandler,
    RunTrigger,
    TelegramMessageEvent,
)
from app.plugins.executor import Executor
from app.plugins.models import InstallStatus, RunOutcome, RunRecord
from app.plugins.registry import PluginRegistry
from app.plugins.router import EventRouter
from app.plugins.routing import InstallRoute, OwnerRoutes
from app.plugins.runs import Origin, Run
from app.plugins.storage import InstallStorage
from tests.support.plugins import FailingPlugin, RecordingPlugin, StallingPlugin, definition
from tests.support.runtime import connect_bot, deliver, install, reload, stored, wait_until_processed
from tests.support.telegram_updates import message_update

TIMEOUT = 0.3
GATEWAY = "gateway-1"
OWNER = "owner-1"
SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("SEEN", default="unset")


async def suspend() -> None:
    """Suspends once: until the loop's next turn."""
    ready = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(ready.set_result, None)
    await ready


class Counter(PluginHandler):
    """Counts each message in its storage; with `suspends`, after a suspension first."""

    events = frozenset({EventType.TELEGRAM_MESSAGE})

    def __init__(self, slug: str, suspends: bool = False) -> None:
        self.definition = definition(slug)  # type: ignore[misc]
        self.suspends = suspends
        self.contexts: list[PluginContext] = []
        self.tasks: list[asyncio.Task[Any] | None] = []
        self.saw: list[str] = []

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        self.contexts.append(ctx)
        self.saw.append(SEEN.get())
        SEEN.set(self.definition.slug)  # a context variable set by one plugin, seen by no other
        self.tasks.append(asyncio.current_task())
        if self.suspends:
            await suspend()
            self.tasks.append(asyncio.current_task())
        await ctx.storage.increment("n")
        return None


class Hanging(PluginHandler):
    events = frozenset({EventType.TELEGRAM_MESSAGE})

    def __init__(self, slug: str = "hanging") -> None:
        self.definition = definition(slug)  # type: ignore[misc]
        self.cut = False
        self.waiting = asyncio.Event()
        self.ended = asyncio.Event()

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        await ctx.storage.increment("n")
        try:
            self.waiting.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cut = True
            raise
        finally:
            self.ended.set()


class Raising(PluginHandler):
    events = frozenset({EventType.TELEGRAM_MESSAGE})

    def __init__(self, slug: str, error: Exception, suspends: bool = False) -> None:
        self.definition = definition(slug)  # type: ignore[misc]
        self.error = error
        self.suspends = suspends

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        await ctx.storage.increment("n")
        if self.suspends:
            await suspend()
        raise self.error


class OwnTimeout(PluginHandler):
    """Bounds its own wait with asyncio.timeout, which cancels the task it runs in."""

    events = frozenset({EventType.TELEGRAM_MESSAGE})
    definition = definition("own-timeout")

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        try:
            async with asyncio.timeout(0):
                await asyncio.Event().wait()
        except TimeoutError:
            await ctx.storage.increment("n")
        return None


class Routes:
    """A routing cache that knows one owner, whose installs come in the test's order."""

    def __init__(self, handlers: list[PluginHandler]) -> None:
        installs = tuple(
            InstallRoute(f"install-{n}", OWNER, f"plugin-{n}", h.slug, Plan.PRO, {}, InstallStatus.ACTIVE, None)
            for n, h in enumerate(handlers)
        )
        self.routes = OwnerRoutes(OWNER, 1, frozenset({GATEWAY}), frozenset({GatewayType.TELEGRAM_BOT}), installs)

    async def for_gateway(self, gateway_id: str) -> OwnerRoutes | None:
        return self.routes if gateway_id == GATEWAY else None


class Echo:
    """A stand-in for the outbound HTTPS client: answers every request at once."""

    async def request(self, method: str, url: str, *, content: bytes = b"", headers: Any = None) -> Any:
        return {"url": url}


class Calling(PluginHandler):
    """Calls out `calls` times through ctx.http, then hangs when told to."""

    events = frozenset({EventType.TELEGRAM_MESSAGE})

    def __init__(self, slug: str, calls: int, hangs: bool = False) -> None:
        self.definition = definition(slug)  # type: ignore[misc]
        self.calls = calls
        self.hangs = hangs

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        for _ in range(self.calls):
            await ctx.http.post("https://example.com/hook")
        if self.hangs:
            await asyncio.Event().wait()
        return None


async def route(handlers: list[PluginHandler], key: str = "update:1") -> list[Run]:
    registry = PluginRegistry(handlers)
    # No plugin here calls a gateway; ctx.http is a stand-in.
    executor = Executor(registry, None, TIMEOUT, http=Echo())  # type: ignore[arg-type]
    router = EventRouter(registry, executor, Routes(handlers))  # type: ignore[arg-type]
    origin = Origin(key=key, trigger=RunTrigger.EVENT, event_type=EventType.TELEGRAM_MESSAGE, chat_id=-1, replay=False)
    event = TelegramMessageEvent(GATEWAY, 1, None)  # type: ignore[arg-type]  # no plugin here reads the message
    return await router.gateway_event(GATEWAY, event, origin, {})


def counted(run: Run) -> dict[str, int]:
    assert run.ctx is not None and isinstance(run.ctx.storage, InstallStorage)
    return dict(run.ctx.storage._increments)


def ten_with(odd: PluginHandler, at: int) -> list[PluginHandler]:
    """Ten installs: `odd` at `at`, and counters around it, every other one suspending."""
    handlers: list[PluginHandler] = [Counter(f"counter-{n}", suspends=n % 2 == 1) for n in range(9)]
    handlers.insert(at, odd)
    return handlers


@pytest.mark.parametrize("at", [0, 4, 9])
async def test_of_ten_installs_one_that_hangs_is_cut_at_its_timeout_and_the_others_finish(at):
    hanging = Hanging()
    runs = await route(ten_with(hanging, at))

    assert [run.install.slug for run in runs] == [h.slug for h in ten_with(Hanging(), at)]
    cut = runs[at]
    assert (cut.outcome, cut.error, cut.ctx) == (RunOutcome.FAILED, f"Timed out after {TIMEOUT:g} s", None)
    assert hanging.cut
    others = runs[:at] + runs[at + 1 :]
    assert [run.outcome for run in others] == [RunOutcome.SUCCEEDED] * 9
    assert [counted(run) for run in others] == [{"n": 1}] * 9


async def test_several_that_hang_are_each_cut_and_the_lane_is_not():
    first, second = Hanging("hanging-1"), Hanging("hanging-2")
    handlers: list[PluginHandler] = [first, Counter("counter-1", suspends=True), second, Counter("counter-2")]
    runs = await route(handlers)

    assert [run.outcome for run in runs] == [
        RunOutcome.FAILED,
        RunOutcome.SUCCEEDED,
        RunOutcome.FAILED,
        RunOutcome.SUCCEEDED,
    ]
    assert first.cut and second.cut
    assert asyncio.current_task().cancelling() == 0


@pytest.mark.parametrize("suspends", [False, True])
@pytest.mark.parametrize("at", [0, 5, 9])
async def test_of_ten_installs_one_that_raises_fails_alone(at, suspends):
    runs = await route(ten_with(Raising("raising", RuntimeError("boom"), suspends=suspends), at))

    assert (runs[at].outcome, runs[at].error, runs[at].ctx) == (RunOutcome.FAILED, "RuntimeError: boom", None)
    others = runs[:at] + runs[at + 1 :]
    assert [run.outcome for run in others] == [RunOutcome.SUCCEEDED] * 9
    assert [counted(run) for run in others] == [{"n": 1}] * 9


async def test_a_plugins_own_timeout_cuts_only_its_own_wait():
    runs = await route(ten_with(OwnTimeout(), 3))

    assert [run.outcome for run in runs] == [RunOutcome.SUCCEEDED] * 10
    assert [counted(run) for run in runs] == [{"n": 1}] * 10
    assert asyncio.current_task().cancelling() == 0


async def test_each_run_has_a_context_of_its_own():
    handlers = ten_with(Counter("counter-odd", suspends=True), 2)
    runs = await route(handlers)

    contexts = [c for h in handlers for c in h.contexts]
    assert len(contexts) == 10 and [run.ctx for run in runs] == contexts
    for part in ("storage", "http", "metrics", "gateways", "log", "execution", "writes", "topics", "config"):
        assert len({id(getattr(ctx, part)) for ctx in contexts}) == 10, part
    assert {ctx.install_id for ctx in contexts} == {f"install-{n}" for n in range(10)}
    for ctx in contexts:
        assert (ctx.user_id, ctx.execution.service.user_id, ctx.execution.trigger) == (OWNER, OWNER, RunTrigger.EVENT)
        assert ctx.execution.service.plan == Plan.PRO
    # Context variables: none set by one plugin reaches another, or the lane.
    assert [saw for h in handlers for saw in h.saw] == ["unset"] * 10
    assert SEEN.get() == "unset"


async def test_each_run_counts_its_own_calls_also_when_it_is_cut():
    handlers: list[PluginHandler] = [
        Calling("two-then-hangs", 2, hangs=True),
        Counter("counter"),
        Calling("one", 1),
        Calling("none", 0),
        Calling("three-then-hangs", 3, hangs=True),
    ]
    runs = await route(handlers)

    assert [(run.outcome, run.api_calls) for run in runs] == [
        (RunOutcome.FAILED, 2),
        (RunOutcome.SUCCEEDED, 0),
        (RunOutcome.SUCCEEDED, 1),
        (RunOutcome.SUCCEEDED, 0),
        (RunOutcome.FAILED, 3),
    ]


async def test_a_run_that_suspends_finishes_in_the_task_it_started_in():
    handlers = ten_with(Counter("counter-odd", suspends=True), 0)
    await route(handlers)

    for handler in handlers:
        tasks = handler.tasks
        assert len(set(tasks)) == 1, handler.slug
    lane = asyncio.current_task()
    assert handlers[0].tasks[0] is lane  # the first to suspend stays in the lane's task
    assert all(h.tasks[0] is not lane for h in handlers[1:])  # the rest moved on


async def test_our_own_failure_fails_the_event_and_cuts_the_other_runs():
    hanging = Hanging()
    handlers: list[PluginHandler] = [hanging, Raising("ours", InboxUnavailable("the database is gone"))]

    with pytest.raises(InboxUnavailable):
        await route(handlers)
    assert hanging.cut


async def test_a_cancelled_lane_cuts_its_runs():
    first, second = Hanging("hanging-1"), Hanging("hanging-2")
    lane = asyncio.ensure_future(route([first, second]))
    await first.waiting.wait()
    await second.waiting.wait()
    lane.cancel()
    with pytest.raises(asyncio.CancelledError):
        await lane
    await first.ended.wait()
    await second.ended.wait()
    assert first.cut and second.cut


# --- through the webhook, the dispatcher and the recorder (SQLite and PostgreSQL) ---------------


async def test_ten_installs_on_one_event_are_each_recorded_with_their_own_outcome(make_app, telegram):
    counters = [RecordingPlugin(f"recorder-{n}") for n in range(4)]  # each reads its storage: it suspends
    counters += [Counter(f"counter-{n}") for n in range(4)]
    stalling, failing = StallingPlugin(), FailingPlugin()
    live = await make_app(handlers=[*counters, stalling, failing], plugin_timeout_seconds=0.5)
    owner = await live.create_user("ten@example.com", "business")
    bot = await connect_bot(live, owner, telegram)
    installs = {h.slug: await install(live, owner, h.slug) for h in [*counters, stalling, failing]}

    await deliver(live, bot, message_update(1, chat_id=-5))
    await wait_until_processed(live)

    with live.db():
        records = {r.install_id: r for r in await RunRecord.filter(event_key=f"update:{bot.gateway_id}:1")}
    assert len(records) == 10
    assert (records[installs["stalling"].id].success, records[installs["stalling"].id].error) == (
        False,
        "Timed out after 0.5 s",
    )
    assert records[installs["failing"].id].error == "RuntimeError: boom"
    for handler in counters:
        assert records[installs[handler.slug].id].success, handler.slug
    for n in range(4):
        assert await stored(live, installs[f"recorder-{n}"].id, "seen:telegram.message") == 1
        assert await stored(live, installs[f"counter-{n}"].id, "n") == 1
    assert await stored(live, installs["stalling"].id, "finished") is None
    assert await stored(live, installs["failing"].id, "attempted") is None
    for installed in installs.values():
        assert (await reload(live, installed)).run_count == 1


async def test_ten_installs_count_once_when_their_event_runs_again(make_app, telegram):
    """An event claimed again (its lease ran out while it ran elsewhere, or after a crash) runs its
    installs again: only the first record of each counts, and a replay runs none."""
    handlers: list[PluginHandler] = [Counter(f"counter-{n}", suspends=n % 3 == 0) for n in range(10)]
    live = await make_app(handlers=handlers)
    owner = await live.create_user("again@example.com", "business")
    bot = await connect_bot(live, owner, telegram)
    installs = [await install(live, owner, h.slug) for h in handlers]
    router, recorder = live.platform.router, live.platform.runs
    origin = Origin(
        key=f"update:{bot.gateway_id}:77",
        trigger=RunTrigger.EVENT,
        event_type=EventType.TELEGRAM_MESSAGE,
        chat_id=-7,
        replay=False,
    )
    event = TelegramMessageEvent(bot.gateway_id, 77, None)  # the counters never read it

    with live.db():
        first = await router.gateway_event(bot.gateway_id, event, origin, {})
        elsewhere = await router.gateway_event(bot.gateway_id, event, origin, {})  # another process, at once
        assert len(first) == len(elsewhere) == 10
        assert len(await recorder.record(first)) == 10
        assert await recorder.record(elsewhere) == []  # recorded already: neither written nor counted
        assert await router.gateway_event(bot.gateway_id, event, replace(origin, replay=True), {}) == []
        assert await RunRecord.filter(event_key=origin.key).count() == 10
    for installed in installs:
        assert await stored(live, installed.id, "n") == 1
        assert (await reload(live, installed)).run_count == 1
