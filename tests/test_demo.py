"""`python -m app demo`: the product without Telegram, as a newcomer runs it."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import Counter
from typing import Any

import httpx
import pytest
from aiogram.types import Update

from app.demo.traffic import CHATS, Traffic
from tests.support.processes import free_port

READY_LINE = "Press Ctrl+C to stop."
SUMMARY = """{
  me { plan }
  myPlugins { isEnabled executionCount plugin { slug } }
  myGateways { isActive botUsername }
}"""
ANALYTICS = """{ analytics(days: 7) {
  totalMessages messagesSent
  period { joins leaves }
  daily(days: 7) { messages }
  chats { title }
} }"""


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
                if "text" in message:
                    assert message["from"]["id"] in members[message["chat"]["id"]], "a message from outside the chat"
                    kinds["message"] += 1
                kinds["service"] += "new_chat_members" in message or "left_chat_member" in message
            else:
                kinds[next(k for k in update if k != "update_id")] += 1
    assert update_ids == sorted(set(update_ids))
    assert members == traffic.members
    assert kinds["join"] + kinds["leave"] == kinds["service"]
    assert kinds["message"] > 2000 and kinds["join"] > 50 and kinds["leave"] > 30
    assert kinds["channel_post"] > 50 and kinds["edited_message"] > 10
    senders = {u["message"]["from"]["id"] for u in [traffic.message(0) for _ in range(500)]}
    assert len(senders) >= 30  # a few dozen people
    assert {c.id for c in CHATS} >= {u["message"]["chat"]["id"] for u in [traffic.message(0) for _ in range(500)]}


def test_a_past_day_spreads_its_activity_over_that_day_in_order():
    traffic = Traffic(random.Random(1))
    start = 1_700_006_400  # a UTC midnight
    updates = traffic.day(start, 300)
    bodies = [next(v for k, v in u.items() if k != "update_id") for u in updates]
    dates = [body.get("edit_date", body["date"]) for body in bodies]  # an edit keeps its message's date
    assert all(start <= d < start + 86400 for d in dates)
    assert dates == sorted(dates)
    assert len({d // 3600 for d in dates}) > 12


# --- the command ---------------------------------------------------------------------------------

class Demo:
    def __init__(self, *args: str) -> None:
        self.args = args
        self.process: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []

    async def start(self) -> tuple[str, str]:
        """Starts the demo and returns (address, token) as it printed them."""
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", "demo", *self.args,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        assert self.process.stdout is not None
        while READY_LINE not in self.lines:
            line = await asyncio.wait_for(self.process.stdout.readline(), 60)
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


async def eventually(check, deadline: float = 30) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        try:
            return await check()
        except AssertionError:
            if loop.time() > end:
                raise
            await asyncio.sleep(0.3)


async def test_the_demo_sets_up_a_pro_user_with_a_simulated_bot_and_keeps_traffic_flowing(database_url):
    port = free_port()
    demo = Demo("--port", str(port), "--rate", "25", "--history-days", "2", "--seed", "3", "--database-url", database_url)
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
                return summary

            before = await eventually(analytics_moving)

            async def grew() -> None:
                assert (await graphql(client, token, ANALYTICS))["analytics"]["totalMessages"] > before["totalMessages"]

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
            sys.executable, "-m", "app", "demo", *demo.args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert "cannot listen on 127.0.0.1" in err.decode() and "--port" in err.decode()
    assert "pb_" not in out.decode()
