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


class AnalyticsBucket(Model):
    # What happened in one chat in one 15-minute UTC bucket (app/analytics/buckets.py): any zone's
    # days and hours are sums of these rows, so a read costs O(days), whatever the number of messages.

    id = fields.BigIntField(primary_key=True)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="analytics_buckets", on_delete=fields.CASCADE
    )
    install_id: str
    chat_id = fields.BigIntField()
    bucket = fields.IntField()
    received = fields.IntField(default=0, db_default=0)
    sent = fields.IntField(default=0, db_default=0)
    joins = fields.IntField(default=0, db_default=0)
    leaves = fields.IntField(default=0, db_default=0)

    class Meta:
        table = "analytics_buckets"
        unique_together = (("install", "chat_id", "bucket"),)
        # Covering: a summary's sums over a span read this index only.
        indexes = (("install_id", "bucket", "chat_id", "received", "sent", "joins", "leaves"),)


# `chat_id` 0 stands for all of an install's chats together (Telegram has no chat 0): distinct
# users across chats cannot be summed from the chats' own counts.
ALL_CHATS = 0


class AnalyticsSeen(Model):
    # The last bucket a user posted in a chat (or ALL_CHATS) in: users active since any local
    # midnight are a range count, without reading every day's users.

    id = fields.BigIntField(primary_key=True)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="analytics_last_seen", on_delete=fields.CASCADE
    )
    install_id: str
    chat_id = fields.BigIntField()
    user_id = fields.BigIntField()
    last_bucket = fields.IntField()

    class Meta:
        table = "analytics_seen"
        unique_together = (("install", "chat_id", "user_id"),)
        indexes = (("install_id", "chat_id", "last_bucket"),)


class AnalyticsUserDay(Model):
    # A user seen posting in a chat (and in ALL_CHATS) on a UTC day (`day`: days since 1970-01-01),
    # with the quarters of that day they were seen in as a 96-bit mask: `quarters_low` holds
    # quarters 0-47 (bit q), `quarters_high` 48-95 (bit q - 48). A local day in any zone is a
    # suffix of one UTC day, whole days and a prefix of another, so whether a user was seen in it is
    # a mask test, and distinct users per local day are exact in every zone (app/analytics/zoned.py).
    # Kept only with trackUsers.

    id = fields.BigIntField(primary_key=True)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="analytics_user_days", on_delete=fields.CASCADE
    )
    install_id: str
    chat_id = fields.BigIntField()
    day = fields.IntField()
    user_id = fields.BigIntField()
    quarters_low = fields.BigIntField(default=0, db_default=0)
    quarters_high = fields.BigIntField(default=0, db_default=0)

    class Meta:
        table = "analytics_user_days"
        unique_together = (("install", "chat_id", "day", "user_id"),)
        # Covering: distinct users over a span (and per local day) read this index only.
        indexes = (("install_id", "chat_id", "day", "user_id", "quarters_low", "quarters_high"),)


class AnalyticsClosedDay(Model):
    # One local day of the install's zone once it can no longer change (app/analytics/closed_days.py):
    # a chat's figures that day, or with chat_id ALL_CHATS the install's (always written, so a
    # missing row means the day was never rolled up). Valid while `version` is the sum of the
    # install's AnalyticsVersion rows of the UTC days it spans: an event counted late in one of
    # them, or a person forgotten, moves that on.

    id = fields.BigIntField(primary_key=True)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="analytics_closed_days", on_delete=fields.CASCADE
    )
    install_id: str
    chat_id = fields.BigIntField()
    zone = fields.CharField(max_length=64)
    day = fields.IntField()  # days since 1970-01-01, in `zone`
    version = fields.BigIntField()
    received = fields.BigIntField(default=0, db_default=0)
    sent = fields.BigIntField(default=0, db_default=0)
    joins = fields.BigIntField(default=0, db_default=0)
    leaves = fields.BigIntField(default=0, db_default=0)
    users = fields.BigIntField(default=0, db_default=0)
    hours = fields.CharField(max_length=500)  # messages by local hour 0-23, comma-separated

    class Meta:
        table = "analytics_closed_days"
        unique_together = (("install", "chat_id", "zone", "day"),)


class AnalyticsVersion(Model):
    # How often an install's counts of one UTC day (`day`: days since 1970-01-01) changed after
    # they might have been rolled up; day -1 stands for every day. A closed day holds the sum of
    # the versions of the UTC days it spans, and is not used once that sum moved on.

    id = fields.BigIntField(primary_key=True)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="analytics_versions", on_delete=fields.CASCADE
    )
    install_id: str
    day = fields.IntField()
    version = fields.BigIntField(default=0, db_default=0)

    class Meta:
        table = "analytics_versions"
        unique_together = (("install", "day"),)


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
    # Set when the chat wants a reading soon (first seen, the bot added or promoted): the
    # `member-reads` schedule reads it within a minute, outside the run that saw it.
    due_at = fields.DatetimeField(null=True)

    class Meta:
        table = "analytics_member_chats"
        unique_together = (("install", "chat_id"),)
        indexes = (("due_at",),)


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
