"""Telegram message updates for the processing benchmarks: the shape bench/post_update.lua sends
to the webhook, spread over `chats` supergroups and 500 senders, all on one UTC day."""

from __future__ import annotations

import json

SENDERS = 500


def chat_id(n: int, chats: int) -> int:
    return -(1_001_000_000_000 + n % chats)


def update(n: int, chats: int, date: int) -> dict[str, object]:
    return {
        "update_id": n,
        "message": {
            "message_id": n,
            "date": date,
            "chat": {"id": chat_id(n, chats), "type": "supergroup", "title": f"Bench {n % chats}"},
            "from": {"id": 1000 + n % SENDERS, "is_bot": False, "first_name": "Bench"},
            "text": "hello world",
        },
    }


def update_json(n: int, chats: int, date: int) -> str:
    return json.dumps(update(n, chats, date), separators=(",", ":"))


def distinct_senders(count: int) -> int:
    return min(count, SENDERS)
