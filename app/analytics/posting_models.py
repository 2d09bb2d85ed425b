"""The tables of what is posted and by whom: content kinds per bucket, and posters' messages.

Keyed by 15-minute UTC buckets (app/analytics/buckets.py), so every zone's days are exact sums.
None of them holds a message's text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from app.plugins.models import UserPlugin


class AnalyticsContent(Model):
    # Received messages of one kind of content in one chat in one bucket.

    id = fields.BigIntField(primary_key=True)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="analytics_content", on_delete=fields.CASCADE
    )
    install_id: str
    chat_id = fields.BigIntField()
    bucket = fields.BigIntField()
    kind = fields.CharField(max_length=16)
    messages = fields.IntField(default=0, db_default=0)

    class Meta:
        table = "analytics_content"
        unique_together = (("install", "chat_id", "bucket", "kind"),)
        indexes = (("install_id", "bucket"),)


class AnalyticsPosterDay(Model):
    # A user's received messages in one chat on one UTC day (`day`: days since the epoch, the
    # bucket // 96): a window's whole UTC days are read from these (app/analytics/posters.py).

    id = fields.BigIntField(primary_key=True)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="analytics_poster_days", on_delete=fields.CASCADE
    )
    install_id: str
    chat_id = fields.BigIntField()
    user_id = fields.BigIntField()
    day = fields.IntField()
    messages = fields.IntField(default=0, db_default=0)

    class Meta:
        table = "analytics_poster_days"
        unique_together = (("install", "chat_id", "user_id", "day"),)
        indexes = (("install_id", "day"),)


class AnalyticsPosterBucket(Model):
    # A user's received messages in one chat in one bucket: read only for a window's partial
    # UTC days, at its two ends.

    id = fields.BigIntField(primary_key=True)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="analytics_poster_buckets", on_delete=fields.CASCADE
    )
    install_id: str
    chat_id = fields.BigIntField()
    user_id = fields.BigIntField()
    bucket = fields.BigIntField()
    messages = fields.IntField(default=0, db_default=0)

    class Meta:
        table = "analytics_poster_buckets"
        unique_together = (("install", "chat_id", "user_id", "bucket"),)
        indexes = (("install_id", "bucket"),)


class AnalyticsPosterName(Model):
    # A poster's first name and username as their latest message (by its date) showed them.

    id = fields.BigIntField(primary_key=True)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="analytics_poster_names", on_delete=fields.CASCADE
    )
    install_id: str
    user_id = fields.BigIntField()
    first_name = fields.CharField(max_length=64)
    username = fields.CharField(max_length=32, null=True)
    seen_at = fields.BigIntField()  # the Unix seconds of that message

    class Meta:
        table = "analytics_poster_names"
        unique_together = (("install", "user_id"),)
        indexes = (("install_id", "seen_at"),)
