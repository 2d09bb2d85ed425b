"""Telegram updates as the Bot API sends them to a webhook."""

from __future__ import annotations

import itertools
import time
from typing import Any

from pydantic import BaseModel

_message_ids = itertools.count(1)


def user(user_id: int = 1001, first_name: str = "Ada", is_bot: bool = False) -> dict[str, Any]:
    return {"id": user_id, "is_bot": is_bot, "first_name": first_name}


def chat(chat_id: int = -100200, kind: str = "supergroup") -> dict[str, Any]:
    return {"id": chat_id, "type": kind, "title": "Test chat"}


def message(chat_id: int = -100200, kind: str = "supergroup", **fields: Any) -> dict[str, Any]:
    """A Message object; `fields` are the rest of it (`from` is a keyword, so pass it as **{"from": ...})."""
    return {"message_id": next(_message_ids), "date": int(time.time()), "chat": chat(chat_id, kind), **fields}


def message_update(
    update_id: int, text: str = "hello", chat_id: int = -100200, sender_id: int = 1001
) -> dict[str, Any]:
    fields: dict[str, Any] = {"from": user(sender_id), "text": text}
    return {"update_id": update_id, "message": message(chat_id, **fields)}


def channel_post_update(update_id: int, text: str = "news", chat_id: int = -100300) -> dict[str, Any]:
    return {"update_id": update_id, "channel_post": message(chat_id, "channel", text=text)}


def new_members_update(update_id: int, *members: dict[str, Any], chat_id: int = -100200) -> dict[str, Any]:
    new_members: dict[str, Any] = {"from": members[0], "new_chat_members": list(members)}
    return {"update_id": update_id, "message": message(chat_id, **new_members)}


def callback_update(update_id: int, data: str = "button", chat_id: int = -100200) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cb{update_id}",
            "from": user(),
            "chat_instance": "ci",
            "data": data,
            "message": message(chat_id, text="pick"),
        },
    }


def poll_update(update_id: int) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "poll": {
            "id": "p1",
            "question": "?",
            "options": [{"text": "a", "voter_count": 0}],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
        },
    }


def chat_member_update(
    update_id: int, old: dict[str, Any], new: dict[str, Any], chat_id: int = -100200, date: int | None = None
) -> dict[str, Any]:
    """A `chat_member` update: `old` and `new` are ChatMember objects ({"status": …, "user": …})."""
    return {
        "update_id": update_id,
        "chat_member": {
            "chat": chat(chat_id),
            "from": user(),
            "date": int(time.time()) if date is None else date,
            "old_chat_member": old,
            "new_chat_member": new,
        },
    }


def my_chat_member_update(
    update_id: int, old: dict[str, Any], new: dict[str, Any], chat_id: int = -100200, date: int | None = None
) -> dict[str, Any]:
    """A `my_chat_member` update: the bot's own status changed (`old` and `new` are ChatMembers of the bot)."""
    update = chat_member_update(update_id, old, new, chat_id, date)
    return {"update_id": update_id, "my_chat_member": update["chat_member"]}


def chat_member(status: str, user_id: int = 1001, **fields: Any) -> dict[str, Any]:
    """A ChatMember of `status` with every permission flag the Bot API requires set to false."""
    from aiogram.types import (
        ChatMemberAdministrator,
        ChatMemberBanned,
        ChatMemberLeft,
        ChatMemberMember,
        ChatMemberOwner,
        ChatMemberRestricted,
    )

    models: dict[str, type[BaseModel]] = {
        "creator": ChatMemberOwner,
        "administrator": ChatMemberAdministrator,
        "member": ChatMemberMember,
        "restricted": ChatMemberRestricted,
        "left": ChatMemberLeft,
        "kicked": ChatMemberBanned,
    }
    model = models[status]
    member: dict[str, Any] = {"status": status, "user": user(user_id)}
    for name, info in model.model_fields.items():
        if info.is_required() and name not in member:
            member[name] = 0 if name == "until_date" else False
    return {**member, **fields}
