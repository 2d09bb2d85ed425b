"""Hostile webhook deliveries: Telegram updates, near misses of them, and things that are not
updates at all, sent to real, odd and unknown gateway ids with right and wrong secrets.

`deliveries()` draws one `Delivery`; `Delivery.encode()` gives the path, headers and body bytes.
A body is built from a valid update of some kind, then perhaps broken: one value somewhere
replaced by a hostile one, the update_id made hostile, a field removed, or the whole body
swapped for raw bytes (deep nesting, NaN tokens, bad UTF-8, a near-limit or over-limit size).
A `FRESH` update_id is replaced, when the body is encoded, by one never used before.
"""

from __future__ import annotations

import functools
import itertools
import json
from typing import Any

from hypothesis import strategies as st

from tests.support import hostile, telegram_updates
from tests.support.hostile import RawJSON, Ref, describe, to_json

WEBHOOK_LIMIT = 256_000  # WEBHOOK_MAX_BODY_BYTES's default


class _Fresh:
    def __repr__(self) -> str:
        return "FRESH"


FRESH: Any = _Fresh()
_update_ids = itertools.count(10_000_000)


# The strategies below are built once (functools.cache, module constants) and drawn from many times:
# building a strategy costs hypothesis more than drawing from it.


@functools.cache
def valid_updates() -> st.SearchStrategy[dict[str, Any]]:
    """An update of each kind Telegram sends us (and some we do not handle), update_id FRESH."""
    member = telegram_updates.user(4242, "Newcomer")
    chat_ids = st.sampled_from([-100200, -100201, 7, -(10**12) - 5])
    # Any text Telegram sends; not NUL, which PostgreSQL cannot store (such an update is kept in
    # rejected_updates instead: the hostile deliveries bring NUL in, not these valid ones).
    texts = st.text(st.characters(exclude_characters="\x00"), max_size=50)
    return st.one_of(
        st.builds(lambda c, t: telegram_updates.message_update(0, t, chat_id=c), chat_ids, texts),
        st.builds(lambda c: telegram_updates.new_members_update(0, member, chat_id=c), chat_ids),
        st.builds(lambda c: telegram_updates.channel_post_update(0, chat_id=c), chat_ids),
        st.builds(lambda c: telegram_updates.callback_update(0, chat_id=c), chat_ids),
        st.builds(lambda c: {"update_id": 0, "edited_message": telegram_updates.message(c, text="edited")}, chat_ids),
        st.just(telegram_updates.poll_update(0)),
        st.just({"update_id": 0, "some_future_kind": {"id": 1}}),
    ).map(lambda update: {**update, "update_id": FRESH})


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            paths.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths.extend(_paths(child, (*prefix, index)))
    return paths


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: (_replaced(v, rest, new) if k == head else v) for k, v in value.items()}
    return [(_replaced(v, rest, new) if i == head else v) for i, v in enumerate(value)]


def _removed(value: Any, path: tuple[Any, ...]) -> Any:
    head, rest = path[0], path[1:]
    if not rest:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k != head}
        return [v for i, v in enumerate(value) if i != head]
    if isinstance(value, dict):
        return {k: (_removed(v, rest) if k == head else v) for k, v in value.items()}
    return [(_removed(v, rest) if i == head else v) for i, v in enumerate(value)]


@functools.cache
def _hostile_values() -> st.SearchStrategy[Any]:
    return hostile.weighted(
        (3, hostile.scalars()),
        (1, hostile.json_values()),
        (2, st.sampled_from([2**63, 2**63 - 1, -(2**63) - 1, 2**70, -(2**70), 10**70, 1.5, True, "1", None])),
        (1, st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", "\ud83d\ude00"])),
    )


@st.composite
def broken_updates(draw: st.DrawFn, updates: st.SearchStrategy[dict[str, Any]] | None = None) -> Any:
    """A valid update (of `valid_updates()` unless `updates` is given) with one thing wrong in it."""
    update = draw(valid_updates() if updates is None else updates)
    how = draw(st.sampled_from(["replace", "replace", "replace", "update_id", "remove", "add"]))
    if how == "update_id":
        return {**update, "update_id": draw(_hostile_values())}
    if how == "add":
        return {**update, draw(hostile.odd_strings()): draw(_hostile_values())}
    paths = [p for p in _paths(update) if p != ("update_id",)]
    path = draw(st.sampled_from(paths))
    if how == "remove":
        return _removed(update, path)
    return _replaced(update, path, draw(_hostile_values()))


def _deep_update(depth: int) -> RawJSON:
    return RawJSON(
        '{"update_id": 1, "message": ' + "[" * depth + "]" * depth + "}", None, f"update nested {depth} deep"
    )


def _padded_update(target: int) -> RawJSON:
    """A valid-looking message update whose text makes the body about `target` bytes."""
    head = '{"update_id": 0, "message": {"message_id": 1, "date": 1700000000, "chat": {"id": -100200, "type": "group"}, "text": "'
    tail = '"}}'
    return RawJSON(head + "x" * (target - len(head) - len(tail)) + tail, None, f"{target}-byte message")


RAW_BODIES = st.one_of(
    st.builds(_deep_update, st.sampled_from([63, 64, 65, 500, 2_000, 100_000])),
    st.builds(_padded_update, st.sampled_from([WEBHOOK_LIMIT - 1_000, WEBHOOK_LIMIT, WEBHOOK_LIMIT + 1, 1_000_000])),
    st.sampled_from(
        [
            b"",
            b"{",
            b"null",
            b"[]",
            b'"update"',
            b"12",
            b'{"update_id": NaN, "message": {}}',
            b'{"update_id": 1, "message": {"message_id": 1, "date": 1, "chat": {"id": Infinity}}}',
            b'{"update_id": 1, "update_id": 2, "poll": {}}',
            b'\xef\xbb\xbf{"update_id": 5, "poll": {}}',
            b'{"update_id": 1, "message": {"text": "\xff\xfe"}}',
            b'{"update_id": 1e400, "poll": {}}',
            b'{"update_id": 10000000000000000000000000000000000000000000000000000000000000000000001, "poll": {}}',
            b"\x00\x00\x00",
        ]
    ),
)

# The gateway id in the path: real ones, and ones the route must refuse without a database error.
GATEWAY_IDS = (
    Ref("gateway:mine"),
    Ref("gateway:theirs"),
    Ref("gateway:inactive"),
    "0" * 32,
    "f" * 31,
    "a" * 33,
    "b" * 40,
    "c" * 64,
    "d" * 65,
    "e" * 5_000,
    "%00",
    "abc%00def",
    "%F0%9F%98%80",
    "%ED%A0%80",
    "..",
    "%2e%2e",
    "x%20y",
    "0x1",
    "-1",
    "99999999999999999999999",
)
SECRETS = ("right", "wrong", "empty", "missing", "huge", "latin-1")
CONTENT_TYPES = (
    "application/json",
    "application/json",
    "application/json",
    None,
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/json; charset=latin-1",
    "multipart/form-data; boundary=x",
)


class Delivery:
    """One POST to the webhook. A plain class, so that hypothesis prints it by its short repr."""

    def __init__(self, gateway: Any, secret: str, content_type: str | None, body: Any, family: str) -> None:
        self.gateway = gateway
        self.secret = secret
        self.content_type = content_type
        self.body = body  # a JSON value (FRESH inside), RawJSON, or bytes
        self.family = family

    def __repr__(self) -> str:
        body = describe(self.body) if not isinstance(self.body, bytes) else repr(self.body[:60])
        return f"<{self.family} to {self.gateway!r} secret={self.secret} type={self.content_type!r}: {body[:300]}>"

    def encode(self, resolve: Any, secret_of: Any) -> tuple[str, dict[str, str | bytes], bytes, Any]:
        """The path, the headers, the body, and the update_id the body carries (if any)."""
        gateway_id = resolve(self.gateway) if isinstance(self.gateway, Ref) else self.gateway
        update_id = None
        if isinstance(self.body, bytes):
            body = self.body
        elif isinstance(self.body, RawJSON):
            text = self.body.text
            if '"update_id": 0,' in text:
                update_id = next(_update_ids)
                text = text.replace('"update_id": 0,', f'"update_id": {update_id},', 1)
            body = text.encode("ascii")
        else:
            value = self.body
            if isinstance(value, dict) and value.get("update_id") is FRESH:
                update_id = next(_update_ids)
                value = {**value, "update_id": update_id}
            body = to_json(value).encode("ascii")
        headers: dict[str, str | bytes] = {}
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        right = secret_of(gateway_id)
        secret = {
            "right": right,
            "wrong": "not-the-secret",
            "empty": "",
            "huge": "s" * 300,
            "latin-1": b"s\xe9cret",
        }.get(self.secret)
        if self.secret == "right" and secret is None:
            secret = "no-secret-known"
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        return f"/webhooks/telegram/{gateway_id}", headers, body, update_id


# Most go through the door (the pro user's bot, the right secret), so the bodies get tested.
DOORS = hostile.weighted(
    (7, st.just((Ref("gateway:mine"), "right"))),
    (1, st.just((Ref("gateway:theirs"), "right"))),
    (2, st.tuples(st.sampled_from(GATEWAY_IDS), st.sampled_from(SECRETS))),
)


@st.composite
def deliveries(draw: st.DrawFn) -> Delivery:
    family = draw(st.sampled_from(["valid", "broken", "broken", "broken", "raw"]))
    body: Any
    if family == "valid":
        body = draw(valid_updates())
    elif family == "broken":
        body = draw(broken_updates())
    else:
        body = draw(RAW_BODIES)
    door = draw(DOORS)
    return Delivery(
        gateway=door[0],
        secret=door[1],
        content_type=draw(st.sampled_from(CONTENT_TYPES)),
        body=body,
        family=family,
    )


@st.composite
def valid_deliveries(draw: st.DrawFn) -> Delivery:
    """What Telegram itself would send to the pro user's bot: every one must be stored."""
    return Delivery(Ref("gateway:mine"), "right", "application/json", draw(valid_updates()), "valid")


def parsed_update(body: bytes) -> dict[str, Any] | None:
    """The body as Python reads it, when it is an object with an integer update_id; else None."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, dict) and isinstance(data.get("update_id"), int) and not isinstance(data["update_id"], bool):
        return data
    return None
