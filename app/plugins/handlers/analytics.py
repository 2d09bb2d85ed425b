"""Channel Analytics: messages, users, joins and leaves per chat, day and hour, in its own tables.

The counting rules are in app/analytics/counting.py; the README states them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, timedelta
from typing import Any

from app.analytics import closed_days, member_counts, member_store, store
from app.analytics.buckets import bucket_of, local_midnight, today_in, zone_named
from app.analytics.counting import Tally, chat_title, tally_member_change, tally_received, tally_sent
from app.analytics.figures import FIGURES_SCHEMA, figures
from app.analytics.member_rules import BotChange, bot_change, removed_reason
from app.analytics.member_store import ChatState, DueChat
from app.analytics.models import ALL_CHATS
from app.analytics.ranges import MAX_DAYS, parse_date, window_of
from app.analytics.service import install_settings
from app.gateways.models import GatewayType
from app.plugins.contract import (
    BatchedWrite,
    ChatMemberEvent,
    EventType,
    MessageSentEvent,
    MyChatMemberEvent,
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
    events = frozenset(
        {
            EventType.TELEGRAM_MESSAGE,
            EventType.TELEGRAM_MESSAGE_SENT,
            EventType.TELEGRAM_CHAT_MEMBER,
            EventType.TELEGRAM_MY_CHAT_MEMBER,
        }
    )
    # `members` reads each chat's member count once a UTC day: hourly, the chats not read yet that
    # day. `member-reads` reads, within a minute, the chats an event asked a reading for (first
    # seen, the bot added or promoted), and runs only for the installs that have one.
    schedules = (
        Schedule("prune", every_seconds=3600),
        Schedule("members", every_seconds=3600),
        Schedule("member-reads", every_seconds=60, pending=lambda _: member_store.installs_due()),
    )
    typed_events = False

    def __init__(self) -> None:
        self.known_chats = member_store.KnownChats()

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        tally: Tally | None = None
        if isinstance(event, TelegramMessageEvent):
            tally = tally_received(event.light, track_users=bool(ctx.config.get("trackUsers", True)))
            await _first_sight(event, ctx, self.known_chats)
        elif isinstance(event, MessageSentEvent):
            tally = tally_sent(event.light)
        elif isinstance(event, ChatMemberEvent):
            tally = tally_member_change(event.light)
            await _bot_promoted(event, ctx)
        elif isinstance(event, MyChatMemberEvent):
            return await _bot_changed(event, ctx)
        elif isinstance(event, ScheduleTriggerEvent) and event.schedule == "prune":
            return self._prune(event, ctx)
        elif isinstance(event, ScheduleTriggerEvent) and event.schedule == "members":
            return await member_counts.read_due(ctx, event.fired_at)
        elif isinstance(event, ScheduleTriggerEvent) and event.schedule == "member-reads":
            return await member_counts.read_soon(ctx)
        if tally is None or tally.chat_id == ALL_CHATS:  # 0 is no Telegram chat: it stands for all chats in the tables
            return None
        if closed_days.is_late(tally.moment, ctx.now()):
            tally = replace(tally, late=True)
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
            await closed_days.prune(install_id, zone_name, keep_from)
            await member_store.prune(install_id, local_midnight(keep_from, zone))

        ctx.write(prune)
        ctx.notify()
        ctx.notify("pruned")  # every chat's summaries may have lost days
        return {"keptFrom": keep_from.isoformat()}


def _date(value: Any, name: str) -> date | None:
    return parse_date(value, name) if isinstance(value, str) else None


async def _first_sight(event: TelegramMessageEvent, ctx: PluginContext, known: member_store.KnownChats) -> None:
    """A chat's first message asks for its member count (one query per chat and process after that)."""
    chat = event.light.chat
    if (ctx.install_id, chat.id) in known or not member_counts.counted_chat(chat.type):
        return
    if await known.check(ctx.install_id, chat.id):
        return
    member_counts.mark_due(ctx, DueChat(chat.id, event.gateway_id, chat_title(chat)))
    known.add(ctx.install_id, chat.id)  # its state is written with this run


async def _bot_promoted(event: ChatMemberEvent, ctx: PluginContext) -> None:
    """A `chat_member` update about the bot itself that promotes it asks for the chat's count."""
    update = event.light
    member = update.new_chat_member.user
    if not member.is_bot or bot_change(update) is not BotChange.PROMOTED:
        return
    gateway = await ctx.gateways.get(GatewayType.TELEGRAM_BOT)
    if gateway is None or gateway.id != event.gateway_id or gateway.bot_username != member.username:
        return
    member_counts.mark_due(ctx, DueChat(update.chat.id, event.gateway_id, chat_title(update.chat)))


async def _bot_changed(event: MyChatMemberEvent, ctx: PluginContext) -> dict[str, Any] | None:
    """The bot added or promoted: the chat's count is asked for (and the chat is readable again);
    removed: the chat is unavailable from the update's date, and no longer read."""
    update = event.light
    change = bot_change(update)
    if change is None or not member_counts.counted_chat(update.chat.type):
        return None
    chat = DueChat(update.chat.id, event.gateway_id, chat_title(update.chat))
    if change is BotChange.REMOVED:
        at = update.date.astimezone(UTC)
        member_counts.record(
            ctx, ChatState(chat.chat_id, chat.gateway_id, chat.title, at, unavailable=removed_reason(update))
        )
        return {"chatId": chat.chat_id, "bot": change.value}
    member_counts.mark_due(ctx, chat, available=True)
    return {"chatId": chat.chat_id, "bot": change.value}
