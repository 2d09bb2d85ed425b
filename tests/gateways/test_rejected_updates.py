"""An update that can never be stored fails nothing but itself: it is acknowledged (so Telegram
stops resending it), kept in rejected_updates with its reason and its body byte for byte, and
logged in one WARNING line without the body. Valid updates posted with it are stored and
processed exactly once.

Design: what a column cannot take (a NUL or an unpaired surrogate in any string or key, an
integer beyond signed 64 bits, NaN or ±Infinity) is refused at the door on both databases, the
same way. What the door does not foresee and the database refuses anyway is found by the group
commit (tests/gateways/test_inbox_writer.py), and ends in the same record.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass
from typing import Any, cast

import pytest

from app.gateways.models import GatewayEvent, RejectedUpdate
from app.plugins.contract import TelegramMessageEvent
from tests.support.live import LiveApp
from tests.support.plugins import RecordingPlugin
from tests.support.runtime import (
    SECRET_HEADER,
    ConnectedBot,
    connect_bot,
    install,
    reload,
    stored,
    wait_until_processed,
)
from tests.support.telegram_updates import message_update

MARKER = "poison-body-marker"  # in every poison body, never in a log line


@dataclass(frozen=True)
class Poison:
    name: str
    body: bytes
    update_id: str
    reason: str  # a part of the recorded reason
    stored_on_sqlite: bool = False  # the database, not the door, refuses it: SQLite takes it


def _body(update: dict[str, Any], replace: tuple[str, str] | None = None) -> bytes:
    text = json.dumps(update)  # ASCII: a NUL or a lone surrogate goes as a \u escape, as Telegram would send it
    if replace is not None:
        text = text.replace(*replace)
    return text.encode()


def poisons(first_update_id: int) -> list[Poison]:
    uid = iter(range(first_update_id, first_update_id + 100))

    def update(text: str = MARKER, **message: Any) -> tuple[int, dict[str, Any]]:
        n = next(uid)
        body = message_update(n, text=text, chat_id=-77)
        body["message"].update(message)
        return n, body

    found = []
    n, u = update(text=f"{MARKER} before\u0000after")
    found.append(Poison("nul-in-text", _body(u), str(n), "/message/text contains a NUL character"))
    n, u = update(text=f"{MARKER} \ud800 alone")
    found.append(Poison("lone-surrogate-in-text", _body(u), str(n), "/message/text contains an unpaired surrogate"))
    n, u = update()
    u["message"]["chat"]["id"] = 2**70
    found.append(Poison("chat-id-2**70", _body(u), str(n), "/message/chat/id is outside the 64-bit integer range"))
    n, u = update()
    u["message"]["from"]["id"] = -(2**63) - 1
    found.append(
        Poison("sender-id-below-int64", _body(u), str(n), "/message/from/id is outside the 64-bit integer range")
    )
    _, u = update()
    u["update_id"] = 10**69 + 7  # 70 digits
    found.append(
        Poison("70-digit-update-id", _body(u), str(10**69 + 7), "/update_id is outside the 64-bit integer range")
    )
    _, u = update()
    u["update_id"] = 2**63  # 19 digits, one past the largest BIGINT
    found.append(Poison("update-id-2**63", _body(u), str(2**63), "/update_id is outside the 64-bit integer range"))
    n, u = update(extra=float("nan"))
    found.append(Poison("nan", _body(u), str(n), "/message/extra must be a finite number"))
    n, u = update(extra=float("-inf"))
    found.append(Poison("minus-infinity", _body(u), str(n), "/message/extra must be a finite number"))
    nul_key: dict[str, Any] = {"key\u0000": 1}
    n, u = update(**nul_key)
    found.append(Poison("nul-in-a-key", _body(u), str(n), "has a key that contains a NUL character"))
    # Passes the door (Python reads it as 0.0), but PostgreSQL's jsonb cannot hold the number.
    n, u = update(extra="NUMBER")
    found.append(
        Poison(
            "number-jsonb-cannot-hold",
            _body(u, ('"NUMBER"', "1e-20000")),
            str(n),
            "refused by the database: value overflows numeric format",
            stored_on_sqlite=True,
        )
    )
    return found


@pytest.fixture
async def recorder() -> RecordingPlugin:
    return RecordingPlugin()


@pytest.fixture
async def live(make_app, recorder: RecordingPlugin) -> LiveApp:
    return await make_app(handlers=[recorder])


@pytest.fixture
async def owner(live: LiveApp):
    return await live.create_user("owner@example.com", "pro")


@pytest.fixture
async def bot(live: LiveApp, owner, telegram) -> ConnectedBot:
    return await connect_bot(live, owner, telegram)


async def post(live: LiveApp, bot: ConnectedBot, body: bytes):
    assert live.http is not None
    return await live.http.post(
        bot.webhook_path, content=body, headers={SECRET_HEADER: bot.secret, "Content-Type": "application/json"}
    )


async def rejected_rows(live: LiveApp) -> list[RejectedUpdate]:
    with live.db():
        return await RejectedUpdate.all().order_by("id")


async def stored_keys(live: LiveApp) -> list[str]:
    with live.db():
        return cast("list[str]", await GatewayEvent.all().values_list("key", flat=True))


async def test_poison_updates_among_hundreds_of_valid_ones_fail_only_themselves(
    live, owner, bot, recorder, backend, caplog
):
    caplog.set_level(logging.INFO)
    recorder_install = await install(live, owner, "recorder")
    valid = {n: _body(message_update(n, text=f"valid {n}", chat_id=-(n % 20) - 1)) for n in range(1, 301)}
    bad = poisons(10_000)
    requests = [(str(n), body) for n, body in valid.items()] + [(p.name, p.body) for p in bad]
    random.Random(12).shuffle(requests)

    responses = await asyncio.gather(*(post(live, bot, body) for _, body in requests))
    status = {name: r.status_code for (name, _), r in zip(requests, responses)}

    assert {status[str(n)] for n in valid} == {200}
    assert {p.name: status[p.name] for p in bad} == {p.name: 200 for p in bad}  # 2xx: Telegram stops resending

    rejected = [p for p in bad if not (p.stored_on_sqlite and backend == "sqlite")]
    accepted_poison = [p for p in bad if p not in rejected]
    expected_keys = {str(n) for n in valid} | {p.update_id for p in accepted_poison}
    keys = await stored_keys(live)
    assert sorted(keys) == sorted(expected_keys)  # every valid update stored, once

    rows = await rejected_rows(live)
    assert len(rows) == len(rejected)
    by_update_id = {row.update_id: row for row in rows}
    for poison in rejected:
        row = by_update_id[poison.update_id]
        assert row.gateway_id == bot.gateway_id
        assert poison.reason in row.reason, (poison.name, row.reason)
        assert bytes(row.body) == poison.body  # byte for byte, whatever it holds
        assert row.received_at is not None

    await wait_until_processed(live, deadline_seconds=90)
    seen = sorted(str(e.update_id) for e in recorder.seen if isinstance(e, TelegramMessageEvent))
    assert seen == sorted(expected_keys)  # processed exactly once each; no rejected update reached a plugin
    assert await stored(live, recorder_install.id, "seen:telegram.message") == len(expected_keys)
    assert (await reload(live, recorder_install)).run_count == len(expected_keys)

    warnings = [r for r in caplog.records if r.name == "app.gateways.inbox" and r.levelno == logging.WARNING]
    assert len(warnings) == len(rejected)  # one line per rejected update
    assert all("rejected" in r.getMessage() for r in warnings)
    assert all(MARKER not in r.getMessage() for r in caplog.records)  # never the body
    assert all(r.levelno < logging.ERROR for r in caplog.records if r.name.startswith("app.gateways"))


async def test_a_redelivered_poison_update_is_acknowledged_every_time(live, bot):
    poison = next(p for p in poisons(20_000) if p.name == "nul-in-text")
    for _ in range(3):
        assert (await post(live, bot, poison.body)).status_code == 200
    rows = await rejected_rows(live)
    assert rows and {row.update_id for row in rows} == {poison.update_id}
    assert await stored_keys(live) == []


async def test_values_at_the_edge_of_the_columns_are_stored(live, owner, bot, recorder):
    """The largest and smallest 64-bit integers, and non-BMP characters as surrogate pairs, are fine."""
    await install(live, owner, "recorder")
    update = message_update(2**63 - 1, text="smile \U0001f600", chat_id=-(2**63))
    update["message"]["from"]["id"] = 2**63 - 1
    response = await post(live, bot, json.dumps(update).encode())  # the emoji as a \ud83d\ude00 pair
    assert response.status_code == 200
    assert await stored_keys(live) == [str(2**63 - 1)]
    assert await rejected_rows(live) == []
    await wait_until_processed(live)
    (event,) = recorder.seen
    assert isinstance(event, TelegramMessageEvent)
    assert event.message.text == "smile \U0001f600"
    assert event.message.chat.id == -(2**63)
