"""Plugins that exist only for tests: they record, fail, stall or wait on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.gateways.models import GatewayType
from app.plugins.contract import (
    EventType,
    ExecutionContext,
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


# --- runs on demand (runPlugin, runChain) ------------------------------------------------------

GREET_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 64},
        "punctuation": {"type": "string", "maxLength": 3, "default": "!"},
    },
    "required": ["name"],
}
GREETING_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {"greeting": {"type": "string"}, "name": {"type": "string"}},
    "required": ["greeting", "name"],
}


@dataclass(frozen=True)
class StepCall:
    """One run of a StepPlugin: for whom, on what input (defaults filled in), and its ctx.execution."""

    user_id: str
    input: dict[str, Any]
    execution: ExecutionContext


def greet(input: dict[str, Any], ctx: PluginContext) -> Any:
    return {"greeting": f"Hello, {input['name']}{input.get('punctuation', '')}", "name": input["name"]}


class StepPlugin(PluginHandler):
    """A plugin that runs on demand, needing no bot: answers `answer(input, ctx)` (a greeting by
    default), records each run (`calls`), counts its runs in its storage ("runs"), raises while
    `failing`, reports `tokens` as its tokens used when set, and waits on `release` when `stalls`."""

    def __init__(
        self,
        slug: str = "greeter",
        input_schema: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = GREETING_OUTPUT,
        config_schema: dict[str, Any] | None = None,
        answer: Callable[[dict[str, Any], PluginContext], Any] = greet,
    ) -> None:
        self.definition = PluginDefinition(  # type: ignore[misc]
            slug=slug,
            name=slug.title(),
            description=f"Test plugin {slug}, run on demand",
            config_schema=config_schema or {},
            input_schema=input_schema or GREET_INPUT,
            output_schema=output_schema,
        )
        self.answer = answer
        self.calls: list[StepCall] = []
        self.failing = False
        self.tokens: int | None = None
        self.stalls = False
        self.release = asyncio.Event()

    async def run(self, input: dict[str, Any], ctx: PluginContext) -> Any:
        self.calls.append(StepCall(ctx.user_id, input, ctx.execution))
        await ctx.storage.increment("runs")
        if self.tokens is not None:
            ctx.metrics.tokens_used = self.tokens
        if self.stalls:
            await self.release.wait()
        if self.failing:
            raise RuntimeError(f"{self.slug} failed on purpose")
        return self.answer(input, ctx)
