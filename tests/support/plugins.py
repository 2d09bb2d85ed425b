"""Plugins that exist only for tests: they record, fail, stall or wait on demand."""

from __future__ import annotations

import asyncio
from typing import Any

from app.gateways.models import GatewayType
from app.plugins.contract import (
    EventType,
    PluginContext,
    PluginDefinition,
    PluginEvent,
    PluginHandler,
    Schedule,
)


def definition(slug: str, **extra: Any) -> PluginDefinition:
    return PluginDefinition(
        slug=slug,
        name=slug.title(),
        description=f"Test plugin {slug}",
        required_gateways=(GatewayType.TELEGRAM_BOT,),
        **extra,
    )


class RecordingPlugin(PluginHandler):
    """Counts the events it sees in its storage, and keeps their types in memory."""

    events = frozenset({EventType.TELEGRAM_MESSAGE, EventType.TELEGRAM_CALLBACK, EventType.TELEGRAM_MESSAGE_SENT})

    def __init__(self, slug: str = "recorder", schedules: tuple[Schedule, ...] = ()) -> None:
        self.definition = definition(slug)  # type: ignore[misc]
        self.schedules = schedules  # type: ignore[misc]
        self.seen: list[PluginEvent] = []
        self.hooks: list[str] = []

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        self.seen.append(event)
        await ctx.storage.increment(f"seen:{event.type}")
        return await ctx.storage.get(f"seen:{event.type}")

    async def on_install(self, ctx: PluginContext) -> None:
        self.hooks.append("on_install")
        await ctx.storage.set("installed", True)

    async def on_uninstall(self, ctx: PluginContext) -> None:
        self.hooks.append("on_uninstall")

    async def on_enable(self, ctx: PluginContext) -> None:
        self.hooks.append("on_enable")

    async def on_disable(self, ctx: PluginContext) -> None:
        self.hooks.append("on_disable")


class FailingPlugin(PluginHandler):
    """Raises on every event until told to succeed; its storage writes must not land on failure."""

    events = frozenset({EventType.TELEGRAM_MESSAGE})

    def __init__(self, slug: str = "failing") -> None:
        self.definition = definition(slug)  # type: ignore[misc]
        self.failing = True

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        await ctx.storage.increment("attempted")
        if self.failing:
            raise RuntimeError("boom")
        return "ok"


class StallingPlugin(PluginHandler):
    """Waits on `release` before it finishes; with a short timeout it is cancelled instead."""

    events = frozenset({EventType.TELEGRAM_MESSAGE})

    def __init__(self, slug: str = "stalling", only_chat: int | None = None) -> None:
        self.definition = definition(slug)  # type: ignore[misc]
        self.only_chat = only_chat  # stalls in this chat only (every chat when None)
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        chat = getattr(getattr(event, "message", None), "chat", None)
        if self.only_chat is None or (chat is not None and chat.id == self.only_chat):
            self.started.set()
            await self.release.wait()
        await ctx.storage.increment("finished")


class BrokenInstallPlugin(PluginHandler):
    events = frozenset({EventType.TELEGRAM_MESSAGE})

    def __init__(self, slug: str = "broken-install") -> None:
        self.definition = definition(slug)  # type: ignore[misc]

    async def on_install(self, ctx: PluginContext) -> None:
        await ctx.storage.set("half-done", True)
        raise RuntimeError("cannot install")
