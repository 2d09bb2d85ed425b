"""Taking one Telegram update into the inbox, the same way whichever way it came: a webhook's
request body, or one update of a getUpdates answer (app/gateways/polling.py).

Every check runs on every update, in this order: the depth, the JSON, the update's shape, whether
its kind is handled at all, whether it can be stored. An update is then committed to the inbox
(deduplicated on gateway and update_id), or, when it can never be stored, recorded in
rejected_updates with its body byte for byte.
"""

from __future__ import annotations

from typing import Any

from app.gateways import storable
from app.gateways.inbox_writer import InboxWriter, RowRefused, reject
from app.gateways.models import EventKind
from app.inputs import is_int, json_depth_exceeds
from app.telegram.updates import UPDATE_KINDS, update_type

# Telegram nests an update a handful of levels deep; json.loads recurses once per level.
MAX_JSON_DEPTH = 64


class NotAnUpdate(ValueError):
    """The body is not a Telegram update that Plugboard can read (the text says why)."""


def chat_of(event: dict[str, Any]) -> int | None:
    """The chat whose events must run in order: a message's chat, a callback's message's chat."""
    chat = event.get("chat") or (event.get("message") or {}).get("chat") or {}
    if is_int(chat.get("id")):
        return chat["id"]
    sender = event.get("from") or {}
    return sender.get("id") if is_int(sender.get("id")) else None


async def take_update(writer: InboxWriter, handled_update_types: frozenset[str], gateway_id: str, body: bytes) -> bool:
    """Takes one update's JSON body in; returns whether it is in the inbox now (stored, or stored
    before: a redelivery), False when it was acknowledged unread (a kind no plugin handles) or
    recorded as rejected.

    Raises NotAnUpdate for a body that is not an update, and whatever the inbox raised when the
    update could not be stored now (InboxUnavailable: try again later)."""
    try:
        if json_depth_exceeds(body, MAX_JSON_DEPTH):
            raise ValueError("nested too deep")
        text = body.decode("utf-8")
        data, suspect = storable.parse(text)
        if not isinstance(data, dict) or not is_int(data.get("update_id")):
            raise ValueError("no update_id")
        kind = update_type(data)
        if kind not in handled_update_types:
            # Acknowledged unread: a kind no plugin handles, or one newer than this list.
            return False
        known = UPDATE_KINDS.get(kind)
        if known is not None and not known.shape(data[kind]):
            raise ValueError(f"not a {kind}")
    except UnicodeDecodeError:
        raise NotAnUpdate("not UTF-8") from None
    except ValueError as exc:  # ours, or the JSON decoder's
        raise NotAnUpdate(str(exc) if type(exc) is ValueError else "not JSON") from None
    update_id = str(data["update_id"])
    problem = storable.problem(data, MAX_JSON_DEPTH) if suspect else None
    if problem is None:
        try:
            await writer.put(gateway_id, EventKind.UPDATE, update_id, text, chat_id=chat_of(data[kind]))
            return True
        except RowRefused as refused:  # what the checks above did not foresee
            problem = f"refused by the database: {refused.reason}"
    # It can never be stored: acknowledged (a webhook's 2xx, a poller's offset), the record keeps it.
    await reject(gateway_id, update_id, problem, body)
    return False
