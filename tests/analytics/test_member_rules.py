"""The member-count rules without a database: the bot's own membership changes, which refusals
make a chat unavailable, and the daily series against a model that counts day by day."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.analytics.buckets import local_midnight
from app.analytics.member_rules import (
    BotChange,
    MemberDay,
    bot_change,
    member_series,
    removed_reason,
    unavailable_reason,
)
from app.telegram.light import member_update
from tests.support.telegram_updates import chat_member, chat_member_update

BOT = {"id": 777, "is_bot": True, "first_name": "Bot", "username": "test_bot"}


def change(old: str, new: str, **new_fields):
    update = chat_member_update(1, chat_member(old, user=BOT), chat_member(new, user=BOT, **new_fields))
    return member_update(update["chat_member"]).light


@pytest.mark.parametrize(
    ("old", "new", "fields", "expected"),
    [
        ("left", "member", {}, BotChange.JOINED),
        ("kicked", "administrator", {}, BotChange.JOINED),
        ("left", "restricted", {"is_member": True}, BotChange.JOINED),
        ("member", "administrator", {}, BotChange.PROMOTED),
        ("restricted", "administrator", {}, BotChange.PROMOTED),
        ("member", "kicked", {}, BotChange.REMOVED),
        ("administrator", "left", {}, BotChange.REMOVED),
        ("member", "restricted", {"is_member": False}, BotChange.REMOVED),
        ("administrator", "member", {}, None),  # demoted: still in the chat, nothing to read
        ("administrator", "creator", {}, None),
        ("left", "kicked", {}, None),
    ],
)
def test_what_a_change_of_the_bots_own_status_means(old, new, fields, expected):
    if old == "restricted":
        update = chat_member_update(1, chat_member(old, user=BOT, is_member=True), chat_member(new, user=BOT))
        assert bot_change(member_update(update["chat_member"]).light) is expected
    else:
        assert bot_change(change(old, new, **fields)) is expected


def test_the_reason_a_removal_gives():
    assert removed_reason(change("member", "kicked")) == "The bot was removed from the chat"
    assert removed_reason(change("member", "left")) == "The bot left the chat"


@pytest.mark.parametrize(
    ("code", "description", "reason"),
    [
        (
            403,
            "Forbidden: bot was kicked from the supergroup chat",
            "Forbidden: bot was kicked from the supergroup chat",
        ),
        (
            403,
            "Forbidden: bot is not a member of the channel chat",
            "Forbidden: bot is not a member of the channel chat",
        ),
        (400, "Bad Request: chat not found", "Bad Request: chat not found"),
        (
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            "Bad Request: group chat was upgraded to a supergroup chat",
        ),
        (400, "Bad Request: member list is inaccessible", None),
        (400, "Bad Request: chat_id is empty", None),
        (None, None, None),
    ],
)
def test_which_refusals_make_a_chat_unavailable(code, description, reason):
    assert unavailable_reason(code, description) == reason


def days_of(start: date, count: int, zone: ZoneInfo) -> list[tuple[date, datetime]]:
    return [(start + timedelta(days=n), local_midnight(start + timedelta(days=n + 1), zone)) for n in range(count)]


def test_a_gap_while_the_bot_was_removed_carries_nothing_over():
    utc = ZoneInfo("UTC")
    days = days_of(date(2026, 3, 1), 5, utc)
    at = [datetime(2026, 3, d, 12, tzinfo=UTC) for d in range(1, 6)]
    readings = {-1: [(at[0], 50), (at[1], None), (at[3], 44)], -2: [(at[0], 7)]}
    series = member_series(readings, {}, {}, days)
    assert [d.count for d in series.daily] == [57, 7, 7, 51, 51]
    assert series.change == -6  # -1 counted from its first count in the window, 50, to 44 now


def test_no_reading_no_series():
    series = member_series({}, {}, {}, days_of(date(2026, 3, 1), 7, ZoneInfo("UTC")))
    assert (series.current, series.change, series.daily) == (None, None, [])


def test_a_day_ends_at_local_midnight_so_a_reading_late_in_utc_lands_on_the_next_local_day():
    kolkata = ZoneInfo("Asia/Kolkata")
    late = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)  # 01:30 on 2 March in Kolkata
    days = days_of(date(2026, 3, 1), 2, kolkata)
    series = member_series({-1: [(late, 10)]}, {}, {}, days)
    assert series.daily == [MemberDay(date(2026, 3, 2), 10)]
    in_utc = member_series({-1: [(late, 10)]}, {}, {}, days_of(date(2026, 3, 1), 2, ZoneInfo("UTC")))
    assert in_utc.daily == [MemberDay(date(2026, 3, 1), 10), MemberDay(date(2026, 3, 2), 10)]


def model_series(readings, before, gone, days):
    """The same figures, day by day and chat by chat, the slow way."""
    daily, last = [], {}
    for day, end in days:
        present = {}
        for chat in set(readings) | set(before):
            earlier = [count for at, count in readings.get(chat, []) if at < end]  # None: the bot removed
            count = earlier[-1] if earlier else before.get(chat)
            if count is not None and not (chat in gone and gone[chat] < end):
                present[chat] = count
        if present:
            daily.append(MemberDay(day, sum(present.values())))
        last = present
    if not daily or daily[-1].day != days[-1][0]:
        return None, None, daily
    change = 0
    for chat, count in last.items():
        baseline = before.get(chat)
        if baseline is None:
            baseline = [found for _, found in readings[chat] if found is not None][0]
        change += count - baseline
    return daily[-1].count, change, daily


@pytest.mark.parametrize("seed", range(60))
def test_the_series_agrees_with_a_day_by_day_model(seed):
    rng = random.Random(seed)
    zone = ZoneInfo(rng.choice(["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "Europe/Berlin"]))
    start = date(2026, 3, 1) + timedelta(days=rng.randrange(0, 300))
    days = days_of(start, rng.randint(1, 20), zone)
    begins, ends = local_midnight(start, zone), days[-1][1]
    readings, before, gone = {}, {}, {}
    for chat in range(-1, -rng.randint(1, 5) - 1, -1):
        if rng.random() < 0.5:
            before[chat] = None if rng.random() < 0.2 else rng.randint(0, 500)
        moments = sorted(begins + (ends - begins) * rng.random() for _ in range(rng.randint(0, 8)))
        if moments:  # now and then the bot removed (None), and read again later
            readings[chat] = [(moment, None if rng.random() < 0.2 else rng.randint(0, 500)) for moment in moments]
        if rng.random() < 0.2:
            gone[chat] = begins + (ends - begins) * rng.random()
    series = member_series(readings, before, gone, days)
    assert (series.current, series.change, series.daily) == model_series(readings, before, gone, days)
