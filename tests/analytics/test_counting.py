"""The counting rules, one by one, on the fields of Telegram's objects that the plugin reads
(app/telegram/light.py; tests/telegram/test_light.py checks them against aiogram's)."""

from __future__ import annotations

from datetime import UTC, datetime

from app.analytics.counting import counted_user, tally_member_change, tally_received, tally_sent
from app.telegram import light
from app.telegram.light import LightMemberUpdate, LightMessage
from tests.support.telegram_updates import chat_member, chat_member_update, message, user


def parse(fields: dict) -> LightMessage:
    return light.message(message(**fields)).light


def test_a_message_from_a_person_counts_once_for_them():
    tally = tally_received(parse({"from": user(7)}), track_users=True)
    assert (tally.received, tally.sent, tally.user_id) == (1, 0, 7)


def test_bots_never_count_as_users():
    assert counted_user(parse({"from": user(8, is_bot=True)})) is None


def test_messages_on_behalf_of_a_chat_count_as_messages_not_users():
    anonymous_admin = parse(
        {"from": user(1087968824, "Group"), "sender_chat": {"id": -100200, "type": "supergroup", "title": "T"}}
    )
    tally = tally_received(anonymous_admin, track_users=True)
    assert tally.received == 1 and tally.user_id is None


def test_service_messages_count_as_messages():
    joined = parse({"from": user(9), "new_chat_members": [user(9)]})
    tally = tally_received(joined, track_users=True)
    assert (tally.received, tally.joins) == (1, 0)  # a join is counted from chat_member only


def test_without_user_tracking_no_user_id_is_kept():
    assert tally_received(parse({"from": user(7)}), track_users=False).user_id is None


def test_sent_messages_never_count_a_user():
    tally = tally_sent(parse({"from": user(42, is_bot=True)}))
    assert (tally.received, tally.sent, tally.user_id) == (0, 1, None)


def test_day_and_hour_come_from_the_message_date_in_utc():
    late = parse({"from": user(7), "date": int(datetime(2026, 3, 1, 23, 59, tzinfo=UTC).timestamp())})
    moment = tally_received(late, track_users=True).moment
    assert (moment.date().isoformat(), moment.hour) == ("2026-03-01", 23)


def change(old: dict, new: dict) -> LightMemberUpdate:
    return light.member_update(chat_member_update(1, old, new)["chat_member"]).light


def test_joins_and_leaves_are_moves_across_membership():
    assert tally_member_change(change(chat_member("left"), chat_member("member"))).joins == 1
    assert tally_member_change(change(chat_member("kicked"), chat_member("member"))).joins == 1
    assert tally_member_change(change(chat_member("member"), chat_member("left"))).leaves == 1
    assert tally_member_change(change(chat_member("administrator"), chat_member("kicked"))).leaves == 1


def test_restricted_counts_as_member_only_with_membership():
    assert tally_member_change(change(chat_member("member"), chat_member("restricted", is_member=True))) is None
    assert tally_member_change(change(chat_member("member"), chat_member("restricted", is_member=False))).leaves == 1
    assert tally_member_change(change(chat_member("restricted", is_member=False), chat_member("member"))).joins == 1


def test_a_promotion_is_neither_a_join_nor_a_leave():
    assert tally_member_change(change(chat_member("member"), chat_member("creator"))) is None


def test_a_received_message_tallies_its_kind_and_its_poster_s_names_bounded():
    tally = tally_received(
        parse({"from": {**user(7, "A" * 80), "username": "u" * 40}, "text": "hi", "photo": []}), True
    )
    assert (tally.kind, tally.user_id, tally.first_name, tally.username) == ("text", 7, "A" * 64, "u" * 32)
    photo = parse(
        {"from": user(7), "text": None, "photo": [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}]}
    )
    assert tally_received(photo, True).kind == "photo"


def test_no_name_is_tallied_without_a_counted_user():
    for message_fields, track in (
        ({"from": user(7)}, False),
        ({"from": user(8, "Bot", is_bot=True)}, True),
        ({"from": user(9), "sender_chat": {"id": -100200, "type": "supergroup", "title": "T"}}, True),
    ):
        tally = tally_received(parse({**message_fields, "text": "hi"}), track_users=track)
        assert (tally.user_id, tally.first_name, tally.username) == (None, None, None), message_fields
        assert tally.kind == "text"


def test_a_sent_message_has_no_kind_of_received_content():
    assert tally_sent(parse({"from": user(42, is_bot=True)})).kind is None
