"""Channel Analytics: counts messages and distinct users per chat."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from app.gateways.models import GatewayType
from app.plugins.contract import (
    TELEGRAM_MESSAGE,
    TELEGRAM_MESSAGE_SENT,
    MessageSentEvent,
    PluginContext,
    PluginDefinition,
    PluginEvent,
    PluginHandler,
    Schedule,
    ScheduleTriggerEvent,
    TelegramMessageEvent,
)


def day_of(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d")


class AnalyticsHandler(PluginHandler):
    definition = PluginDefinition(
        slug="analytics",
        name="Channel Analytics",
        description="Track message and user statistics for your Telegram channels",
        version="1.0.0",
        required_gateways=(GatewayType.TELEGRAM_BOT,),
        category="analytics",
        icon="chart-bar",
        config_schema={
            "type": "object",
            "properties": {
                "trackUsers": {
                    "type": "boolean",
                    "title": "Track users",
                    "description": "Count distinct users who post",
                    "default": True,
                },
                "retention": {
                    "type": "number",
                    "title": "Retention (days)",
                    "description": "How long daily figures are kept",
                    "minimum": 1,
                    "maximum": 3650,
                    "default": 30,
                },
            },
        },
        output_schema={
            "type": "object",
            "properties": {"chatId": {"type": "integer"}, "messages": {"type": "integer"}},
        },
    )
    events = frozenset({TELEGRAM_MESSAGE, TELEGRAM_MESSAGE_SENT})
    schedules = (Schedule("prune", every_seconds=3600),)

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        if isinstance(event, (TelegramMessageEvent, MessageSentEvent)):
            return await self._count(event, ctx)
        if isinstance(event, ScheduleTriggerEvent) and event.schedule == "prune":
            return await self._prune(event, ctx)
        return None

    async def _count(self, event: TelegramMessageEvent | MessageSentEvent, ctx: PluginContext) -> dict[str, int]:
        message = event.message
        chat = message.chat.id
        day = day_of(message.date)
        direction = "sent" if isinstance(event, MessageSentEvent) else "received"
        sender = message.from_user
        track_user = ctx.config.get("trackUsers", True) and sender is not None and direction == "received"
        user_key = f"chat:{chat}:user:{sender.id}" if track_user and sender is not None else None
        keys = [f"chat:{chat}:messages", f"chat:{chat}:days", "chats", *([user_key] if user_key else [])]
        seen = await ctx.storage.get_many(keys)

        await ctx.storage.increment(f"chat:{chat}:messages")
        await ctx.storage.increment(f"chat:{chat}:{direction}")
        await ctx.storage.increment(f"chat:{chat}:day:{day}")
        days = seen[f"chat:{chat}:days"] or []
        if day not in days:
            await ctx.storage.set(f"chat:{chat}:days", sorted([*days, day]))
        if user_key and seen[user_key] is None:
            await ctx.storage.set(user_key, 1)
            await ctx.storage.increment(f"chat:{chat}:users")
        chats = seen["chats"] or []
        if chat not in chats:
            await ctx.storage.set("chats", sorted([*chats, chat]))
        return {"chatId": chat, "messages": (seen[f"chat:{chat}:messages"] or 0) + 1}

    async def _prune(self, event: ScheduleTriggerEvent, ctx: PluginContext) -> dict[str, int]:
        keep_from = day_of(event.fired_at - timedelta(days=float(ctx.config.get("retention", 30))))
        pruned = 0
        for chat in await ctx.storage.get("chats", []):
            days = await ctx.storage.get(f"chat:{chat}:days", [])
            old = [d for d in days if d < keep_from]
            for day in old:
                await ctx.storage.delete(f"chat:{chat}:day:{day}")
            if old:
                await ctx.storage.set(f"chat:{chat}:days", [d for d in days if d >= keep_from])
                pruned += len(old)
        return {"prunedDays": pruned}
