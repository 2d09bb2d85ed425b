"""Channel Analytics' figures as one JSON object: what `Query.analytics` answers, in the shape a
run of the plugin answers (`FIGURES_SCHEMA`), so that a chain's next step can use them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from app.analytics.buckets import zone_named
from app.analytics.reader import AnalyticsReader, Window
from app.analytics.service import AnalyticsService, Period
from app.analytics.shared_reads import SharedReads, summary_span

TOP_CHATS = 20

_COUNT = {"type": "integer", "minimum": 0}
_PERIOD = {
    "type": "object",
    "description": "Counters over one window of days (AnalyticsPeriod)",
    "properties": {
        "start": {"type": "string", "format": "date"},
        "end": {"type": "string", "format": "date"},
        **dict.fromkeys(
            (
                "totalMessages",
                "messagesReceived",
                "messagesSent",
                "uniqueUsers",
                "joins",
                "leaves",
                "messagesToday",
                "messagesThisWeek",
            ),
            _COUNT,
        ),
    },
    "required": ["start", "end", "totalMessages", "uniqueUsers", "joins", "leaves"],
}
FIGURES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The figures of Query.analytics(chatId, days, from, to), dates and hours in the install's "
    "time zone (timezone)",
    "properties": {
        "chatId": {"type": ["integer", "null"], "description": "The one chat counted; null for all"},
        "days": {"type": "integer", "minimum": 1, "description": "The window's length in days"},
        "timezone": {"type": "string", "description": "The IANA time zone of every date and hour here"},
        "totalMessages": {**_COUNT, "description": "Received and sent since the plugin was installed"},
        "messagesReceived": _COUNT,
        "messagesSent": _COUNT,
        "uniqueUsers": {**_COUNT, "description": "Distinct users within the retention window"},
        "messagesToday": _COUNT,
        "messagesThisWeek": _COUNT,
        "activeUsers": {
            "type": "object",
            "properties": {"day": _COUNT, "week": _COUNT, "month": _COUNT},
            "required": ["day", "week", "month"],
        },
        "period": _PERIOD,
        "previousPeriod": _PERIOD,
        "daily": {
            "type": "array",
            "description": "One entry per day of the window, oldest first",
            "items": {
                "type": "object",
                "properties": {
                    "date": {"type": "string", "format": "date"},
                    "messages": _COUNT,
                    "users": _COUNT,
                    "joins": _COUNT,
                    "leaves": _COUNT,
                },
                "required": ["date", "messages", "users", "joins", "leaves"],
            },
        },
        "hourly": {
            "type": "array",
            "description": "Messages by hour of day (0 to 23, local) over the window",
            "items": _COUNT,
            "minItems": 24,
            "maxItems": 24,
        },
        "chats": {
            "type": "array",
            "description": f"Up to {TOP_CHATS} chats by messages in the window, busiest first",
            "items": {
                "type": "object",
                "properties": {
                    "chatId": {"type": "integer"},
                    "title": {"type": ["string", "null"]},
                    "type": {"type": ["string", "null"]},
                    "messages": _COUNT,
                    "users": _COUNT,
                    "totalMessages": _COUNT,
                },
                "required": ["chatId", "messages", "users", "totalMessages"],
            },
        },
        "text": {"type": "string", "description": "The window's figures in one sentence, for a person to read"},
    },
    "required": [
        "chatId",
        "days",
        "timezone",
        "totalMessages",
        "uniqueUsers",
        "messagesToday",
        "messagesThisWeek",
        "period",
        "previousPeriod",
        "daily",
        "hourly",
        "chats",
        "text",
    ],
}


async def figures(
    install_id: str, chat_id: int | None, zone_name: str, now: datetime, window: Window
) -> dict[str, Any]:
    """The install's figures over `window` (local days of `zone_name`) as seen at `now`, read as
    `Query.analytics` reads them."""
    zone = zone_named(zone_name)
    service = AnalyticsService(clock=lambda: now)
    today = service.today(zone)
    reader = SharedReads(AnalyticsReader(install_id, chat_id, zone=zone), summary_span(today, window))
    days = len(window)
    lifetime = await reader.lifetime()
    period = await service.period(reader, window, today)
    previous = await service.previous_period(reader, window)
    active = await service.active_users(reader, today)
    daily = await reader.daily(window)
    return {
        "chatId": chat_id,
        "days": days,
        "timezone": zone_name,
        "totalMessages": lifetime.messages,
        "messagesReceived": lifetime.received,
        "messagesSent": lifetime.sent,
        "uniqueUsers": await reader.active_since(),
        "messagesToday": (await reader.counts(Window(today, today))).messages,
        "messagesThisWeek": (await reader.counts(Window.ending(today, 7))).messages,
        "activeUsers": {"day": active.day, "week": active.week, "month": active.month},
        "period": _period(period),
        "previousPeriod": _period(previous),
        "daily": [
            {
                "date": d.day.isoformat(),
                "messages": d.counts.messages,
                "users": d.users,
                "joins": d.counts.joins,
                "leaves": d.counts.leaves,
            }
            for d in daily
        ],
        "hourly": await reader.hourly(window),
        "chats": [
            {
                "chatId": c.chat_id,
                "title": c.title,
                "type": c.type,
                "messages": c.counts.messages,
                "users": c.users,
                "totalMessages": c.total.messages,
            }
            for c in await reader.chats(window, TOP_CHATS, window.end >= today)
        ],
        "text": _sentence(window, today, period),
    }


def _period(period: Period) -> dict[str, Any]:
    return {
        "start": period.window.start.isoformat(),
        "end": period.window.end.isoformat(),
        "totalMessages": period.counts.messages,
        "messagesReceived": period.counts.received,
        "messagesSent": period.counts.sent,
        "uniqueUsers": period.unique_users,
        "joins": period.counts.joins,
        "leaves": period.counts.leaves,
        "messagesToday": period.messages_today,
        "messagesThisWeek": period.messages_this_week,
    }


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _sentence(window: Window, today: date, period: Period) -> str:
    days = len(window)
    if window.end != today:
        span = "The days"
    else:
        span = "Today" if days == 1 else f"The last {days} days"
    return (
        f"{span} ({period.window.start.isoformat()} to {period.window.end.isoformat()}): "
        f"{_plural(period.counts.messages, 'message')} from {_plural(period.unique_users, 'user')}; "
        f"{period.counts.joins} joined, {period.counts.leaves} left."
    )
