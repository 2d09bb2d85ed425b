"""The corpus of update shapes that parsing is checked over: updates as Telegram sends them (hand
written from the Bot API's examples, the demo's traffic, the benchmarks'), odd values that
pydantic still takes, and generated updates, valid and broken (tests/support/hostile_updates.py),
chat_member ones included.
"""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.demo.traffic import Traffic
from bench.updates import update as bench_update
from tests.support import telegram_updates as t
from tests.support.hostile_updates import FRESH, broken_updates, valid_updates

DATE = 1_767_225_600  # 2026-01-01 UTC
ADA = {
    "id": 1001,
    "is_bot": False,
    "first_name": "Ada",
    "last_name": "Lovelace",
    "username": "ada",
    "language_code": "en",
}
BOT = {"id": 777, "is_bot": True, "first_name": "Plugboard", "username": "plugboard_bot"}
GROUP = {"id": -1001234567890, "type": "supergroup", "title": "Engines", "username": "engines", "is_forum": True}
CHANNEL = {"id": -1009876543210, "type": "channel", "title": "Release Notes"}
PRIVATE = {"id": 1001, "type": "private", "first_name": "Ada", "last_name": "Lovelace", "username": "ada"}


def _message(chat: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"message_id": 42, "date": DATE, "chat": chat, **fields}


def _member(status: str, **fields: Any) -> dict[str, Any]:
    return t.chat_member(status, **fields)


def _file(unique: str, **fields: Any) -> dict[str, Any]:
    return {"file_id": f"f-{unique}", "file_unique_id": unique, **fields}


THUMB = _file("th", width=90, height=90)
LOCATION = {"latitude": 51.5, "longitude": -0.12}
# A message of each kind of content, as Telegram sends it (the fields besides message_id, date,
# chat and from).
CONTENT: list[dict[str, Any]] = [
    {"animation": _file("an", width=320, height=240, duration=3, thumbnail=THUMB), "document": _file("an")},
    {"audio": _file("au", duration=200, performer="Ada", title="Engines"), "caption": "listen"},
    {"video": _file("vi", width=1280, height=720, duration=30)},
    {"document": _file("do", file_name="notes.pdf", mime_type="application/pdf"), "caption": "the notes"},
    {"voice": _file("vo", duration=4, mime_type="audio/ogg")},
    {"video_note": _file("vn", length=240, duration=9)},
    {"contact": {"phone_number": "+441234567", "first_name": "Charles", "user_id": 1002}},
    {"location": {**LOCATION, "horizontal_accuracy": 20.5}},
    {"venue": {"location": LOCATION, "title": "Engine room", "address": "1 Mill St"}, "location": LOCATION},
    {
        "poll": {
            "id": "p1",
            "question": "Ship it?",
            "options": [
                {"persistent_id": "o1", "text": "yes", "voter_count": 0},
                {"persistent_id": "o2", "text": "no", "voter_count": 0},
            ],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
            "allows_revoting": False,
            "members_only": False,
        }
    },
    {"dice": {"emoji": "\U0001f3b2", "value": 4}},
    {"new_chat_photo": [_file("np", width=160, height=160)]},
    {"delete_chat_photo": True},
    {"group_chat_created": True},
    {"migrate_to_chat_id": -1001234567899},
    {"message_auto_delete_timer_changed": {"message_auto_delete_time": 86400}},
    {"forum_topic_created": {"name": "Releases", "icon_color": 7322096}},
    {"video_chat_started": {}},
    {"video_chat_ended": {"duration": 600}},
    {"write_access_allowed": {"from_request": True}},
    {"photo": [_file("p1", width=90, height=60), _file("p2", width=1280, height=853)]},
    {"sticker": _file("st", type="regular", width=512, height=512, is_animated=False, is_video=True, emoji="👍")},
]

MESSAGES: list[dict[str, Any]] = [
    _message(
        GROUP,
        **{"from": ADA},
        text="/start@plugboard_bot now",
        entities=[{"type": "bot_command", "offset": 0, "length": 19}],
    ),
    _message(
        PRIVATE, **{"from": ADA}, text="see https://example.org", entities=[{"type": "url", "offset": 4, "length": 19}]
    ),
    _message(
        GROUP,
        **{"from": ADA},
        photo=[{"file_id": "AgAD", "file_unique_id": "u1", "width": 90, "height": 60, "file_size": 1200}],
        caption="a photo",
        caption_entities=[{"type": "bold", "offset": 0, "length": 1}],
        media_group_id="m1",
    ),
    _message(
        GROUP,
        **{"from": ADA},
        text="a reply",
        reply_to_message=_message(GROUP, **{"from": BOT}, text="the question"),
        message_thread_id=7,
        is_topic_message=True,
    ),
    _message(
        GROUP,
        **{"from": {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}},
        sender_chat=GROUP,
        text="anonymous admin",
        author_signature="Ada",
    ),
    _message(CHANNEL, sender_chat=CHANNEL, text="a channel post", author_signature="Ada", views=3),
    _message(GROUP, **{"from": ADA}, new_chat_members=[ADA, BOT], new_chat_member=ADA, new_chat_participant=ADA),
    _message(GROUP, **{"from": ADA}, left_chat_member=ADA, left_chat_participant=ADA),
    _message(GROUP, **{"from": ADA}, pinned_message=_message(GROUP, **{"from": ADA}, text="pinned")),
    _message(GROUP, **{"from": ADA}, new_chat_title="Engines II"),
    _message(
        GROUP,
        **{"from": ADA},
        text="forwarded",
        forward_origin={"type": "user", "date": DATE - 60, "sender_user": BOT},
        is_automatic_forward=True,
    ),
    _message(
        GROUP,
        **{"from": ADA},
        sticker={
            "file_id": "s",
            "file_unique_id": "su",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        },
    ),
    _message(GROUP, **{"from": ADA}, text="", edit_date=DATE + 5, has_protected_content=True),
    _message(
        GROUP,
        **{"from": ADA},
        text="with markup",
        reply_markup={"inline_keyboard": [[{"text": "ok", "callback_data": "ok"}]]},
    ),
    _message({"id": 5, "type": "group", "title": None}, **{"from": None}, text=None, caption=None),  # nulls
    _message(PRIVATE, **{"from": ADA}, text="a \U0001f600 and a lone \ud800 surrogate"),
    _message(PRIVATE, **{"from": ADA}, text="future field", some_future_field={"nested": [1, 2]}),
    {**_message(PRIVATE, **{"from": ADA}), "date": 0},
    {**_message(PRIVATE, **{"from": ADA}), "date": 20_000_000_000},  # pydantic's last date in seconds
    {**_message(PRIVATE, **{"from": ADA}), "chat": {"id": -(2**63), "type": "private"}, "message_id": 2**63 - 1},
    *(_message(GROUP, **{"from": ADA}, **content) for content in CONTENT),
    _message(CHANNEL, sender_chat=CHANNEL, video=CONTENT[2]["video"], caption="a channel's video"),
]

# Values that are not in Telegram's form but that pydantic coerces (so aiogram takes them).
COERCED: list[dict[str, Any]] = [
    _message({"id": "-100", "type": "group"}, **{"from": ADA}),
    _message(GROUP, **{"from": {**ADA, "id": 7.0, "is_bot": "no"}}),
    _message(GROUP, **{"from": {**ADA, "is_bot": 0}}),
    {**_message(GROUP), "date": "1767225600"},
    {**_message(GROUP), "date": 1_767_225_600_000},  # milliseconds
    {**_message(GROUP), "date": -5},
    {**_message(GROUP), "date": 1_767_225_600.0},
    {**_message(GROUP), "message_id": True},
    _message(GROUP, from_user=ADA),  # aiogram takes `from` by its Python name too
    _message(GROUP, new_chat_members=(ADA,)),
]

MEMBER_STATUSES = ("creator", "administrator", "member", "restricted", "left", "kicked")


def member_updates() -> list[dict[str, Any]]:
    """A chat_member update for every pair of statuses (restricted as member and not)."""
    members = [_member(status) for status in MEMBER_STATUSES if status != "restricted"]
    members += [_member("restricted", is_member=True), _member("restricted", is_member=False)]
    return [t.chat_member_update(0, old, new, date=DATE)["chat_member"] for old in members for new in members]


def callbacks() -> list[dict[str, Any]]:
    base = t.callback_update(0)["callback_query"]
    return [
        base,
        {**base, "data": None, "game_short_name": "g"},
        {"id": "c2", "from": ADA, "chat_instance": "ci", "inline_message_id": "im1", "data": "x"},
        {**base, "message": {"chat": GROUP, "message_id": 3, "date": 0}},  # an inaccessible message
    ]


def real_updates() -> list[dict[str, Any]]:
    """Updates of every kind Plugboard parses, as Telegram sends them, and the coerced ones."""
    ids = itertools.count(1)
    found = [{"update_id": next(ids), "message": value} for value in MESSAGES + COERCED]
    found += [{"update_id": next(ids), "channel_post": value} for value in MESSAGES[5:6]]
    found += [{"update_id": next(ids), "chat_member": value} for value in member_updates()]
    found += [{"update_id": next(ids), "my_chat_member": value} for value in member_updates()[::5]]
    found += [{"update_id": next(ids), "callback_query": value} for value in callbacks()]
    traffic = Traffic(random.Random(27))
    for n in range(400):
        found += traffic.next_updates(DATE + n * 60)
    found += [bench_update(n, 100, DATE) for n in range(5)]
    return found


@st.composite
def _member_update(draw: st.DrawFn) -> dict[str, Any]:
    return {"update_id": FRESH, "chat_member": draw(st.sampled_from(member_updates()))}


def generated_updates(count: int) -> list[Any]:
    """`count` generated updates, valid and broken (chat_member ones too), the same on every run."""
    found: list[Any] = []
    updates = st.one_of(valid_updates(), _member_update())

    @settings(max_examples=count, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(updates, broken_updates(updates)))
    def collect(update: Any) -> None:
        text = json.dumps(update, default=lambda value: len(found) if value is FRESH else repr(value))
        found.append(json.loads(text))

    collect()
    return found
