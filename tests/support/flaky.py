"""A test plugin that fails on demand, for one user at a time, and remembers every call it got."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from app.plugins.contract import (
    EventType,
    PluginContext,
    PluginEvent,
    PluginHandler,
    Schedule,
    TelegramMessageEvent,
)
from tests.support.plugins import definition


@dataclass(frozen=True)
class FlakyCall:
    user_id: str
    trigger: str
    event_type: str
    text: str | None


class FlakyPlugin(PluginHandler):
    """Raises for the users in `failing_for`, succeeds for the others; a success counts "done" in
    the install's storage (a failed run's writes must never land). Each run takes `seconds`."""

    events = frozenset({EventType.TELEGRAM_MESSAGE})

    def __init__(self, slug: str = "flaky", schedules: tuple[Schedule, ...] = ()) -> None:
        self.definition = definition(slug)  # type: ignore[misc]
        self.schedules = schedules  # type: ignore[misc]
        self.failing_for: set[str] = set()
        self.calls: list[FlakyCall] = []
        self.seconds = 0.0

    def calls_for(self, user_id: str) -> list[FlakyCall]:
        return [call for call in self.calls if call.user_id == user_id]

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        text = event.message.text if isinstance(event, TelegramMessageEvent) else None
        self.calls.append(FlakyCall(ctx.user_id, ctx.execution.trigger, event.type, text))
        if self.seconds:
            await asyncio.sleep(self.seconds)
        await ctx.storage.increment("done")
        if ctx.user_id in self.failing_for:
            raise RuntimeError(f"flaky failure on {text!r}")
        return {"text": text}
