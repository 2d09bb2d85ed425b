from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from app.plugins.models import UserPlugin


class AnalyticsChat(Model):
    # Lifetime totals of one chat for one analytics install; retention never prunes them.

    id = fields.BigIntField(primary_key=True)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="analytics_chats", on_delete=fields.CASCADE
    )
    install_id: str
    chat_id = fields.BigIntField()
    title = fields.CharField(max_length=255, null=True)
    type = fields.CharField(max_length=16, null=True)
    received = fields.BigIntField(default=0, db_default=0)
    sent = fields.BigIntField(default=0, db_default=0)
    joins = fields.BigIntField(default=0, db_default=0)
    leaves = fields.BigIntField(default=0, db_default=0)

    class Meta:
        table = "analytics_chats"
        unique_together = (("install", "chat_id"),)


class AnalyticsHour(Model):
    # What happened in one chat in one UTC hour of one UTC day: days and the hour-of-day profile
    # are sums of these rows, so a read costs O(days), whatever the number of messages.

    id = fields.BigIntField(primary_key=True)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="analytics_hours", on_delete=fields.CASCADE
    )
    install_id: str
    chat_id = fields.BigIntField()
    day = fields.DateField()
    hour = fields.SmallIntField()
    received = fields.IntField(default=0, db_default=0)
    sent = fields.IntField(default=0, db_default=0)
    joins = fields.IntField(default=0, db_default=0)
    leaves = fields.IntField(default=0, db_default=0)

    class Meta:
        table = "analytics_hours"
        unique_together = (("install", "chat_id", "day", "hour"),)
        indexes = (("install_id", "day"),)


# `chat_id` 0 stands for all of an install's chats together (Telegram has no chat 0): distinct
# users across chats cannot be summed from the chats' own counts.
ALL_CHATS = 0


class AnalyticsDay(Model):
    # Distinct users of one chat (or ALL_CHATS) on one UTC day, counted when a user is first seen
    # that day: exact, since the AnalyticsDayUser row decides who is first.

    id = fields.BigIntField(primary_key=True)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="analytics_days", on_delete=fields.CASCADE
    )
    install_id: str
    chat_id = fields.BigIntField()
    day = fields.DateField()
    users = fields.IntField(default=0, db_default=0)

    class Meta:
        table = "analytics_days"
        unique_together = (("install", "chat_id", "day"),)


class AnalyticsUser(Model):
    # The last UTC day a user posted in a chat (or ALL_CHATS): users active since a day are a
    # range count, without reading every day's users.

    id = fields.BigIntField(primary_key=True)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="analytics_seen", on_delete=fields.CASCADE
    )
    install_id: str
    chat_id = fields.BigIntField()
    user_id = fields.BigIntField()
    last_day = fields.DateField()

    class Meta:
        table = "analytics_users"
        unique_together = (("install", "chat_id", "user_id"),)
        indexes = (("install_id", "chat_id", "last_day"),)


class AnalyticsDayUser(Model):
    # A user seen posting in a chat (and in ALL_CHATS) on a UTC day, kept only with trackUsers:
    # distinct counts over any window are exact, however many processes count at once.

    id = fields.BigIntField(primary_key=True)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="analytics_users", on_delete=fields.CASCADE
    )
    install_id: str
    chat_id = fields.BigIntField()
    day = fields.DateField()
    user_id = fields.BigIntField()

    class Meta:
        table = "analytics_day_users"
        unique_together = (("install", "chat_id", "day", "user_id"),)
        indexes = (("install_id", "day"),)


class AnalyticsMemberChat(Model):
    # A chat whose member count an install reads: the gateway it was last seen through, when it
    # was last read, and whether it can be (the bot was removed: not read until it is added again).

    id = fields.BigIntField(primary_key=True)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="analytics_member_chats", on_delete=fields.CASCADE
    )
    install_id: str
    chat_id = fields.BigIntField()
    gateway_id = fields.CharField(max_length=32, null=True)
    title = fields.CharField(max_length=255, null=True)
    last_read_at = fields.DatetimeField(null=True)
    unavailable_reason = fields.CharField(max_length=300, null=True)
    unavailable_since = fields.DatetimeField(null=True)

    class Meta:
        table = "analytics_member_chats"
        unique_together = (("install", "chat_id"),)


class AnalyticsMemberCount(Model):
    # One reading of a chat's member count (Telegram's getChatMemberCount) at a UTC instant: any
    # zone's daily series is the last reading on or before each local day's end, carried forward.
    # A null count marks when the bot could no longer read the chat (it was removed): the chat
    # counts again from its next reading, never with a count carried over the gap.

    id = fields.BigIntField(primary_key=True)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="analytics_member_counts", on_delete=fields.CASCADE
    )
    install_id: str
    chat_id = fields.BigIntField()
    read_at = fields.DatetimeField()
    count = fields.BigIntField(null=True)

    class Meta:
        table = "analytics_member_counts"
        indexes = (("install_id", "chat_id", "read_at"),)
