"""Channel Analytics: messages, users, joins and leaves per chat, day and hour, in its own tables.

The counting rules are in app/analytics/counting.py; the README states them.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from app.analytics import store
from app.analytics.buckets import bucket_of, local_midnight, today_in, zone_named
from app.analytics.counting import Tally, tally_member_change, tally_received, tally_sent
from app.analytics.figures import FIGURES_SCHEMA, figures
from app.analytics.ranges import MAX_DAYS, parse_date, window_of
from app.analytics.service import install_settings
from app.gateways.models import GatewayType
from app.plugins.contract import (
    BatchedWrite,
    ChatMemberEvent,
    EventType,
    MessageSentEvent,
    PluginContext,
    PluginDefinition,
    PluginEvent,
    PluginHandler,
    Schedule,
    ScheduleTriggerEvent,
    TelegramMessageEvent,
    chat_id_schema,
)

SLUG = "analytics"


class AnalyticsHandler(PluginHandler):
    definition = PluginDefinition(
        slug=SLUG,
        name="Channel Analytics",
        description="Track message and user statistics for your Telegram channels",
        version="1.2.0",
        required_gateways=(GatewayType.TELEGRAM_BOT,),
        category="analytics",
        icon="chart-bar",
        config_schema={
            "type": "object",
            "properties": {
                "trackUsers": {
                    "type": "boolean",
                    "title": "Track users",
                    "description": "Count distinct users who post and show the top posters (their Telegram ids are "
                    "stored per day, with the first name and username each last posted with)",
                    "default": True,
                },
                "retention": {
                    "type": "integer",
                    "title": "Retention (days)",
                    "description": "How long daily and hourly figures and seen users are kept; totals stay",
                    "minimum": 1,
                    "maximum": 3650,
                    "default": 30,
                },
                "timezone": {
                    "type": "string",
                    "title": "Time zone",
                    "description": "The IANA time zone days and hours are counted in (e.g. Asia/Kolkata); "
                    "changing it re-reads history too",
                    "format": "time-zone",
                    "maxLength": 64,
                    "default": "UTC",
                },
            },
        },
        input_schema={
            "type": "object",
            "properties": {
                "chatId": chat_id_schema("One chat's figures (e.g. -1001234567890); leave it out for every chat"),
                "days": {
                    "type": "integer",
                    "title": "Days",
                    "description": "The window: the last this many days, today included (default 7; "
                    "leave it out with from and to)",
                    "minimum": 1,
                    "maximum": MAX_DAYS,
                },
                "from": {
                    "type": "string",
                    "format": "date",
                    "title": "From",
                    "description": "The window's first day (YYYY-MM-DD, in the install's time zone), with to",
                },
                "to": {
                    "type": "string",
                    "format": "date",
                    "title": "To",
                    "description": "The window's last day (YYYY-MM-DD, in the install's time zone), with from",
                },
            },
        },
        output_schema=FIGURES_SCHEMA,
    )
    events = frozenset({EventType.TELEGRAM_MESSAGE, EventType.TELEGRAM_MESSAGE_SENT, EventType.TELEGRAM_CHAT_MEMBER})
    schedules = (Schedule("prune", every_seconds=3600),)
    typed_events = False

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        tally: Tally | None = None
        if isinstance(event, TelegramMessageEvent):
            tally = tally_received(event.light, track_users=bool(ctx.config.get("trackUsers", True)))
        elif isinstance(event, MessageSentEvent):
            tally = tally_sent(event.light)
        elif isinstance(event, ChatMemberEvent):
            tally = tally_member_change(event.light)
        elif isinstance(event, ScheduleTriggerEvent) and event.schedule == "prune":
            return self._prune(event, ctx)
        if tally is None:
            return None
        ctx.write(BatchedWrite(store.record_many, (ctx.install_id, tally)))
        ctx.notify()  # the summaries of every chat
        ctx.notify(f"chat:{tally.chat_id}")  # and those of this chat only (app/graphql/analytics.py)
        return None  # no output: the run's record has its chat, and an output per message would slow the event path

    async def run(self, input: dict[str, Any], ctx: PluginContext) -> Any:
        """The figures `Query.analytics` answers, for the next step of a chain."""
        zone_name, retention = install_settings(ctx.config)
        now = ctx.now()
        start, end = (_date(input.get(name), name) for name in ("from", "to"))
        window = window_of(input.get("days"), start, end, today_in(zone_named(zone_name), now), retention)
        return await figures(ctx.install_id, input.get("chatId"), zone_name, now, window)

    def _prune(self, event: ScheduleTriggerEvent, ctx: PluginContext) -> dict[str, str]:
        zone_name, retention = install_settings(ctx.config)
        zone = zone_named(zone_name)
        keep_from = today_in(zone, event.fired_at) - timedelta(days=retention - 1)
        keep_bucket = bucket_of(local_midnight(keep_from, zone))
        install_id = ctx.install_id

        async def prune() -> None:
            await store.prune(install_id, keep_bucket)

        ctx.write(prune)
        ctx.notify()
        ctx.notify("pruned")  # every chat's summaries may have lost days
        return {"keptFrom": keep_from.isoformat()}


def _date(value: Any, name: str) -> date | None:
    return parse_date(value, name) if isinstance(value, str) else None
