"""`python -m app demo`: the product without Telegram, as a newcomer runs it."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import Counter
from typing import Any

import asyncpg
import httpx
import pytest
from aiogram.types import Update

from app.demo.botapi import BotApiStandIn, DemoBot
from app.demo.history import Readings, count_past
from app.demo.pace import DAY, Pace, Schedule
from app.demo.run import Live, history_start
from app.demo.traffic import CHATS, FIRST_NAMES, SILENT_MEMBERS, Traffic
from app.telegram import content as kinds
from app.telegram.content import content_kind_of
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.eventually import DEADLINE_SECONDS, START_SECONDS
from tests.support.processes import free_port

READY_LINE = "Press Ctrl+C to stop."
SUMMARY = """{
  me { plan }
  myPlugins { isEnabled executionCount plugin { slug } }
  myGateways { isActive botUsername }
}"""
ANALYTICS = """{ analytics(days: 7) {
  totalMessages messagesSent timezone hourly
  period { joins leaves }
  daily(days: 7) { messages }
  chats { title }
  members { current change daily { date count } unavailable { chatId } }
  content { kind count }
  topPosters(limit: 50) { userId firstName username messages }
} }"""
KOLKATA = 19_800  # +5:30, seconds east of UTC


# --- the simulated traffic ---------------------------------------------------------------------


def test_the_traffic_is_valid_telegram_updates_with_consistent_joins_and_leaves():
    traffic = Traffic(random.Random(7))
    members = {chat_id: set(people) for chat_id, people in traffic.members.items()}
    kinds: Counter[str] = Counter()
    update_ids = []
    for second in range(3000):
        for update in traffic.next_updates(1_700_000_000 + second):
            Update.model_validate(update)  # what Telegram would send, as aiogram reads it
            update_ids.append(update["update_id"])
            if "chat_member" in update:
                change = update["chat_member"]
                chat, person = change["chat"]["id"], change["new_chat_member"]["user"]["id"]
                if change["new_chat_member"]["status"] == "member":
                    assert person not in members[chat], "joined a chat they were in"
                    members[chat].add(person)
                    kinds["join"] += 1
                else:
                    assert person in members[chat], "left a chat they were not in"
                    members[chat].discard(person)
                    kinds["leave"] += 1
            elif "message" in update:
                message = update["message"]
                if "new_chat_members" in message or "left_chat_member" in message:
                    kinds["service"] += 1
                else:
                    assert message["from"]["id"] in members[message["chat"]["id"]], "a message from outside the chat"
                    kinds["message"] += 1
            else:
                kinds[next(k for k in update if k != "update_id")] += 1
    assert update_ids == sorted(set(update_ids))
    assert members == traffic.members
    assert kinds["join"] + kinds["leave"] == kinds["service"]
    assert kinds["message"] > 2000 and kinds["join"] > 50 and kinds["leave"] > 30
    assert kinds["channel_post"] > 50 and kinds["edited_message"] > 10
    senders = {u["message"]["from"]["id"] for u in [traffic.message_update(0) for _ in range(500)]}
    assert len(senders) >= 30  # a few dozen people
    assert {c.id for c in CHATS} >= {
        u["message"]["chat"]["id"] for u in [traffic.message_update(0) for _ in range(500)]
    }


# --- one pace for the past and the present ----------------------------------------------------

WEDNESDAY = 1_700_006_400  # a UTC midnight: Wednesday 2023-11-15


def received_by_hour_of_past(sums) -> Counter[int]:
    """Received messages per UTC hour start, from what the past adds to the analytics figures (per
    15-minute bucket)."""
    hours: Counter[int] = Counter()
    for (_, bucket, _, _), (received, _, _, _) in sums.items():
        hours[bucket // 3600 * 3600] += received
    return hours


async def received_by_hour_of_live(traffic: Traffic, schedule: Schedule, start: float, end: float) -> Counter[int]:
    """Drives the live traffic from `start` to `end` on a simulated clock (no waiting): the
    messages it delivers per UTC hour start, by each update's own date."""
    clock = start
    hours: Counter[int] = Counter()

    async def deliver(update: dict[str, Any]) -> None:
        assert clock - 1 <= update.get("message", update.get("channel_post", {})).get("date", clock) <= clock
        for kind in ("message", "channel_post"):
            if kind in update:
                hours[update[kind]["date"] // 3600 * 3600] += 1

    present = Live(traffic, schedule, deliver, clock=lambda: clock)
    while clock < end:
        clock += await present.step()  # the seconds until the next thing is due
    return hours


def test_the_pace_follows_the_hour_of_day_and_averages_the_rate_over_a_weekday():
    pace = Pace(0.5)
    assert pace.expected(WEDNESDAY, WEDNESDAY + DAY) == pytest.approx(0.5 * DAY)
    assert pace.per_second(WEDNESDAY + 19 * 3600) == pace.busiest() > 10 * pace.per_second(WEDNESDAY + 3 * 3600)
    saturday = WEDNESDAY + 3 * DAY
    assert pace.expected(saturday, saturday + DAY) == pytest.approx(0.7 * 0.5 * DAY)
    assert pace.quietest() == pace.per_second(saturday + 3 * 3600)


def test_the_pace_follows_the_communitys_own_day():
    """In Delhi (+5:30) the evening peak is 19:00 local, 13:30 UTC, and each local hour starts at
    half past a UTC hour; the past starts at a local midnight."""
    delhi, utc = Pace(0.5, KOLKATA), Pace(0.5)
    evening = WEDNESDAY + 19 * 3600 - KOLKATA  # 19:00 in Delhi
    assert delhi.per_second(evening) == delhi.busiest() == utc.per_second(WEDNESDAY + 19 * 3600)
    assert delhi.per_second(evening - 1) < delhi.busiest()  # 18:59 in Delhi: another hour
    assert delhi.hour_end(evening) == evening + 3600
    assert delhi.expected(WEDNESDAY - KOLKATA, WEDNESDAY - KOLKATA + DAY) == pytest.approx(0.5 * DAY)
    start = history_start(WEDNESDAY + 3600, 2, KOLKATA)  # 01:00 UTC is 06:30 in Delhi
    assert start == WEDNESDAY - 2 * DAY - KOLKATA


async def test_the_live_traffic_keeps_the_pace_of_the_past_hour_by_hour():
    """The past (Monday to Wednesday 10:00) and the live traffic after it come from one pace: each
    live hour has about the messages that hour had on the days before, and what the pace expects."""
    rng = random.Random(11)
    pace = Pace(0.5)
    traffic = Traffic(rng)
    now = WEDNESDAY + 10 * 3600
    schedule = Schedule(pace, now - 2 * DAY - 10 * 3600, rng)  # from Monday's midnight
    past = received_by_hour_of_past(count_past(traffic, schedule.until(now), True, lambda chat: True))
    live = await received_by_hour_of_live(traffic, schedule, now, now + 6 * 3600)

    messages_per_thing = 0.98  # everything brings a message but an edit (2%, and only live)
    for hour in range(10, 16):
        start = WEDNESDAY + hour * 3600
        expected = pace.expected(start, start + 3600) * messages_per_thing
        yesterday = past[start - DAY]
        assert live[start] == pytest.approx(expected, rel=0.1), hour
        assert live[start] == pytest.approx(yesterday, rel=0.15), hour  # no spike against yesterday
        assert past[start - 2 * DAY] == pytest.approx(expected, rel=0.1), hour
    # the quiet night before, in the past, at the same pace
    assert past[WEDNESDAY + 3 * 3600] == pytest.approx(
        pace.expected(WEDNESDAY + 3 * 3600, WEDNESDAY + 4 * 3600), rel=0.25
    )


async def test_the_live_traffic_opens_with_a_newcomer_at_any_hour():
    """At night's pace the next thing may be minutes away: the first newcomer joins at once, so
    Welcome's greeting and the counts move as soon as the demo is open."""
    traffic = Traffic(random.Random(13))
    night = WEDNESDAY + 3 * 3600
    delivered: list[dict[str, Any]] = []

    async def deliver(update: dict[str, Any]) -> None:
        delivered.append(update)

    present = Live(traffic, Schedule(Pace(0.01), night, random.Random(13)), deliver, clock=lambda: night)
    await present.open()
    joined, member = delivered
    assert joined["message"]["new_chat_members"] == [joined["message"]["from"]]
    assert joined["message"]["date"] == night
    assert member["chat_member"]["new_chat_member"]["status"] == "member"
    assert member["chat_member"]["new_chat_member"]["user"] == joined["message"]["from"]
    assert traffic.counts == {"joins": 1}


def test_the_past_counts_what_the_plugins_would_count():
    """Messages and channel posts are received, joins and leaves move the member counts (their
    service messages are received too), each newcomer gets Welcome's reply, edits count nothing."""
    traffic = Traffic(random.Random(5))
    start = WEDNESDAY
    sums = count_past(traffic, [start + n for n in range(5000)], True, lambda chat: True)
    received, sent, joins, leaves = (sum(row[n] for row in sums.values()) for n in range(4))
    made = traffic.counts
    assert received == made["messages"] + made["channel posts"] + made["joins"] + made["leaves"]
    assert (sent, joins, leaves) == (made["joins"], made["joins"], made["leaves"])
    assert made["edits"] == 0  # only messages made in the live traffic are edited
    users = {user for (_, _, user, _) in sums if user is not None}
    assert len(users) >= 30
    channel = next(chat.id for chat in CHATS if chat.kind == "channel")
    assert all(user is None for (chat, _, user, _) in sums if chat == channel)
    untracked = count_past(Traffic(random.Random(5)), [start], False, lambda chat: True)
    assert not any(user for (_, _, user, _) in untracked)
    # each received message has its kind of content; the counters without one are no messages
    by_kind: Counter[str | None] = Counter()
    for (_, _, _, kind), row in sums.items():
        by_kind[kind] += row[0]
        assert (kind is None) == (row[0] == 0), (kind, row)
    assert by_kind[kinds.SERVICE] == made["joins"] + made["leaves"]
    assert by_kind[kinds.TEXT] > sum(by_kind[kind] for kind in (kinds.PHOTO, kinds.STICKER, kinds.VOICE)) > 0
    assert {kinds.PHOTO, kinds.STICKER, kinds.VOICE, kinds.POLL, kinds.VIDEO} <= set(by_kind)


def test_the_traffic_posts_a_mix_of_kinds_from_named_people_and_members_come_and_go():
    """Each message's shape is the kind the past counts it as; posters have names (most a
    username); members who never post join and leave too, so the member counts grow slowly."""
    traffic = Traffic(random.Random(21))
    posted: Counter[str] = Counter()
    for second in range(20_000):
        thing = traffic.next_thing()
        for update in traffic.updates(thing, 1_700_000_000 + second):
            message = update.get("message") or update.get("channel_post")
            if message is not None:
                assert content_kind_of(message) == thing.content, message
                posted[thing.content] += 1
                sender = message.get("from")
                assert sender is None or sender["first_name"] in FIRST_NAMES
    assert posted[kinds.TEXT] > posted[kinds.PHOTO] > posted[kinds.POLL] > 0
    assert set(posted) == set(kinds.CONTENT_KINDS) - {kinds.OTHER}
    assert sum("username" in person for person in traffic.people) > len(traffic.people) / 2
    grown = sum(traffic.silent.values()) - sum(SILENT_MEMBERS.values())
    assert 5 < grown < 100, traffic.silent  # about a day at the default rate: slowly


# --- the command ---------------------------------------------------------------------------------


class Demo:
    def __init__(self, *args: str) -> None:
        self.args = args
        self.process: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []

    async def start(self) -> tuple[str, str]:
        """Starts the demo and returns (address, token) as it printed them."""
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "demo",
            *self.args,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.process.stdout is not None
        while READY_LINE not in self.lines:
            line = await asyncio.wait_for(self.process.stdout.readline(), START_SECONDS)
            assert line, f"the demo ended early:\n{''.join(self.lines)}\n{await self.stderr()}"
            self.lines.append(line.decode().strip())
        address = next(line.split()[-1] for line in self.lines if line.startswith("Open:"))
        token = next(line for line in self.lines if line.startswith("pb_"))
        return address.rstrip("/"), token

    async def stderr(self) -> str:
        assert self.process is not None and self.process.stderr is not None
        return (await self.process.stderr.read()).decode()

    async def stop(self) -> tuple[int, str, str]:
        assert self.process is not None and self.process.stdout is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        out = (await asyncio.wait_for(self.process.stdout.read(), 60)).decode()
        err = await self.stderr()
        code = await asyncio.wait_for(self.process.wait(), 60)
        return code, out, err


async def graphql(client: httpx.AsyncClient, token: str, query: str) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"})
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]


async def eventually(check, deadline: float = DEADLINE_SECONDS) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        try:
            return await check()
        except AssertionError:
            if loop.time() > end:
                raise
            await asyncio.sleep(0.3)


@pytest.mark.slow
async def test_the_stand_in_answers_member_counts_as_telegram_does():
    traffic = Traffic(random.Random(5))
    bot = DemoBot(token="6000000001:" + "a" * 35, bot_id=6000000001, username="demo_bot", first_name="Demo")
    stand_in = BotApiStandIn(bot, {chat.id: (chat.kind, chat.title) for chat in CHATS}, traffic.member_count)
    community = CHATS[0].id
    async with httpx.AsyncClient(transport=httpx.ASGITransport(stand_in.app), base_url="http://api") as client:

        async def count(chat_id: object) -> httpx.Response:
            return await client.post(f"/bot{bot.token}/getChatMemberCount", json={"chat_id": chat_id})

        answer = await count(community)
        assert answer.status_code == 200
        assert answer.json() == {"ok": True, "result": traffic.member_count(community)}
        assert traffic.member_count(community) == 212 + len(traffic.members[community]) + 1
        missing = await count(-100123)
        assert (missing.status_code, missing.json()["description"]) == (400, "Bad Request: chat not found")
        stand_in.kicked_from.add(community)
        kicked = await count(community)
        assert kicked.status_code == 403
        assert kicked.json() == {
            "ok": False,
            "error_code": 403,
            "description": "Forbidden: bot was kicked from the supergroup chat",
        }


def test_the_past_reads_each_chats_member_count_at_the_start_of_each_utc_day():
    traffic = Traffic(random.Random(9))
    start = 1_750_000_000 // DAY * DAY
    readings: Readings = []
    count_past(traffic, [start + n * 600 for n in range(3 * 144)], True, lambda chat: True, readings)
    assert [at for _, at, _ in readings] == [start + day * DAY for day in range(3) for _ in CHATS]
    assert {chat for chat, _, _ in readings} == {chat.id for chat in CHATS}


async def test_the_demo_sets_up_a_pro_user_with_a_simulated_bot_and_keeps_traffic_flowing(database_url):
    port = free_port()
    # --rate 3: at night's pace (0.33 things a second) something still happens every few seconds; the
    # first newcomer joins as the live traffic opens, so Welcome replies at any hour.
    demo = Demo(
        "--port", str(port), "--rate", "3", "--history-days", "2", "--seed", "3", "--database-url", database_url
    )
    address, token = await demo.start()
    try:
        assert address == f"http://127.0.0.1:{port}"
        assert token.startswith("pb_")
        async with httpx.AsyncClient(base_url=address, timeout=30) as client:
            setup = await graphql(client, token, SUMMARY)
            assert setup["me"]["plan"] == "PRO"
            assert {i["plugin"]["slug"] for i in setup["myPlugins"]} == {"analytics", "welcome"}
            assert all(i["isEnabled"] for i in setup["myPlugins"])
            assert setup["myGateways"] == [{"isActive": True, "botUsername": "plugboard_demo_bot"}]
            home = await client.get("/")
            assert home.status_code == 302 and home.headers["location"] == "/my-plugins"

            async def runs() -> dict[str, int]:
                data = await graphql(client, token, SUMMARY)
                return {i["plugin"]["slug"]: i["executionCount"] for i in data["myPlugins"]}

            async def welcome_replied() -> dict[str, int]:
                counts = await runs()
                assert counts["welcome"] > 0 and counts["analytics"] > 0, counts
                return counts

            first = await eventually(welcome_replied)

            async def still_moving() -> None:
                assert (await runs())["analytics"] > first["analytics"]

            await eventually(still_moving)

            async def analytics_moving() -> dict[str, Any]:
                summary = (await graphql(client, token, ANALYTICS))["analytics"]
                assert summary["messagesSent"] > 0, summary  # welcome's replies, through the stand-in, counted
                assert summary["period"]["joins"] > 0 and summary["period"]["leaves"] > 0, summary
                assert all(day["messages"] > 0 for day in summary["daily"][-3:]), summary  # 2 past days + today
                assert "Plugboard Community" in {chat["title"] for chat in summary["chats"]}
                members = summary["members"]  # read from the stand-in Bot API: the past's daily, and today's
                assert members["current"] > 1_180 and members["unavailable"] == [], members
                assert len(members["daily"]) == 3 and members["daily"][-1]["count"] == members["current"], members
                assert members["change"] > 0, members  # members who never post join too: a growing community
                return summary

            before = await eventually(analytics_moving)
            # A community in Delhi: its figures are in Asia/Kolkata's day, busy in the local evening
            # and quiet in the local night (in UTC's hours the evening peak would fall at 00:30).
            assert before["timezone"] == "Asia/Kolkata"
            hourly = before["hourly"]
            assert sum(hourly[1:5]) * 4 < sum(hourly[18:22]), hourly
            # what is posted, and by whom
            content = {row["kind"]: row["count"] for row in before["content"]}
            assert all(content[kind] > 0 for kind in ("TEXT", "PHOTO", "STICKER", "VOICE", "POLL", "SERVICE")), content
            assert content["TEXT"] > content["PHOTO"] > content["POLL"], content
            posters = before["topPosters"]
            assert len(posters) >= 30, posters
            assert all(poster["firstName"] in FIRST_NAMES and poster["messages"] > 0 for poster in posters), posters
            assert any(poster["username"] for poster in posters), posters
            assert [p["messages"] for p in posters] == sorted((p["messages"] for p in posters), reverse=True)

            def moved(summary: dict[str, Any]) -> tuple[int, int, int]:
                beyond_text = sum(row["count"] for row in summary["content"] if row["kind"] != "TEXT")
                return summary["totalMessages"], beyond_text, sum(p["messages"] for p in summary["topPosters"])

            async def grew() -> None:
                now, then = moved((await graphql(client, token, ANALYTICS))["analytics"]), moved(before)
                assert all(a > b for a, b in zip(now, then, strict=True)), (now, then)

            await eventually(grew)
    finally:
        code, out, err = await demo.stop()
    assert code == 0, err
    assert "Demo stopped." in out
    assert token not in err


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_port_in_use_is_a_clear_error(database_url):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        demo = Demo("--port", str(taken.getsockname()[1]), "--database-url", database_url)
        assert demo.process is None
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "demo",
            *demo.args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert "cannot listen on 127.0.0.1" in err.decode() and "--port" in err.decode()
    assert "pb_" not in out.decode()


# --- mistakes: one line each, as `serve` gives ---------------------------------------------------


async def run_demo_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "demo",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("--database-url", "mysql://x/y"),
            "error: --database-url='mysql://x/y' is not valid: expected sqlite://PATH or "
            "postgres://USER[:PASSWORD]@HOST[:PORT]/NAME (found the scheme 'mysql')",
        ),
        (
            ("--database-url", "postgres://postgres:hunter2@127.0.0.1:1/plugboard"),
            "error: cannot use the database at --database-url=postgres://postgres:***@127.0.0.1:1/plugboard: "
            "connection refused at 127.0.0.1:1 (is PostgreSQL running there?)",
        ),
        (
            ("--database-url", "postgres://postgres@no-such-host.invalid:5432/plugboard"),
            "error: cannot use the database at --database-url=postgres://postgres@no-such-host.invalid:5432/plugboard: "
            "the host name no-such-host.invalid is not known",
        ),
        (("--port", "99999"), "error: --port must be 0 to 65535, not 99999"),
        (("--host", "no-such-host.invalid", "--port", "0"), "error: cannot listen on no-such-host.invalid:0: "),
        (("--rate", "0"), "error: --rate must be more than 0 and at most 20 things a second, not 0"),
        (("--rate", "-1"), "error: --rate must be more than 0 and at most 20 things a second, not -1"),
        (("--history-days", "-3"), "error: --history-days must be 0 to 30, not -3"),
        (
            ("--rate", "5", "--history-days", "14"),
            "error: --rate 5 with --history-days 14 means about 6,480,000 past updates",
        ),
        (
            ("--rate", "21", "--history-days", "0"),
            "error: --rate must be more than 0 and at most 20 things a second, not 21",
        ),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else "",
)
async def test_a_mistake_is_one_line_and_nothing_starts(backend, args, line):
    code, out, err = await run_demo_cli(*args)
    assert code == 1
    assert one_error_line(err).startswith(line)
    assert "Traceback" not in err and "pb_" not in out


async def test_a_login_the_database_refuses_is_one_line(backend, database_url):
    if backend != "postgres":
        pytest.skip("a PostgreSQL login")
    refused = database_url.replace("postgres://postgres@", "postgres://nobody_here:hunter2@", 1)
    code, out, err = await run_demo_cli("--port", "0", "--database-url", refused)
    assert code == 1
    line = one_error_line(err)
    assert 'role "nobody_here" does not exist' in line and "--database-url=postgres://nobody_here:***@" in line
    assert "hunter2" not in out + err


async def test_a_database_that_does_not_exist_is_named_not_created(backend, tmp_path):
    if backend == "postgres":
        url = await create_postgres_database()  # skips (fails under CI) without a server
        await drop_postgres_database(url)
        missing = f'the database "{url.rsplit("/", 1)[1]}" does not exist (create it: createdb'
    else:
        url = f"sqlite://{tmp_path}/not-made/demo.sqlite3"
        missing = f"the directory {tmp_path}/not-made does not exist"
    code, out, err = await run_demo_cli("--port", "0", "--database-url", url)
    assert code == 1
    assert one_error_line(err).startswith(f"error: cannot use the database at --database-url={url}: {missing}")
    assert "pb_" not in out
    if backend == "postgres":
        with pytest.raises(asyncpg.InvalidCatalogNameError):
            await (await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))).close()
    else:
        assert not (tmp_path / "not-made").exists()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_debug_shows_the_traceback_behind_the_line(backend):
    code, _, err = await run_demo_cli("--debug", "--database-url", "postgres://postgres@127.0.0.1:1/plugboard")
    assert code == 1
    assert "Traceback (most recent call last)" in err and "ConnectionRefusedError" in err
    assert err.strip().splitlines()[-1].startswith("error: cannot use the database at --database-url=")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_help_shows_every_default_and_what_the_rate_means(backend):
    code, out, _ = await run_demo_cli("--help")
    flat = " ".join(out.split())
    assert code == 0
    for text in (
        "default: HOST from the environment, else 127.0.0.1",
        "else 8000",
        "(default: 0.2, about 17,280 a day",
        "averaged over a weekday",
        "the same daily pattern",
        "default: 14",
        "default: a fresh SQLite database",
        "default: a new one each run",
    ):
        assert text in flat, out
