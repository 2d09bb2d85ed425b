"""The counting rules: what one Telegram event adds to a chat's figures.

- Received message: every `message` and `channel_post`, service messages (joins, leaves, pins)
  included. Edits are not new messages (they never reach this plugin as messages).
- Sent message: each message the bot sent through the gateway.
- User: a `from` that is not a bot, on a received message not sent on behalf of a chat
  (`sender_chat`: anonymous admins, channel posts, a linked channel's automatic forwards).
- Joins and leaves: `chat_member` updates that move a user between "not a member" and "member".
  `new_chat_members` service messages are counted as messages only, never as joins.
- Day and hour: the install's zone, from the event's own `date` (stored as its 15-minute UTC
  bucket: app/analytics/buckets.py), so a late or redelivered update lands on its day.
- Content: each received message has one kind, from its own fields (app/telegram/content.py).
- Posters: the counted user of each received message, with their first name and username as
  their latest message shows them (bounded to Telegram's own lengths), only with trackUsers.
- Never a message's text: a tally holds no text, and nothing below it stores any.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from app.telegram.light import LightChat, LightMember, LightMemberUpdate, LightMessage

MEMBER_STATUSES = frozenset({"member", "administrator", "creator"})


@dataclass(frozen=True)
class Tally:
    chat_id: int
    chat_title: str | None
    chat_type: str | None
    moment: datetime
    received: int = 0
    sent: int = 0
    joins: int = 0
    leaves: int = 0
    user_id: int | None = None
    kind: str | None = None  # a received message's kind of content
    first_name: str | None = None  # the counted user's, as this message shows them
    username: str | None = None
    late: bool = False  # counted so long after its date that it may land in a closed day (app/analytics/closed_days.py)


FIRST_NAME_MAX = 64  # Telegram's bounds
USERNAME_MAX = 32


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def chat_title(chat: LightChat) -> str | None:
    if chat.title:
        return chat.title[:255]
    name = " ".join(part for part in (chat.first_name, chat.last_name) if part)
    if name:
        return name[:255]
    return f"@{chat.username}"[:255] if chat.username else None


def counted_user(message: LightMessage) -> int | None:
    """The user a received message counts for, if any."""
    sender = message.from_user
    if sender is None or sender.is_bot or message.sender_chat is not None:
        return None
    return sender.id


def tally_received(message: LightMessage, track_users: bool) -> Tally:
    user_id = counted_user(message) if track_users else None
    sender = message.from_user if user_id is not None else None
    return Tally(
        chat_id=message.chat.id,
        chat_title=chat_title(message.chat),
        chat_type=message.chat.type,
        moment=_utc(message.date),
        received=1,
        user_id=user_id,
        kind=message.content,
        first_name=None if sender is None else sender.first_name[:FIRST_NAME_MAX],
        username=None if sender is None or sender.username is None else sender.username[:USERNAME_MAX],
    )


def tally_sent(message: LightMessage) -> Tally:
    return Tally(
        chat_id=message.chat.id,
        chat_title=chat_title(message.chat),
        chat_type=message.chat.type,
        moment=_utc(message.date),
        sent=1,
    )


def is_member(member: LightMember) -> bool:
    if member.status == "restricted":
        return bool(member.is_member)
    return member.status in MEMBER_STATUSES


def tally_member_change(update: LightMemberUpdate) -> Tally | None:
    """A join or a leave, or None when membership did not change (a promotion, say)."""
    before, after = is_member(update.old_chat_member), is_member(update.new_chat_member)
    if before == after:
        return None
    return Tally(
        chat_id=update.chat.id,
        chat_title=chat_title(update.chat),
        chat_type=update.chat.type,
        moment=_utc(update.date),
        joins=int(after),
        leaves=int(before),
    )
